//! Packet types, magic, and the untyped packet: a type plus its NUL-separated arguments.

use bytes::Bytes;

/// Size of the fixed binary header: magic, type and payload length.
pub const HEADER_LEN: usize = 12;

/// Which direction a binary packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Magic {
    /// `\0REQ`: client or worker to server.
    Req,
    /// `\0RES`: server to client or worker.
    Res,
}

impl Magic {
    /// The four magic bytes on the wire.
    pub const fn bytes(self) -> &'static [u8; 4] {
        match self {
            Magic::Req => b"\0REQ",
            Magic::Res => b"\0RES",
        }
    }

    /// Recognises the four magic bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Magic> {
        match bytes {
            b"\0REQ" => Some(Magic::Req),
            b"\0RES" => Some(Magic::Res),
            _ => None,
        }
    }
}

macro_rules! packet_types {
    ($($name:ident = $num:literal, $argc:literal, $data:literal, $upper:literal;)*) => {
        /// Every binary packet type of the protocol (1..=42; there is no 43).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum PacketType {
            $(#[allow(missing_docs)] $name = $num,)*
        }

        impl PacketType {
            /// The packet type with this number, if it exists.
            pub const fn from_u32(n: u32) -> Option<PacketType> {
                match n {
                    $($num => Some(PacketType::$name),)*
                    _ => None,
                }
            }

            /// `(argc, data)` as libgearman's command table defines them: how the payload
            /// is split into arguments (see [`Packet::split`]).
            pub const fn arg_spec(self) -> (usize, bool) {
                match self {
                    $(PacketType::$name => ($argc, $data),)*
                }
            }

            /// The protocol's upper-case name, e.g. `SUBMIT_JOB`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(PacketType::$name => $upper,)*
                }
            }
        }
    };
}

packet_types! {
    CanDo = 1, 1, false, "CAN_DO";
    CantDo = 2, 1, false, "CANT_DO";
    ResetAbilities = 3, 0, false, "RESET_ABILITIES";
    PreSleep = 4, 0, false, "PRE_SLEEP";
    Unused = 5, 0, false, "UNUSED";
    Noop = 6, 0, false, "NOOP";
    SubmitJob = 7, 2, true, "SUBMIT_JOB";
    JobCreated = 8, 1, false, "JOB_CREATED";
    GrabJob = 9, 0, false, "GRAB_JOB";
    NoJob = 10, 0, false, "NO_JOB";
    JobAssign = 11, 2, true, "JOB_ASSIGN";
    WorkStatus = 12, 3, false, "WORK_STATUS";
    WorkComplete = 13, 1, true, "WORK_COMPLETE";
    WorkFail = 14, 1, false, "WORK_FAIL";
    GetStatus = 15, 1, false, "GET_STATUS";
    EchoReq = 16, 0, true, "ECHO_REQ";
    EchoRes = 17, 0, true, "ECHO_RES";
    SubmitJobBg = 18, 2, true, "SUBMIT_JOB_BG";
    Error = 19, 2, false, "ERROR";
    StatusRes = 20, 5, false, "STATUS_RES";
    SubmitJobHigh = 21, 2, true, "SUBMIT_JOB_HIGH";
    SetClientId = 22, 1, false, "SET_CLIENT_ID";
    CanDoTimeout = 23, 2, false, "CAN_DO_TIMEOUT";
    AllYours = 24, 0, false, "ALL_YOURS";
    WorkException = 25, 1, true, "WORK_EXCEPTION";
    OptionReq = 26, 1, false, "OPTION_REQ";
    OptionRes = 27, 1, false, "OPTION_RES";
    WorkData = 28, 1, true, "WORK_DATA";
    WorkWarning = 29, 1, true, "WORK_WARNING";
    GrabJobUniq = 30, 0, false, "GRAB_JOB_UNIQ";
    JobAssignUniq = 31, 3, true, "JOB_ASSIGN_UNIQ";
    SubmitJobHighBg = 32, 2, true, "SUBMIT_JOB_HIGH_BG";
    SubmitJobLow = 33, 2, true, "SUBMIT_JOB_LOW";
    SubmitJobLowBg = 34, 2, true, "SUBMIT_JOB_LOW_BG";
    SubmitJobSched = 35, 7, true, "SUBMIT_JOB_SCHED";
    SubmitJobEpoch = 36, 3, true, "SUBMIT_JOB_EPOCH";
    SubmitReduceJob = 37, 4, true, "SUBMIT_REDUCE_JOB";
    SubmitReduceJobBackground = 38, 4, true, "SUBMIT_REDUCE_JOB_BACKGROUND";
    GrabJobAll = 39, 0, false, "GRAB_JOB_ALL";
    JobAssignAll = 40, 4, true, "JOB_ASSIGN_ALL";
    GetStatusUnique = 41, 1, false, "GET_STATUS_UNIQUE";
    StatusResUnique = 42, 6, false, "STATUS_RES_UNIQUE";
}

impl PacketType {
    /// The number on the wire.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// How many arguments [`Packet::split`] produces for this type.
    pub const fn arg_count(self) -> usize {
        match self.arg_spec() {
            (0, false) => 0,
            (argc, false) => argc,
            (argc, true) => argc + 1,
        }
    }
}

/// One binary packet: its direction, type and arguments (the payload split at NULs
/// according to the type; the last argument may itself contain NULs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Direction of travel.
    pub magic: Magic,
    /// Packet type.
    pub kind: PacketType,
    /// Arguments, exactly [`PacketType::arg_count`] of them for a well-formed packet.
    pub args: Vec<Bytes>,
}

impl Packet {
    /// Builds a packet from its parts.
    pub fn new(magic: Magic, kind: PacketType, args: Vec<Bytes>) -> Packet {
        Packet { magic, kind, args }
    }

    /// Splits a payload as gearmand does (shared/docs/protocol.md §2.3), but only within the
    /// payload: with `data = true` all `argc` arguments must be NUL-terminated and the rest is
    /// data; with `data = false` the first `argc - 1` are NUL-terminated and the last is the rest.
    /// Types with no arguments ignore their payload. `None` if a separator is missing.
    pub fn split(kind: PacketType, payload: Bytes) -> Option<Vec<Bytes>> {
        let terminated = match kind.arg_spec() {
            (0, false) => return Some(Vec::new()),
            (argc, false) => argc - 1,
            (argc, true) => argc,
        };
        let mut args = Vec::with_capacity(terminated + 1);
        let mut rest = payload;
        for _ in 0..terminated {
            let nul = rest.iter().position(|&b| b == 0)?;
            let arg = rest.split_to(nul);
            rest.advance_one();
            args.push(arg);
        }
        args.push(rest);
        Some(args)
    }

    /// Length of the payload once the arguments are joined with NULs.
    pub fn payload_len(&self) -> usize {
        payload_len(&self.args)
    }

    /// The argument at `index`, or an empty slice when it is absent.
    pub fn arg(&self, index: usize) -> &[u8] {
        self.args.get(index).map_or(&[], |a| a.as_ref())
    }
}

/// `Bytes::advance` by one without pulling in the `Buf` trait at every call site.
trait AdvanceOne {
    fn advance_one(&mut self);
}

impl AdvanceOne for Bytes {
    fn advance_one(&mut self) {
        let _ = self.split_to(1);
    }
}

/// Length of the payload these arguments make: their bytes plus the NULs between them.
pub(crate) fn payload_len(args: &[Bytes]) -> usize {
    let bytes: usize = args.iter().map(Bytes::len).sum();
    bytes + args.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_number() {
        for n in 1..=42 {
            let kind = PacketType::from_u32(n).expect("1..=42 all exist");
            assert_eq!(kind.as_u32(), n);
        }
        assert_eq!(PacketType::from_u32(0), None);
        assert_eq!(PacketType::from_u32(43), None);
    }

    #[test]
    fn names_follow_the_protocol() {
        assert_eq!(
            PacketType::SubmitReduceJobBackground.name(),
            "SUBMIT_REDUCE_JOB_BACKGROUND"
        );
        assert_eq!(PacketType::WorkStatus.name(), "WORK_STATUS");
    }

    #[test]
    fn data_packets_require_every_terminator() {
        let args = Packet::split(PacketType::SubmitJob, Bytes::from_static(b"fn\0u\0d\0x"));
        assert_eq!(
            args,
            Some(vec![b"fn"[..].into(), b"u"[..].into(), b"d\0x"[..].into()])
        );
        let empty = Packet::split(PacketType::SubmitJob, Bytes::from_static(b"fn\0u\0"));
        assert_eq!(
            empty,
            Some(vec![b"fn"[..].into(), b"u"[..].into(), Bytes::new()])
        );
        assert_eq!(
            Packet::split(PacketType::SubmitJob, Bytes::from_static(b"fn\0u")),
            None
        );
    }

    #[test]
    fn plain_packets_take_the_rest_as_last_argument() {
        let args = Packet::split(PacketType::WorkStatus, Bytes::from_static(b"H:1\x001\x002"));
        assert_eq!(args.map(|a| a.len()), Some(3));
        let can_do = Packet::split(PacketType::CanDo, Bytes::from_static(b"a\0b"));
        assert_eq!(can_do, Some(vec![Bytes::from_static(b"a\0b")]));
        let grab = Packet::split(PacketType::GrabJob, Bytes::from_static(b"junk"));
        assert_eq!(grab, Some(vec![]));
    }

    #[test]
    fn payload_len_counts_separators() {
        let p = Packet::new(
            Magic::Req,
            PacketType::SubmitJob,
            vec!["f".into(), "".into(), "data".into()],
        );
        assert_eq!(p.payload_len(), 7);
    }
}
