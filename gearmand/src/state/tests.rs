//! Unit tests of the job model with an injected clock.

use super::*;
use gearman_shared::protocol::{GrabKind, JobMode, Priority, SubmitJob};

const T0: u64 = 1_800_000_000_000;

fn state() -> State {
    State::new(StateConfig {
        handle_prefix: Bytes::from_static(b"H:t"),
        job_retries: 0,
        worker_wakeup: 0,
        round_robin: false,
        exceptions: false,
        persistent: false,
        session: 1,
    })
}

fn with_peers(mut s: State, n: u64) -> State {
    for i in 1..=n {
        s.connect(
            ConnId(i),
            PeerInfo {
                fd: i as i64,
                address: "127.0.0.1".into(),
                identity: None,
            },
        );
    }
    s
}

fn packets(s: &mut State) -> Vec<(u64, Response)> {
    s.take_output()
        .filter_map(|(c, o)| match o {
            Outgoing::Packet(p) => Some((c.0, p)),
            _ => None,
        })
        .collect()
}

fn submit(s: &mut State, conn: u64, job: SubmitJob) {
    s.handle(ConnId(conn), Request::Submit(job), T0);
}

fn created(handle: &'static str) -> Response {
    Response::JobCreated {
        handle: handle.into(),
    }
}

#[test]
fn coalescing_rules() {
    let mut s = with_peers(state(), 2);
    submit(&mut s, 1, SubmitJob::new("f", "", "a"));
    submit(&mut s, 1, SubmitJob::new("f", "", "a"));
    submit(&mut s, 1, SubmitJob::new("f", "-", "same"));
    submit(&mut s, 2, SubmitJob::new("f", "-", "same"));
    submit(&mut s, 1, SubmitJob::new("f", "u", "x"));
    submit(&mut s, 1, SubmitJob::new("g", "u", "x"));
    let handles: Vec<_> = packets(&mut s).into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        handles,
        vec![
            created("H:t:1"),
            created("H:t:2"),
            created("H:t:3"),
            created("H:t:3"),
            created("H:t:4"),
            created("H:t:5"),
        ]
    );
}

#[test]
fn grab_serves_priorities_then_newest_function() {
    let mut s = with_peers(state(), 2);
    let mut low = SubmitJob::new("a", "", "low");
    low.priority = Priority::Low;
    low.mode = JobMode::Background;
    submit(&mut s, 1, low);
    let mut high = SubmitJob::new("a", "", "high");
    high.priority = Priority::High;
    submit(&mut s, 1, high);
    submit(&mut s, 1, SubmitJob::new("b", "", "b-job"));
    s.handle(
        ConnId(2),
        Request::CanDo {
            function: "a".into(),
        },
        T0,
    );
    s.handle(
        ConnId(2),
        Request::CanDo {
            function: "b".into(),
        },
        T0,
    );
    packets(&mut s);
    let mut order = Vec::new();
    for _ in 0..4 {
        s.handle(ConnId(2), Request::Grab(GrabKind::Plain), T0);
        for (_, r) in packets(&mut s) {
            order.push(match r {
                Response::JobAssign { data, .. } => String::from_utf8_lossy(&data).into_owned(),
                Response::NoJob => "none".into(),
                other => panic!("unexpected {other:?}"),
            });
        }
    }
    assert_eq!(order, ["b-job", "high", "low", "none"]);
}

#[test]
fn sleeping_worker_gets_one_noop() {
    let mut s = with_peers(state(), 2);
    s.handle(
        ConnId(2),
        Request::CanDo {
            function: "f".into(),
        },
        T0,
    );
    s.handle(ConnId(2), Request::PreSleep, T0);
    submit(&mut s, 1, SubmitJob::new("f", "", "1"));
    submit(&mut s, 1, SubmitJob::new("f", "", "2"));
    let noops = packets(&mut s)
        .into_iter()
        .filter(|(c, r)| *c == 2 && *r == Response::Noop)
        .count();
    assert_eq!(noops, 1);
    // Work already waiting: PRE_SLEEP is answered at once.
    s.handle(ConnId(2), Request::Grab(GrabKind::Plain), T0);
    s.handle(ConnId(2), Request::PreSleep, T0);
    let replies = packets(&mut s);
    assert_eq!(replies.last(), Some(&(2, Response::Noop)));
}

#[test]
fn worker_disconnect_requeues_and_retry_limit_fails() {
    let mut s = with_peers(state(), 3);
    s.config.job_retries = 2;
    submit(&mut s, 1, SubmitJob::new("f", "", "x"));
    for worker in [2, 3] {
        s.handle(
            ConnId(worker),
            Request::CanDo {
                function: "f".into(),
            },
            T0,
        );
        s.handle(ConnId(worker), Request::Grab(GrabKind::Plain), T0);
        s.disconnect(ConnId(worker));
    }
    let out = packets(&mut s);
    assert_eq!(
        out.last(),
        Some(&(
            1,
            Response::WorkFail {
                handle: "H:t:1".into()
            }
        ))
    );
    assert_eq!(s.job_count(), 0);
}

#[test]
fn exception_becomes_plain_fail_without_the_option() {
    let mut s = with_peers(state(), 3);
    s.handle(
        ConnId(2),
        Request::Option {
            name: "EXCEPTIONS".into(),
        },
        T0,
    );
    submit(&mut s, 1, SubmitJob::new("f", "u", "x"));
    submit(&mut s, 2, SubmitJob::new("f", "u", "x"));
    s.handle(
        ConnId(3),
        Request::CanDo {
            function: "f".into(),
        },
        T0,
    );
    s.handle(ConnId(3), Request::Grab(GrabKind::Plain), T0);
    packets(&mut s);
    s.handle(
        ConnId(3),
        Request::WorkException {
            handle: "H:t:1".into(),
            data: "boom".into(),
        },
        T0,
    );
    let out = packets(&mut s);
    assert!(out.contains(&(
        1,
        Response::WorkFail {
            handle: "H:t:1".into()
        }
    )));
    assert!(out.contains(&(
        2,
        Response::WorkException {
            handle: "H:t:1".into(),
            data: "boom".into()
        }
    )));
}

#[test]
fn epoch_job_wakes_sleeper_when_due_and_does_not_block_low() {
    let mut s = with_peers(state(), 2);
    let mut epoch = SubmitJob::new("f", "", "later");
    epoch.mode = JobMode::Background;
    epoch.epoch = Some((T0 / 1000) as i64 + 5);
    submit(&mut s, 1, epoch);
    let mut low = SubmitJob::new("f", "", "low");
    low.priority = Priority::Low;
    submit(&mut s, 1, low);
    s.handle(
        ConnId(2),
        Request::CanDo {
            function: "f".into(),
        },
        T0,
    );
    s.handle(ConnId(2), Request::Grab(GrabKind::Plain), T0);
    let out = packets(&mut s);
    assert!(matches!(out.last(), Some((2, Response::JobAssign { data, .. })) if data == "low"));
    s.handle(ConnId(2), Request::PreSleep, T0);
    assert_eq!(s.next_deadline(), Some(T0 + 5000));
    s.tick(T0 + 4999);
    assert!(packets(&mut s).is_empty());
    s.tick(T0 + 5000);
    assert_eq!(packets(&mut s), vec![(2, Response::Noop)]);
}

#[test]
fn can_do_timeout_requeues_only_the_running_attempt() {
    let mut s = with_peers(state(), 2);
    s.handle(
        ConnId(2),
        Request::CanDoTimeout {
            function: "f".into(),
            timeout_ms: Some(10),
        },
        T0,
    );
    submit(&mut s, 1, SubmitJob::new("f", "", "a"));
    submit(&mut s, 1, SubmitJob::new("f", "", "b"));
    s.handle(ConnId(2), Request::Grab(GrabKind::Plain), T0);
    s.handle(
        ConnId(2),
        Request::WorkComplete {
            handle: "H:t:1".into(),
            data: "".into(),
        },
        T0 + 10,
    );
    s.handle(ConnId(2), Request::Grab(GrabKind::Plain), T0 + 10);
    packets(&mut s);
    // Minimum timeout is one second; job 2 was grabbed at T0+10.
    s.tick(T0 + 1009);
    assert!(packets(&mut s).is_empty());
    s.tick(T0 + 1010);
    s.handle(
        ConnId(2),
        Request::WorkComplete {
            handle: "H:t:2".into(),
            data: "".into(),
        },
        T0 + 1011,
    );
    let out = packets(&mut s);
    assert!(matches!(&out[..], [(2, Response::Error { .. })]), "{out:?}");
    assert_eq!(s.job_count(), 1);
}

#[test]
fn abandoned_job_is_reaped_and_frees_its_unique() {
    let mut s = with_peers(state(), 3);
    submit(&mut s, 1, SubmitJob::new("f", "u", "x"));
    packets(&mut s);
    s.disconnect(ConnId(1));
    submit(&mut s, 2, SubmitJob::new("f", "u", "x"));
    assert_eq!(packets(&mut s), vec![(2, created("H:t:2"))]);
    s.handle(
        ConnId(3),
        Request::CanDo {
            function: "f".into(),
        },
        T0,
    );
    s.handle(ConnId(3), Request::Grab(GrabKind::Plain), T0);
    let out = packets(&mut s);
    assert!(matches!(&out[..], [(3, Response::JobAssign { handle, .. })] if handle == "H:t:2"));
    assert_eq!(s.job_count(), 1);
}

#[test]
fn unique_limits() {
    let mut s = with_peers(state(), 1);
    let u64b = "u".repeat(64);
    submit(&mut s, 1, SubmitJob::new("f", u64b.clone(), "x"));
    submit(&mut s, 1, SubmitJob::new("f", u64b, "x"));
    submit(&mut s, 1, SubmitJob::new("f", "u".repeat(65), "x"));
    let out: Vec<_> = packets(&mut s).into_iter().map(|(_, r)| r).collect();
    assert_eq!(out[0], created("H:t:1"));
    assert_eq!(out[1], created("H:t:1"));
    assert_eq!(
        out[2],
        Response::error(ErrorCode::ArgumentTooLarge, "Unique value too large")
    );
}

#[test]
fn worker_wakeup_limit_rotates() {
    let mut s = with_peers(state(), 4);
    s.config.worker_wakeup = 1;
    for w in 2..=4 {
        s.handle(
            ConnId(w),
            Request::CanDo {
                function: "f".into(),
            },
            T0,
        );
        s.handle(ConnId(w), Request::PreSleep, T0);
    }
    let mut woken = Vec::new();
    for _ in 0..3 {
        submit(&mut s, 1, SubmitJob::new("f", "", "x"));
        for (c, r) in packets(&mut s) {
            if r == Response::Noop {
                woken.push(c);
            }
        }
    }
    woken.sort_unstable();
    assert_eq!(woken, vec![2, 3, 4]);
}

#[test]
fn sleeper_grabs_job_after_noop() {
    let mut s = with_peers(state(), 2);
    s.handle(
        ConnId(2),
        Request::CanDo {
            function: "reverse".into(),
        },
        T0,
    );
    s.handle(ConnId(2), Request::Grab(GrabKind::All), T0);
    s.handle(ConnId(2), Request::PreSleep, T0);
    submit(&mut s, 1, SubmitJob::new("reverse", "", "hello"));
    s.handle(ConnId(2), Request::Grab(GrabKind::All), T0);
    let out = packets(&mut s);
    assert!(
        matches!(out.last(), Some((2, Response::JobAssignUniq { data, .. })) if data == "hello"),
        "{out:?}"
    );
}

#[test]
fn only_the_canonical_spelling_of_a_handle_names_a_job() {
    let mut s = with_peers(state(), 1);
    for _ in 0..12 {
        submit(&mut s, 1, SubmitJob::new("f", "", "x"));
    }
    assert_eq!(s.job_by_handle(b"H:t:1"), Some(JobId(1)));
    assert_eq!(s.job_by_handle(b"H:t:12"), Some(JobId(12)));
    for other in [
        &b"H:t:01"[..],
        b"H:t:+1",
        b"H:t:13",
        b"H:t:",
        b"H:t1",
        b"H:u:1",
        b"H:t:1 ",
        b"H:t:99999999999999999999999",
    ] {
        assert_eq!(
            s.job_by_handle(other),
            None,
            "{}",
            String::from_utf8_lossy(other)
        );
    }
}

#[test]
fn a_drained_queue_gives_its_table_memory_back() {
    let mut s = with_peers(state(), 2);
    for i in 0..20_000 {
        let job = SubmitJob {
            mode: JobMode::Background,
            ..SubmitJob::new("f", format!("u{i}"), "x")
        };
        submit(&mut s, 1, job);
    }
    let full = s.jobs.capacity();
    assert!(full >= 20_000);
    s.handle(
        ConnId(2),
        Request::CanDo {
            function: Bytes::from_static(b"f"),
        },
        T0,
    );
    for _ in 0..20_000 {
        s.handle(ConnId(2), Request::Grab(GrabKind::Plain), T0);
        let assigned = packets(&mut s).into_iter().find_map(|(_, r)| match r {
            Response::JobAssign { handle, .. } => Some(handle),
            _ => None,
        });
        let handle = assigned.expect("a job for every grab");
        s.handle(
            ConnId(2),
            Request::WorkComplete {
                handle,
                data: Bytes::new(),
            },
            T0,
        );
    }
    assert_eq!(s.job_count(), 0);
    assert!(
        s.jobs.capacity() <= job_table::SHRINK_FLOOR * 2,
        "{} slots left of {full}",
        s.jobs.capacity()
    );
    let queue = &s.functions[&Bytes::from_static(b"f")].queues;
    assert!(queue
        .iter()
        .all(|q| q.capacity() <= job_table::SHRINK_FLOOR * 2));
}
