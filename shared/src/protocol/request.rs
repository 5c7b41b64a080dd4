//! Typed requests: what clients and workers send to the server (`\0REQ` packets).

use bytes::Bytes;

use super::number::parse_i64_prefix;
use super::packet::{Magic, Packet, PacketType};
use super::ProtocolError;

/// Job priority; the queues are served HIGH, then NORMAL, then LOW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Served first.
    High = 0,
    /// The default.
    Normal = 1,
    /// Served last.
    Low = 2,
}

impl Priority {
    /// All priorities, in the order they are served.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// Index into per-priority arrays (0 = HIGH), also the persistent-queue encoding.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Whether the submitting client waits for the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobMode {
    /// The client stays attached and receives WORK_* packets.
    Foreground,
    /// The client gets JOB_CREATED and nothing else.
    Background,
}

/// Which GRAB_JOB variant a worker sent; decides the JOB_ASSIGN variant it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrabKind {
    /// GRAB_JOB → JOB_ASSIGN.
    Plain,
    /// GRAB_JOB_UNIQ → JOB_ASSIGN_UNIQ.
    Uniq,
    /// GRAB_JOB_ALL → JOB_ASSIGN_ALL for reduce jobs, JOB_ASSIGN_UNIQ otherwise.
    All,
}

/// Every SUBMIT_JOB variant (plain, priorities, background, epoch, reduce) in one shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitJob {
    /// Function name.
    pub function: Bytes,
    /// Unique key: empty never coalesces, `-` coalesces on the data.
    pub unique: Bytes,
    /// Workload.
    pub data: Bytes,
    /// Queue priority.
    pub priority: Priority,
    /// Foreground or background.
    pub mode: JobMode,
    /// SUBMIT_JOB_EPOCH: unix time before which the job must not run.
    pub epoch: Option<i64>,
    /// SUBMIT_REDUCE_JOB(_BACKGROUND): the reducer function name.
    pub reducer: Option<Bytes>,
}

impl SubmitJob {
    /// A plain job: NORMAL priority, no epoch, no reducer.
    pub fn new(
        function: impl Into<Bytes>,
        unique: impl Into<Bytes>,
        data: impl Into<Bytes>,
    ) -> Self {
        SubmitJob {
            function: function.into(),
            unique: unique.into(),
            data: data.into(),
            priority: Priority::Normal,
            mode: JobMode::Foreground,
            epoch: None,
            reducer: None,
        }
    }

    /// The packet type that carries this submission. Epoch jobs are always background
    /// NORMAL and reduce jobs NORMAL, as the protocol has no other variants for them.
    pub fn packet_type(&self) -> PacketType {
        use JobMode::*;
        use Priority::*;
        match (&self.reducer, self.epoch, self.mode, self.priority) {
            (Some(_), _, Foreground, _) => PacketType::SubmitReduceJob,
            (Some(_), _, Background, _) => PacketType::SubmitReduceJobBackground,
            (None, Some(_), _, _) => PacketType::SubmitJobEpoch,
            (None, None, Foreground, High) => PacketType::SubmitJobHigh,
            (None, None, Foreground, Normal) => PacketType::SubmitJob,
            (None, None, Foreground, Low) => PacketType::SubmitJobLow,
            (None, None, Background, High) => PacketType::SubmitJobHighBg,
            (None, None, Background, Normal) => PacketType::SubmitJobBg,
            (None, None, Background, Low) => PacketType::SubmitJobLowBg,
        }
    }
}

/// A message from a client or worker to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// CAN_DO: register for a function.
    CanDo { function: Bytes },
    /// CAN_DO_TIMEOUT: register with a per-job timeout in milliseconds
    /// (`None` when the number overflowed and cannot be honoured).
    CanDoTimeout {
        function: Bytes,
        timeout_ms: Option<u64>,
    },
    /// CANT_DO: unregister a function.
    CantDo { function: Bytes },
    /// RESET_ABILITIES: unregister every function.
    ResetAbilities,
    /// PRE_SLEEP: the worker is about to wait for a NOOP.
    PreSleep,
    /// Any SUBMIT_JOB variant except SUBMIT_JOB_SCHED.
    Submit(SubmitJob),
    /// GRAB_JOB, GRAB_JOB_UNIQ or GRAB_JOB_ALL.
    Grab(GrabKind),
    /// WORK_DATA: a chunk of the result.
    WorkData { handle: Bytes, data: Bytes },
    /// WORK_WARNING: a warning for the clients.
    WorkWarning { handle: Bytes, data: Bytes },
    /// WORK_STATUS: progress, kept as sent so it can be forwarded byte for byte.
    WorkStatus {
        handle: Bytes,
        numerator: Bytes,
        denominator: Bytes,
    },
    /// WORK_COMPLETE: the final result.
    WorkComplete { handle: Bytes, data: Bytes },
    /// WORK_FAIL: the job failed.
    WorkFail { handle: Bytes },
    /// WORK_EXCEPTION: the job failed with a message.
    WorkException { handle: Bytes, data: Bytes },
    /// GET_STATUS by handle.
    GetStatus { handle: Bytes },
    /// GET_STATUS_UNIQUE by unique key.
    GetStatusUnique { unique: Bytes },
    /// ECHO_REQ: answered with the same payload.
    Echo { data: Bytes },
    /// SET_CLIENT_ID: the name shown by the `workers` admin command.
    SetClientId { id: Bytes },
    /// OPTION_REQ: only `exceptions` exists.
    Option { name: Bytes },
}

impl Request {
    /// Converts to the packet that carries it.
    pub fn into_packet(self) -> Packet {
        use PacketType as T;
        let (kind, args): (PacketType, Vec<Bytes>) = match self {
            Request::CanDo { function } => (T::CanDo, vec![function]),
            Request::CanDoTimeout {
                function,
                timeout_ms,
            } => {
                let timeout = timeout_ms.unwrap_or(u64::MAX).to_string();
                (T::CanDoTimeout, vec![function, timeout.into()])
            }
            Request::CantDo { function } => (T::CantDo, vec![function]),
            Request::ResetAbilities => (T::ResetAbilities, vec![]),
            Request::PreSleep => (T::PreSleep, vec![]),
            Request::Submit(job) => {
                let kind = job.packet_type();
                let mut args = vec![job.function, job.unique];
                if let Some(reducer) = job.reducer {
                    // libgearman sends an empty aggregator; the server ignores it.
                    args.push(reducer);
                    args.push(Bytes::new());
                } else if let Some(epoch) = job.epoch {
                    args.push(epoch.to_string().into());
                }
                args.push(job.data);
                (kind, args)
            }
            Request::Grab(GrabKind::Plain) => (T::GrabJob, vec![]),
            Request::Grab(GrabKind::Uniq) => (T::GrabJobUniq, vec![]),
            Request::Grab(GrabKind::All) => (T::GrabJobAll, vec![]),
            Request::WorkData { handle, data } => (T::WorkData, vec![handle, data]),
            Request::WorkWarning { handle, data } => (T::WorkWarning, vec![handle, data]),
            Request::WorkStatus {
                handle,
                numerator,
                denominator,
            } => (T::WorkStatus, vec![handle, numerator, denominator]),
            Request::WorkComplete { handle, data } => (T::WorkComplete, vec![handle, data]),
            Request::WorkFail { handle } => (T::WorkFail, vec![handle]),
            Request::WorkException { handle, data } => (T::WorkException, vec![handle, data]),
            Request::GetStatus { handle } => (T::GetStatus, vec![handle]),
            Request::GetStatusUnique { unique } => (T::GetStatusUnique, vec![unique]),
            Request::Echo { data } => (T::EchoReq, vec![data]),
            Request::SetClientId { id } => (T::SetClientId, vec![id]),
            Request::Option { name } => (T::OptionReq, vec![name]),
        };
        Packet::new(Magic::Req, kind, args)
    }
}

impl From<Request> for Packet {
    fn from(request: Request) -> Packet {
        request.into_packet()
    }
}

impl TryFrom<Packet> for Request {
    type Error = ProtocolError;

    /// Gives a request packet its meaning. Server-to-client types, UNUSED, ALL_YOURS and
    /// SUBMIT_JOB_SCHED are [`ProtocolError::UnexpectedType`] (the server answers them with
    /// `INVALID_COMMAND`); a `\0RES` packet is [`ProtocolError::WrongMagic`].
    fn try_from(packet: Packet) -> Result<Request, ProtocolError> {
        use PacketType as T;
        if packet.magic != Magic::Req {
            return Err(ProtocolError::WrongMagic);
        }
        let kind = packet.kind;
        if packet.args.len() < kind.arg_count() {
            return Err(ProtocolError::MissingArguments {
                kind,
                expected: kind.arg_count(),
            });
        }
        let mut args = packet.args.into_iter();
        let mut next = || args.next().unwrap_or_default();
        let submit = |priority, mode, next: &mut dyn FnMut() -> Bytes| {
            let (function, unique, data) = (next(), next(), next());
            Request::Submit(SubmitJob {
                function,
                unique,
                data,
                priority,
                mode,
                epoch: None,
                reducer: None,
            })
        };
        use JobMode::{Background as Bg, Foreground as Fg};
        use Priority::{High, Low, Normal};
        Ok(match kind {
            T::CanDo => Request::CanDo { function: next() },
            T::CanDoTimeout => {
                let function = next();
                let (timeout, overflow) = parse_i64_prefix(&next());
                let timeout_ms = if overflow {
                    None
                } else {
                    Some(timeout.max(0) as u64)
                };
                Request::CanDoTimeout {
                    function,
                    timeout_ms,
                }
            }
            T::CantDo => Request::CantDo { function: next() },
            T::ResetAbilities => Request::ResetAbilities,
            T::PreSleep => Request::PreSleep,
            T::SubmitJob => submit(Normal, Fg, &mut next),
            T::SubmitJobBg => submit(Normal, Bg, &mut next),
            T::SubmitJobHigh => submit(High, Fg, &mut next),
            T::SubmitJobHighBg => submit(High, Bg, &mut next),
            T::SubmitJobLow => submit(Low, Fg, &mut next),
            T::SubmitJobLowBg => submit(Low, Bg, &mut next),
            T::SubmitJobEpoch => {
                let (function, unique) = (next(), next());
                let (epoch, _) = parse_i64_prefix(&next());
                Request::Submit(SubmitJob {
                    function,
                    unique,
                    data: next(),
                    priority: Normal,
                    mode: Bg,
                    epoch: Some(epoch),
                    reducer: None,
                })
            }
            T::SubmitReduceJob | T::SubmitReduceJobBackground => {
                let (function, unique, reducer, _aggregator) = (next(), next(), next(), next());
                let mode = if kind == T::SubmitReduceJob { Fg } else { Bg };
                Request::Submit(SubmitJob {
                    function,
                    unique,
                    data: next(),
                    priority: Normal,
                    mode,
                    epoch: None,
                    reducer: Some(reducer),
                })
            }
            T::GrabJob => Request::Grab(GrabKind::Plain),
            T::GrabJobUniq => Request::Grab(GrabKind::Uniq),
            T::GrabJobAll => Request::Grab(GrabKind::All),
            T::WorkData => Request::WorkData {
                handle: next(),
                data: next(),
            },
            T::WorkWarning => Request::WorkWarning {
                handle: next(),
                data: next(),
            },
            T::WorkStatus => Request::WorkStatus {
                handle: next(),
                numerator: next(),
                denominator: next(),
            },
            T::WorkComplete => Request::WorkComplete {
                handle: next(),
                data: next(),
            },
            T::WorkFail => Request::WorkFail { handle: next() },
            T::WorkException => Request::WorkException {
                handle: next(),
                data: next(),
            },
            T::GetStatus => Request::GetStatus { handle: next() },
            T::GetStatusUnique => Request::GetStatusUnique { unique: next() },
            T::EchoReq => Request::Echo { data: next() },
            T::SetClientId => Request::SetClientId { id: next() },
            T::OptionReq => Request::Option { name: next() },
            T::Unused
            | T::Noop
            | T::JobCreated
            | T::NoJob
            | T::JobAssign
            | T::EchoRes
            | T::Error
            | T::StatusRes
            | T::AllYours
            | T::OptionRes
            | T::JobAssignUniq
            | T::SubmitJobSched
            | T::JobAssignAll
            | T::StatusResUnique => return Err(ProtocolError::UnexpectedType(kind)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(request: Request) {
        let packet = request.clone().into_packet();
        assert_eq!(Request::try_from(packet), Ok(request));
    }

    #[test]
    fn every_request_round_trips() {
        let h = Bytes::from_static(b"H:host:1");
        let mut job = SubmitJob::new("f", "u", "d\0ata");
        for mode in [JobMode::Foreground, JobMode::Background] {
            for priority in Priority::ALL {
                job.mode = mode;
                job.priority = priority;
                round_trip(Request::Submit(job.clone()));
            }
        }
        round_trip(Request::Submit(SubmitJob {
            epoch: Some(1_700_000_000),
            mode: JobMode::Background,
            priority: Priority::Normal,
            ..job.clone()
        }));
        for mode in [JobMode::Foreground, JobMode::Background] {
            round_trip(Request::Submit(SubmitJob {
                reducer: Some("r".into()),
                mode,
                priority: Priority::Normal,
                ..job.clone()
            }));
        }
        for r in [
            Request::CanDo {
                function: "f".into(),
            },
            Request::CanDoTimeout {
                function: "f".into(),
                timeout_ms: Some(1500),
            },
            Request::CantDo {
                function: "f".into(),
            },
            Request::ResetAbilities,
            Request::PreSleep,
            Request::Grab(GrabKind::Plain),
            Request::Grab(GrabKind::Uniq),
            Request::Grab(GrabKind::All),
            Request::WorkData {
                handle: h.clone(),
                data: "x".into(),
            },
            Request::WorkWarning {
                handle: h.clone(),
                data: "x".into(),
            },
            Request::WorkStatus {
                handle: h.clone(),
                numerator: "1".into(),
                denominator: "3".into(),
            },
            Request::WorkComplete {
                handle: h.clone(),
                data: "".into(),
            },
            Request::WorkFail { handle: h.clone() },
            Request::WorkException {
                handle: h.clone(),
                data: "boom".into(),
            },
            Request::GetStatus { handle: h.clone() },
            Request::GetStatusUnique { unique: "u".into() },
            Request::Echo {
                data: "ping\0pong".into(),
            },
            Request::SetClientId { id: "w1".into() },
            Request::Option {
                name: "exceptions".into(),
            },
        ] {
            round_trip(r);
        }
    }

    #[test]
    fn reduce_job_carries_four_arguments() {
        let packet = Packet::new(
            Magic::Req,
            PacketType::SubmitReduceJobBackground,
            vec![
                "f".into(),
                "ru".into(),
                "red".into(),
                "".into(),
                "map".into(),
            ],
        );
        let Ok(Request::Submit(job)) = Request::try_from(packet) else {
            panic!("reduce job must parse");
        };
        assert_eq!(job.reducer.as_deref(), Some(&b"red"[..]));
        assert_eq!(job.data, "map");
        assert_eq!(job.mode, JobMode::Background);
    }

    #[test]
    fn server_types_and_wrong_magic_are_rejected() {
        let noop = Packet::new(Magic::Req, PacketType::Noop, vec![]);
        assert_eq!(
            Request::try_from(noop),
            Err(ProtocolError::UnexpectedType(PacketType::Noop))
        );
        let echo = Packet::new(Magic::Res, PacketType::EchoReq, vec!["x".into()]);
        assert_eq!(Request::try_from(echo), Err(ProtocolError::WrongMagic));
    }

    #[test]
    fn can_do_timeout_numbers() {
        let parse = |t: &'static str| {
            let p = Packet::new(
                Magic::Req,
                PacketType::CanDoTimeout,
                vec!["f".into(), t.into()],
            );
            match Request::try_from(p) {
                Ok(Request::CanDoTimeout { timeout_ms, .. }) => timeout_ms,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(parse("2500"), Some(2500));
        assert_eq!(parse("abc"), Some(0));
        assert_eq!(parse("123456789012345678901234567890"), None);
    }
}
