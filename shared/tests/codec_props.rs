//! Property tests of the packet codec and the typed messages (the stable, bounded counterpart
//! of `shared/fuzz`'s `codec` target; the properties themselves are in `props/mod.rs`).
//!
//! Each property runs 2,000 cases (`PROPTEST_CASES` overrides), so the suite stays a few
//! seconds long in CI.

mod props;

use bytes::{Bytes, BytesMut};
use gearman_shared::protocol::{
    encode, GrabKind, JobMode, Magic, Packet, PacketType, Priority, Request, Response, SubmitJob,
};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases,
        // A failure prints its minimal input; nothing is written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes that are mostly ordinary, with NULs, spaces and newlines common.
fn any_bytes(max: usize) -> impl Strategy<Value = Bytes> + Clone {
    let byte = prop_oneof![
        4 => any::<u8>(),
        1 => Just(0u8),
        1 => Just(b' '),
        1 => Just(b'\n'),
    ];
    prop::collection::vec(byte, 0..max).prop_map(Bytes::from)
}

/// An argument that the protocol terminates with a NUL, so it cannot contain one.
fn nul_free(max: usize) -> impl Strategy<Value = Bytes> + Clone {
    prop::collection::vec(1u8..=255, 0..max).prop_map(Bytes::from)
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::High),
        Just(Priority::Normal),
        Just(Priority::Low)
    ]
}

fn mode() -> impl Strategy<Value = JobMode> {
    prop_oneof![Just(JobMode::Foreground), Just(JobMode::Background)]
}

/// Every submission the protocol can carry: plain at any priority, epoch (always background
/// NORMAL) and reduce (always NORMAL).
fn submit_job() -> impl Strategy<Value = SubmitJob> {
    let base = (nul_free(12), nul_free(12), any_bytes(48));
    prop_oneof![
        (base.clone(), priority(), mode()).prop_map(|((f, u, d), priority, mode)| SubmitJob {
            priority,
            mode,
            ..SubmitJob::new(f, u, d)
        }),
        (base.clone(), any::<i64>()).prop_map(|((f, u, d), epoch)| SubmitJob {
            mode: JobMode::Background,
            epoch: Some(epoch),
            ..SubmitJob::new(f, u, d)
        }),
        (base, nul_free(8), mode()).prop_map(|((f, u, d), reducer, mode)| SubmitJob {
            mode,
            reducer: Some(reducer),
            ..SubmitJob::new(f, u, d)
        }),
    ]
}

/// Every request. Arguments before the last cannot hold a NUL; the last one can.
fn request() -> impl Strategy<Value = Request> {
    let handle_data = || (nul_free(16), any_bytes(32));
    prop_oneof![
        any_bytes(16).prop_map(|function| Request::CanDo { function }),
        (nul_free(16), prop::option::of(0..=i64::MAX.unsigned_abs())).prop_map(
            |(function, timeout_ms)| Request::CanDoTimeout {
                function,
                timeout_ms
            }
        ),
        any_bytes(16).prop_map(|function| Request::CantDo { function }),
        Just(Request::ResetAbilities),
        Just(Request::PreSleep),
        submit_job().prop_map(Request::Submit),
        prop_oneof![
            Just(GrabKind::Plain),
            Just(GrabKind::Uniq),
            Just(GrabKind::All)
        ]
        .prop_map(Request::Grab),
        handle_data().prop_map(|(handle, data)| Request::WorkData { handle, data }),
        handle_data().prop_map(|(handle, data)| Request::WorkWarning { handle, data }),
        handle_data().prop_map(|(handle, data)| Request::WorkComplete { handle, data }),
        handle_data().prop_map(|(handle, data)| Request::WorkException { handle, data }),
        (nul_free(16), nul_free(8), any_bytes(8)).prop_map(|(handle, numerator, denominator)| {
            Request::WorkStatus {
                handle,
                numerator,
                denominator,
            }
        }),
        any_bytes(16).prop_map(|handle| Request::WorkFail { handle }),
        any_bytes(16).prop_map(|handle| Request::GetStatus { handle }),
        any_bytes(16).prop_map(|unique| Request::GetStatusUnique { unique }),
        any_bytes(48).prop_map(|data| Request::Echo { data }),
        any_bytes(16).prop_map(|id| Request::SetClientId { id }),
        any_bytes(16).prop_map(|name| Request::Option { name }),
    ]
}

/// Every response.
fn response() -> impl Strategy<Value = Response> {
    let handle_data = || (nul_free(16), any_bytes(32));
    let status = (
        nul_free(16),
        any::<bool>(),
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
    );
    prop_oneof![
        Just(Response::Noop),
        Just(Response::NoJob),
        any_bytes(16).prop_map(|handle| Response::JobCreated { handle }),
        (nul_free(16), nul_free(16), any_bytes(32)).prop_map(|(handle, function, data)| {
            Response::JobAssign {
                handle,
                function,
                data,
            }
        }),
        (nul_free(16), nul_free(16), nul_free(16), any_bytes(32)).prop_map(
            |(handle, function, unique, data)| Response::JobAssignUniq {
                handle,
                function,
                unique,
                data,
            }
        ),
        (
            nul_free(16),
            nul_free(16),
            nul_free(16),
            nul_free(16),
            any_bytes(32)
        )
            .prop_map(
                |(handle, function, unique, reducer, data)| Response::JobAssignAll {
                    handle,
                    function,
                    unique,
                    reducer,
                    data,
                }
            ),
        handle_data().prop_map(|(handle, data)| Response::WorkData { handle, data }),
        handle_data().prop_map(|(handle, data)| Response::WorkWarning { handle, data }),
        handle_data().prop_map(|(handle, data)| Response::WorkComplete { handle, data }),
        handle_data().prop_map(|(handle, data)| Response::WorkException { handle, data }),
        (nul_free(16), nul_free(8), any_bytes(8)).prop_map(|(handle, numerator, denominator)| {
            Response::WorkStatus {
                handle,
                numerator,
                denominator,
            }
        }),
        any_bytes(16).prop_map(|handle| Response::WorkFail { handle }),
        any_bytes(48).prop_map(|data| Response::Echo { data }),
        (nul_free(16), any_bytes(32)).prop_map(|(code, text)| Response::Error { code, text }),
        status
            .clone()
            .prop_map(
                |(handle, known, running, numerator, denominator)| Response::Status {
                    handle,
                    known,
                    running,
                    numerator,
                    denominator,
                }
            ),
        (status, any::<u32>()).prop_map(
            |((unique, known, running, numerator, denominator), clients)| {
                Response::StatusUnique {
                    unique,
                    known,
                    running,
                    numerator,
                    denominator,
                    clients,
                }
            }
        ),
        any_bytes(16).prop_map(|name| Response::Option { name }),
    ]
}

/// A packet of any type and either magic with any arguments: what a confused or hostile peer
/// could frame.
fn raw_packet() -> impl Strategy<Value = Packet> {
    (
        any::<bool>(),
        1u32..=42,
        prop::collection::vec(any_bytes(12), 0..7),
    )
        .prop_map(|(req, number, args)| {
            let magic = if req { Magic::Req } else { Magic::Res };
            let kind = PacketType::from_u32(number).expect("1..=42 are packet types");
            Packet::new(magic, kind, args)
        })
}

/// One piece of a stream: a typed message, a raw packet, an admin line, or garbage.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let wire = |p: Packet| {
        let mut buf = BytesMut::new();
        encode(&p, &mut buf);
        buf.to_vec()
    };
    let words = prop::sample::select(vec![
        "status",
        "workers",
        "show jobs",
        "show unique jobs",
        "maxqueue f 1 2 3",
        "create function x",
        "cancel job H:h:1",
        "a b c d e f",
        "",
    ]);
    prop_oneof![
        3 => request().prop_map(move |r| wire(r.into_packet())),
        3 => response().prop_map(move |r| wire(r.into_packet())),
        2 => raw_packet().prop_map(wire),
        2 => (words, any::<bool>()).prop_map(|(w, crlf)| {
            format!("{w}{}", if crlf { "\r\n" } else { "\n" }).into_bytes()
        }),
        1 => any_bytes(24).prop_map(|b| b.to_vec()),
        1 => (raw_packet(), any::<u8>()).prop_map(move |(p, cut)| {
            // A packet cut short, or with a corrupted header byte.
            let mut bytes = wire(p);
            let at = usize::from(cut) % bytes.len();
            if cut & 1 == 0 {
                bytes.truncate(at);
            } else {
                bytes[at % 12] ^= cut | 1;
            }
            bytes
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Request → packet → bytes → packet → request gives the request back.
    #[test]
    fn requests_round_trip(request in request()) {
        props::check_request(&request);
    }

    /// Response → packet → bytes → packet → response gives the response back.
    #[test]
    fn responses_round_trip(response in response()) {
        props::check_response(&response);
    }

    /// A stream of mixed frames, under small limits: decoding at once and in chunks agree,
    /// frames re-encode to their bytes, typed conversions round-trip, text lines parse.
    #[test]
    fn mixed_streams(
        limits in (any::<u8>(), any::<u8>(), any::<u8>()),
        pieces in prop::collection::vec(piece(), 0..8),
    ) {
        let mut data = vec![limits.0, limits.1, limits.2];
        data.extend(pieces.concat());
        props::check_codec(&data);
    }

    /// The same with generous limits, so that most frames decode.
    #[test]
    fn mixed_streams_within_limits(chunk in any::<u8>(), pieces in prop::collection::vec(piece(), 0..8)) {
        let mut data = vec![u8::MAX, 79, chunk];
        data.extend(pieces.concat());
        props::check_codec(&data);
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..256)) {
        props::check_codec(&data);
    }
}
