//! One connection as the job model sees it: its registrations, flags and jobs.

use bytes::Bytes;

use super::job::JobId;
use crate::acl::Grants;

/// Server-wide connection number, never reused while the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Identity of a connection for the `workers` listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The server-side socket descriptor.
    pub fd: i64,
    /// Numeric peer address.
    pub address: String,
    /// The verified TLS client certificate's name (CN or SAN), if any.
    pub identity: Option<String>,
}

/// A CAN_DO or CAN_DO_TIMEOUT registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ability {
    /// Function name.
    pub function: Bytes,
    /// Per-job timeout in ms; 0 = none.
    pub timeout_ms: u64,
}

/// A connection. Any connection may submit, work and run admin commands.
#[derive(Debug)]
pub struct Peer {
    /// fd and address.
    pub info: PeerInfo,
    /// Registrations, oldest first (the protocol walks them newest first).
    pub abilities: Vec<Ability>,
    /// Sent PRE_SLEEP and no GRAB since.
    pub sleeping: bool,
    /// Got a NOOP since its last GRAB.
    pub noop_sent: bool,
    /// Wants WORK_EXCEPTION rather than WORK_FAIL.
    pub exceptions: bool,
    /// SET_CLIENT_ID value, `-` by default.
    pub client_id: Bytes,
    /// Jobs it runs, in grab order.
    pub running: Vec<JobId>,
    /// Foreground jobs it waits for.
    pub attached: Vec<JobId>,
    /// Has submitted a job (statistics).
    pub is_client: bool,
    /// Has sent an admin command (statistics).
    pub is_admin: bool,
    /// What the ACL allows it.
    pub grants: Grants,
}

impl Peer {
    /// A fresh connection.
    pub fn new(info: PeerInfo, exceptions: bool, grants: Grants) -> Peer {
        Peer {
            info,
            abilities: Vec::new(),
            sleeping: false,
            noop_sent: false,
            exceptions,
            client_id: Bytes::from_static(b"-"),
            running: Vec::new(),
            attached: Vec::new(),
            is_client: false,
            is_admin: false,
            grants,
        }
    }

    /// The timeout of the newest registration for `function` (the one the protocol honours).
    pub fn timeout_for(&self, function: &[u8]) -> u64 {
        self.abilities
            .iter()
            .rev()
            .find(|a| a.function == function)
            .map_or(0, |a| a.timeout_ms)
    }
}
