//! Fairness on one I/O thread: a connection that pipelines large ECHO bursts (and reads
//! its replies) must not stall its neighbour on the same thread. With `-t 1` the one I/O
//! thread also processes, so a reader that never yielded once kept the neighbour waiting
//! 0.3–0.9 s when the flood began. The bounds here are generous: the suite runs tests in
//! parallel on shared 2-core machines, so this guards against a neighbour starved for
//! good, while the reactor's unit test pins the budget itself and the bench (`flood`)
//! measures the latencies.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gearman_shared::protocol::{encode, Magic, Packet, PacketType};

use crate::harness::Server;

/// One burst: this many ECHO_REQ packets of [`PAYLOAD`] bytes, written at once.
const BURST: usize = 64;
const PAYLOAD: usize = 64 * 1024;
/// Reply header (12 bytes) plus the echoed payload.
const REPLY: usize = 12 + PAYLOAD;

#[test]
fn ours_a_flooding_connection_does_not_stall_its_neighbour() {
    let server = Server::start(&["-t", "1"]);
    let addr = server.addr();
    let mut burst = BytesMut::new();
    let payload = Bytes::from(vec![b'f'; PAYLOAD]);
    let echo = Packet::new(Magic::Req, PacketType::EchoReq, vec![payload]);
    for _ in 0..BURST {
        encode(&echo, &mut burst);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = Arc::clone(&stop);
    let flood = thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect the flood");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut buf = vec![0u8; 1 << 20];
        let mut bursts = 0usize;
        let deadline = Instant::now() + Duration::from_secs(20);
        // A burst, then all its replies: the server always has a burst's input ready.
        while !flooding.load(Ordering::SeqCst) && Instant::now() < deadline {
            stream.write_all(&burst).expect("write a burst");
            let mut left = BURST * REPLY;
            while left > 0 {
                let n = stream.read(&mut buf).expect("read the burst's replies");
                assert!(n > 0, "the server closed the flood");
                left = left.checked_sub(n).expect("more replies than requests");
            }
            bursts += 1;
        }
        bursts
    });
    // Let the flood get going, then time the neighbour's round trips.
    thread::sleep(Duration::from_millis(50));
    let mut neighbour = server.connect();
    let mut times = Vec::new();
    for _ in 0..300 {
        let started = Instant::now();
        neighbour.echo(b"neighbour");
        times.push(started.elapsed());
        thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::SeqCst);
    let bursts = flood.join().expect("flood thread");
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    let worst = times[times.len() - 1];
    assert!(bursts >= 2, "the flood sent only {bursts} bursts");
    assert!(
        p99 < Duration::from_millis(150) && worst < Duration::from_millis(750),
        "neighbour ECHO p99 {p99:?}, worst {worst:?} beside a flood of {bursts} bursts"
    );
}
