//! Memory the server holds for queued jobs, and gives back once they are done: an operator
//! who saw a backlog come and go must not find the server still holding its peak.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gearman_shared::protocol::{GrabKind, PacketType, Priority, Request};

use crate::harness::{bg_job, show, status_kib, Client, Server};

/// Queued jobs and their payload size: ~50 MiB of payload, far above the start-up RSS.
const JOBS: usize = 100_000;
const PAYLOAD: usize = 512;
/// Requests sent before their replies are read.
const WINDOW: usize = 500;

/// Submits `JOBS` background jobs, `WINDOW` at a time.
fn queue_jobs(client: &mut Client) {
    let data = vec![b'm'; PAYLOAD];
    for batch in 0..JOBS / WINDOW {
        for i in 0..WINDOW {
            // Distinct unique keys: nothing coalesces, every job is its own record.
            let unique = format!("m-{}", batch * WINDOW + i);
            client.send(Request::Submit(bg_job(
                "mem",
                unique,
                &data,
                Priority::Normal,
            )));
        }
        for _ in 0..WINDOW {
            let p = client.recv_packet();
            assert_eq!(p.kind, PacketType::JobCreated, "got {}", show(&p));
        }
    }
}

/// Grabs and completes every queued job, `WINDOW` held at a time.
fn drain_jobs(worker: &mut Client) {
    worker.can_do("mem");
    for _ in 0..JOBS / WINDOW {
        for _ in 0..WINDOW {
            worker.send(Request::Grab(GrabKind::Plain));
        }
        let mut handles = Vec::with_capacity(WINDOW);
        for _ in 0..WINDOW {
            let p = worker.recv_packet();
            assert_eq!(p.kind, PacketType::JobAssign, "got {}", show(&p));
            handles.push(Bytes::copy_from_slice(p.arg(0)));
        }
        for handle in &handles {
            worker.complete(handle, b"");
        }
    }
    worker.grab_none();
}

/// Resident heap memory (`RssAnon`): the binary's own pages are left out, as they come in
/// as more of its code runs, whatever the queue does.
fn heap_kib(server: &Server) -> u64 {
    status_kib(server.pid(), "RssAnon")
}

/// Queues and drains a backlog on a server started with `args`, and checks that what the
/// queue took is given back.
fn drained_queue_memory_goes_back(args: &[&str]) {
    let server = Server::start(args);
    let mut client = server.connect();
    client.sync();
    let start = heap_kib(&server);

    queue_jobs(&mut client);
    let queued = heap_kib(&server);
    let grown = queued.saturating_sub(start);
    assert!(
        grown > (JOBS * PAYLOAD / 1024) as u64,
        "the heap grew by only {grown} KiB for {JOBS} jobs of {PAYLOAD} bytes"
    );
    assert_eq!(client.status_of("mem"), Some((JOBS as u64, 0, 0)));

    let mut worker = server.connect();
    drain_jobs(&mut worker);
    assert_eq!(client.status_of("mem"), Some((0, 0, 1)));

    // A server thread gives its freed memory back after a second of idleness: wait for
    // it, boundedly.
    let limit = start + grown / 10;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut now = heap_kib(&server);
    while now > limit && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        now = heap_kib(&server);
    }
    assert!(
        now <= limit,
        "heap {now} KiB after the drain: {start} KiB at start, {queued} KiB with the queue; \
         at most {limit} KiB expected"
    );
    // And the server still serves.
    client.echo(b"after the drain");
}

#[test]
fn ours_memory_of_a_drained_queue_goes_back_to_the_system() {
    drained_queue_memory_goes_back(&[]);
}

#[test]
fn ours_memory_of_a_drained_queue_goes_back_to_the_system_single_threaded() {
    drained_queue_memory_goes_back(&["-t", "0"]);
}
