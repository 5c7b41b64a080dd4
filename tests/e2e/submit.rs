//! Job submission: every SUBMIT variant, handle numbering, coalescing on the unique key,
//! priorities, unique/reducer length limits and maxqueue (shared/docs/protocol.md §3.1, §4.2–§4.5,
//! §10).

use bytes::Bytes;
use gearman_shared::protocol::{
    ErrorCode, JobMode, PacketType, Priority, Request, Response, SubmitJob,
};

use crate::harness::{b, bg_job, h, job, Server};

fn reduce_job(unique: impl AsRef<[u8]>, reducer: impl AsRef<[u8]>, mode: JobMode) -> SubmitJob {
    SubmitJob {
        reducer: Some(b(reducer)),
        mode,
        ..job("f", unique, "mapdata")
    }
}

/// One submission of each packet type, with an empty unique so none coalesce.
fn every_variant() -> Vec<SubmitJob> {
    let fg = |priority, data: &str| SubmitJob {
        priority,
        ..job("f", "", data)
    };
    vec![
        fg(Priority::Normal, "1 normal"),
        fg(Priority::High, "2 high"),
        fg(Priority::Low, "3 low"),
        bg_job("f", "", "4 normal bg", Priority::Normal),
        bg_job("f", "", "5 high bg", Priority::High),
        bg_job("f", "", "6 low bg", Priority::Low),
        SubmitJob {
            epoch: Some(0),
            mode: JobMode::Background,
            ..job("f", "", "7 epoch")
        },
        SubmitJob {
            data: b("8 reduce"),
            ..reduce_job("", "r", JobMode::Foreground)
        },
        SubmitJob {
            data: b("9 reduce bg"),
            ..reduce_job("", "r", JobMode::Background)
        },
    ]
}

#[test]
fn every_submit_variant_gets_a_handle_numbered_from_1() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let kinds: Vec<PacketType> = every_variant().iter().map(|j| j.packet_type()).collect();
    assert_eq!(
        kinds,
        [
            PacketType::SubmitJob,
            PacketType::SubmitJobHigh,
            PacketType::SubmitJobLow,
            PacketType::SubmitJobBg,
            PacketType::SubmitJobHighBg,
            PacketType::SubmitJobLowBg,
            PacketType::SubmitJobEpoch,
            PacketType::SubmitReduceJob,
            PacketType::SubmitReduceJobBackground,
        ]
    );
    for (i, j) in every_variant().into_iter().enumerate() {
        assert_eq!(c.submit(j), h(i as u32 + 1));
    }
    // HIGH before NORMAL before LOW, FIFO within a priority; epoch and reduce jobs are NORMAL.
    let mut w = server.connect();
    w.register(&["f"]);
    let order: Vec<Bytes> = (0..9).map(|_| w.grab().0).collect();
    assert_eq!(order, [2, 5, 1, 4, 7, 8, 9, 3, 6].map(h));
    w.grab_none();
}

#[test]
fn a_megabyte_of_binary_data_travels_intact() {
    let server = Server::start(&[]);
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut c = server.connect();
    let handle = c.submit(job("f", "", &data));
    let mut w = server.connect();
    w.register(&["f"]);
    let (got, _, workload) = w.grab();
    assert_eq!(got, handle);
    assert!(workload == data, "workload changed in transit");
    let mut result = data.clone();
    result.reverse();
    w.complete(&handle, &result);
    c.expect(Response::WorkComplete {
        handle,
        data: Bytes::from(result),
    });
}

#[test]
fn handles_use_the_given_prefix() {
    let server = Server::start(&["--job-handle-prefix", "X"]);
    let mut c = server.connect();
    assert_eq!(c.submit_fg("f", "", "d"), b("X:1"));
    assert_eq!(c.submit_bg("f", "", "d"), b("X:2"));
}

#[test]
fn priorities_are_served_high_normal_low_and_fifo_within_each() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    for (data, prio) in [
        ("L1", Priority::Low),
        ("N1", Priority::Normal),
        ("H1", Priority::High),
        ("L2", Priority::Low),
        ("N2", Priority::Normal),
        ("H2", Priority::High),
    ] {
        c.submit(bg_job("f", "", data, prio));
    }
    let mut w = server.connect();
    w.register(&["f"]);
    let order: Vec<Bytes> = (0..6).map(|_| w.grab().2).collect();
    assert_eq!(order, ["H1", "H2", "N1", "N2", "L1", "L2"].map(b));
}

#[test]
fn empty_unique_never_coalesces() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    assert_eq!(c.submit_fg("f", "", "same"), h(1));
    assert_eq!(c.submit_fg("f", "", "same"), h(2));
    assert_eq!(c.submit_bg("f", "", "same"), h(3));
    assert_eq!(c.submit_bg("f", "", "same"), h(4));
}

#[test]
fn dash_unique_coalesces_on_identical_data() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    assert_eq!(c.submit_bg("f", "-", "same"), h(1));
    assert_eq!(c.submit_bg("f", "-", "same"), h(1));
    assert_eq!(c.submit_fg("f", "-", "same"), h(1));
    assert_eq!(c.submit_bg("f", "-", "other"), h(2));
    // Same data under another function is another job.
    assert_eq!(c.submit_bg("g", "-", "same"), h(3));
    // `-` with empty data does not coalesce at all.
    assert_eq!(c.submit_bg("f", "-", ""), h(4));
    assert_eq!(c.submit_bg("f", "-", ""), h(5));
    let mut w = server.connect();
    w.register(&["f"]);
    let (handle, _, unique, data) = w.grab_uniq();
    assert_eq!((handle, unique, data), (h(1), b("-"), b("same")));
}

#[test]
fn same_unique_coalesces_only_within_a_function() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    assert_eq!(c.submit_bg("f", "u1", "a"), h(1));
    assert_eq!(c.submit_bg("f", "u1", "b"), h(1));
    assert_eq!(c.submit_bg("g", "u1", "a"), h(2));
    assert_eq!(c.submit_bg("f", "u2", "a"), h(3));
    // Unique keys compare as exact bytes.
    assert_eq!(c.submit_bg("f", "U1", "a"), h(4));
}

#[test]
fn coalesced_submission_keeps_the_first_priority_and_data_and_uses_no_number() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    assert_eq!(c.submit_fg("f", "", "plain"), h(1));
    assert_eq!(c.submit_fg("f", "u1", "first"), h(2));
    let high_bg = bg_job("f", "u1", "second", Priority::High);
    assert_eq!(c.submit(high_bg), h(2));
    assert_eq!(c.submit_fg("f", "", "next"), h(3));
    let mut w = server.connect();
    w.register(&["f"]);
    let grabbed: Vec<(Bytes, Bytes)> = (0..3)
        .map(|_| {
            let (handle, _, data) = w.grab();
            (handle, data)
        })
        .collect();
    assert_eq!(
        grabbed,
        [(h(1), b("plain")), (h(2), b("first")), (h(3), b("next"))]
    );
}

#[test]
fn coalesced_client_receives_later_work_packets_but_not_earlier_ones() {
    let server = Server::start(&[]);
    let mut c1 = server.connect();
    let mut c2 = server.connect();
    let mut w = server.connect();
    w.register(&["f"]);
    let handle = c1.submit_fg("f", "u1", "data");
    let (grabbed, _, _) = w.grab();
    assert_eq!(grabbed, handle);
    w.send(Request::WorkData {
        handle: handle.clone(),
        data: b("early"),
    });
    c1.expect(Response::WorkData {
        handle: handle.clone(),
        data: b("early"),
    });
    // Jobs coalesce while running, too.
    assert_eq!(c2.submit_fg("f", "u1", "ignored"), handle);
    w.send(Request::WorkData {
        handle: handle.clone(),
        data: b("late"),
    });
    w.complete(&handle, b"done");
    for c in [&mut c1, &mut c2] {
        c.expect(Response::WorkData {
            handle: handle.clone(),
            data: b("late"),
        });
        c.expect(Response::WorkComplete {
            handle: handle.clone(),
            data: b("done"),
        });
        c.expect_nothing(100);
    }
}

#[test]
fn a_finished_job_frees_its_unique() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let mut w = server.connect();
    w.register(&["f"]);
    assert_eq!(c.submit_fg("f", "u1", "d"), h(1));
    w.grab();
    w.complete(&h(1), b"r");
    c.expect(Response::WorkComplete {
        handle: h(1),
        data: b("r"),
    });
    assert_eq!(c.submit_fg("f", "u1", "d"), h(2));
}

#[test]
fn unique_over_64_bytes_is_refused_without_using_a_number() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let long = "u".repeat(65);
    let variants = every_variant()
        .into_iter()
        .filter(|j| j.reducer.is_none())
        .map(|j| SubmitJob {
            unique: b(&long),
            ..j
        });
    for j in variants {
        let kind = j.packet_type();
        c.send(Request::Submit(j));
        let got = c.recv();
        assert_eq!(
            got,
            Response::error(ErrorCode::ArgumentTooLarge, "Unique value too large"),
            "{}",
            kind.name()
        );
    }
    assert_eq!(c.submit_fg("f", "u".repeat(64).as_str(), "d"), h(1));
}

#[test]
fn fix_unique_of_64_bytes_is_stored_whole() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let u64 = "0123456789abcdef".repeat(4);
    assert_eq!(c.submit_bg("f", &u64, "d"), h(1));
    assert_eq!(
        c.submit_bg("f", &u64, "d"),
        h(1),
        "64-byte unique must coalesce"
    );
    // 63 bytes in common is not the same key.
    let other = format!("{}X", &u64[..63]);
    assert_eq!(c.submit_bg("f", &other, "d"), h(2));
    let mut w = server.connect();
    w.register(&["f"]);
    let (handle, _, unique, _) = w.grab_uniq();
    assert_eq!((handle, unique), (h(1), b(&u64)));
}

#[test]
fn reducer_over_64_bytes_is_refused() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    for mode in [JobMode::Foreground, JobMode::Background] {
        c.send(Request::Submit(reduce_job("u", "r".repeat(65), mode)));
        c.expect_error(ErrorCode::ArgumentTooLarge, "Unique value too large");
    }
    let ok = reduce_job("u", "r".repeat(64), JobMode::Background);
    assert_eq!(c.submit(ok), h(1));
}

#[test]
fn fix_reduce_unique_over_64_bytes_is_refused() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    for mode in [JobMode::Foreground, JobMode::Background] {
        c.send(Request::Submit(reduce_job("u".repeat(65), "r", mode)));
        c.expect_error(ErrorCode::ArgumentTooLarge, "Unique value too large");
    }
    assert_eq!(c.submit_fg("f", "", "d"), h(1));
}

#[test]
fn maxqueue_counts_queued_and_running_jobs_but_not_coalesced_ones() {
    let server = Server::start(&[]);
    let mut w = server.connect();
    // maxqueue ignores functions that do not exist yet.
    w.register(&["f"]);
    let mut admin = server.connect();
    assert_eq!(admin.admin("maxqueue f 2"), "OK\r\n");
    let mut c = server.connect();
    assert_eq!(c.submit_bg("f", "u1", "a"), h(1));
    assert_eq!(c.submit_bg("f", "u2", "b"), h(2));
    assert_eq!(w.grab().0, h(1));
    for prio in Priority::ALL {
        c.send(Request::Submit(bg_job("f", "", "c", prio)));
        c.expect_error(ErrorCode::QueueError, "Job queue is full");
    }
    c.send(Request::Submit(job("f", "", "fg")));
    c.expect_error(ErrorCode::QueueError, "Job queue is full");
    // A coalesced submission creates nothing, so the limit does not apply.
    assert_eq!(c.submit_bg("f", "u2", "b"), h(2));
    assert_eq!(c.submit_fg("f", "u1", "a"), h(1));
    // Refused submissions used no handle number.
    assert_eq!(admin.admin("maxqueue f"), "OK\r\n");
    assert_eq!(c.submit_bg("f", "", "d"), h(3));
}
