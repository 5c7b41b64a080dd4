//! Admin text commands, answered from the job state.

use bytes::Bytes;

use super::Processor;
use crate::event::{ConnId, Outgoing};

impl Processor {
    pub(super) fn admin(&mut self, conn: ConnId, line: &[u8], _terminator_len: usize) {
        let first = line.split(|&b| b == b' ').next().unwrap_or_default();
        let mut reply = b"ERR UNKNOWN_COMMAND Unknown+server+command".to_vec();
        reply.extend_from_slice(first);
        reply.extend_from_slice(b"\r\n");
        self.state.send(conn, Outgoing::Text(Bytes::from(reply)));
    }
}
