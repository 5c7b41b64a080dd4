//! Job-server lists (`-h host[:port],…`, `-p`, `GEARMAN_SERVER`): the shared parser, so the
//! tools read server lists the same way.

pub use gearman_shared::servers::*;
