//! End-to-end tests: each test starts a real `gearmand` (see `harness`) and speaks the wire
//! protocol to it, as described in shared/docs/protocol.md §2–§5 (wire protocol, job life
//! cycle, admin protocol) and §6–§8 (HTTP, persistent queue, running the server).
//!
//! Naming convention, so the suite can also validate the C server
//! (`GEARMAND_BIN=/usr/sbin/gearmand cargo test --test e2e -- --skip fix_ --skip ours_`):
//! - `fix_*`: our deliberate fixes, where the C server behaves differently
//!   (shared/docs/protocol.md §11);
//! - `ours_*`: properties of our implementation the C server does not share (thread names,
//!   the 64 MiB packet limit);
//! - everything else must pass against both servers.

mod harness;
mod server_process;

mod admin;
mod bad_input;
mod cancel;
mod cli_gearadmin;
mod cli_gearman;
mod dependencies;
mod disconnect;
mod echo_options;
mod epoch;
mod flood;
mod grab;
mod http;
mod interop_c;
mod interop_gear;
mod memory;
mod module_cycles;
mod operations;
mod package;
mod persistence;
mod persistence_db;
mod readme;
mod retries;
mod security;
mod service;
mod signals;
mod soak;
mod stats;
mod status;
mod submit;
mod threads;
mod timeouts;
mod tui;
mod wakeup;
mod work_results;
