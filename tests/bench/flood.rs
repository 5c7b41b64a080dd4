//! `flood`: fairness on one I/O thread. One connection pipelines bursts of large
//! ECHO_REQs (`--flood-burst` × `--flood-payload`, 64 × 64 KiB) and reads all their
//! replies before the next burst, in a loop; beside it a second connection makes
//! `--flood-echoes` sequential ECHO round trips `--flood-interval-ms` apart and times
//! each. The servers run with `-t 1`, so both connections share the one I/O thread. The
//! target (issue "a connection beside a flooding one"): the neighbour's p99 at most
//! [`P99_TARGET_MS`], its worst round trip at most [`WORST_TARGET_MS`].
//!
//! The flooding connection is written by one thread and read by another, so that a
//! server that answers while a burst is still arriving never waits for a reader (a
//! single thread writing 4 MiB before reading could deadlock with a server whose output
//! buffer is full). Each reply is checked: `\0RES`, ECHO_RES, the payload's length.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use gearman_shared::protocol::{Request, Response};

use crate::load::{self, Ctx, Measured, POLL};

/// The neighbour's p99 round trip the issue asks for, milliseconds.
pub const P99_TARGET_MS: f64 = 20.0;
/// The neighbour's worst round trip the issue asks for, milliseconds.
pub const WORST_TARGET_MS: f64 = 200.0;

/// Packet header: magic, type, length.
const HEADER: usize = 12;
const ECHO_REQ: u32 = 16;
const ECHO_RES: u32 = 17;

/// The shape of one `flood` run.
#[derive(Debug, Clone, Copy)]
pub struct FloodSpec {
    /// ECHO_REQs per burst.
    pub burst: usize,
    /// Payload bytes per flooding ECHO_REQ.
    pub payload: usize,
    /// The neighbour's round trips.
    pub echoes: usize,
    /// Pause between the neighbour's round trips.
    pub interval: Duration,
}

/// What the flooding connection got done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FloodProfile {
    /// Bursts whose replies were all read.
    pub bursts: u64,
    /// ECHO_RES bytes the flooding connection read (headers included).
    pub echoed_bytes: u64,
    /// The neighbour's round trips.
    pub neighbour_echoes: u64,
}

impl FloodProfile {
    /// Echoed MiB per second over `wall_s`.
    pub fn mib_per_s(&self, wall_s: f64) -> Option<f64> {
        (wall_s > 0.0).then(|| self.echoed_bytes as f64 / (1024.0 * 1024.0) / wall_s)
    }
}

/// One ECHO_REQ packet with `payload`.
fn echo_req(payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(HEADER + payload.len());
    packet.extend_from_slice(b"\0REQ");
    packet.extend_from_slice(&ECHO_REQ.to_be_bytes());
    packet.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// Runs the flood and the neighbour; the latencies are the neighbour's round trips, the
/// jobs every ECHO answered (flood and neighbour), the wall time the flood's.
pub fn run(ctx: &Ctx, spec: &FloodSpec) -> Result<Measured> {
    let burst_len = spec.burst.max(1);
    let payload = vec![b'f'; spec.payload];
    let burst: Vec<u8> = echo_req(&payload).repeat(burst_len);
    let stop = AtomicBool::new(false);
    let bursts_done = AtomicU64::new(0);
    thread::scope(|s| {
        let flood = s.spawn(|| {
            load::guarded(ctx, || {
                flood_conn(ctx, &burst, burst_len, spec.payload, &stop, &bursts_done)
            })
        });
        // The neighbour starts once the flood is under way (its first burst answered).
        let neighbour = load::guarded(ctx, || {
            let limit = Instant::now() + ctx.io_timeout;
            while bursts_done.load(Ordering::Acquire) == 0 {
                ctx.check()?;
                if Instant::now() >= limit {
                    bail!(
                        "the flooding connection's first burst was not answered within {} s",
                        ctx.io_timeout.as_secs()
                    );
                }
                thread::sleep(Duration::from_millis(1));
            }
            neighbour(ctx, spec)
        });
        stop.store(true, Ordering::Relaxed);
        let flooded = load::join(flood);
        let mut errors = Vec::new();
        let latencies = neighbour.map_err(|e| errors.push(e)).ok();
        let flooded = flooded.map_err(|e| errors.push(e)).ok();
        load::first_real_error(errors)?;
        let (Some(latencies_us), Some((mut profile, wall))) = (latencies, flooded) else {
            bail!("flood run ended without results");
        };
        profile.neighbour_echoes = latencies_us.len() as u64;
        Ok(Measured {
            jobs: profile.bursts * burst_len as u64 + profile.neighbour_echoes,
            wall,
            latencies_us,
            mem: None,
            flood: Some(profile),
        })
    })
}

/// The neighbour: sequential ECHO round trips on its own connection, `interval` apart.
fn neighbour(ctx: &Ctx, spec: &FloodSpec) -> Result<Vec<u64>> {
    let mut conn = ctx.connect().context("neighbour connecting")?;
    let data = Bytes::from_static(b"bench-neighbour");
    let mut latencies = Vec::with_capacity(spec.echoes);
    for _ in 0..spec.echoes {
        ctx.check()?;
        let started = Instant::now();
        conn.send(Request::Echo { data: data.clone() })?;
        match ctx.recv(&mut conn, "the neighbour's ECHO_RES")? {
            Response::Echo { data: got } if got == data => {}
            other => bail!("neighbour got {other:?} instead of its ECHO_RES"),
        }
        latencies.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        thread::sleep(spec.interval);
    }
    Ok(latencies)
}

/// The flooding connection until `stop`: a writer thread sends a burst, this thread
/// reads its replies, then the next burst. Returns the profile and the flood's duration.
fn flood_conn(
    ctx: &Ctx,
    burst: &[u8],
    per_burst: usize,
    payload: usize,
    stop: &AtomicBool,
    bursts_done: &AtomicU64,
) -> Result<(FloodProfile, Duration)> {
    let stream = TcpStream::connect_timeout(&ctx.addr, ctx.io_timeout)
        .with_context(|| format!("flood connecting to {}", ctx.addr))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(ctx.io_timeout))?;
    let mut writer = stream.try_clone()?;
    let mut reader = stream;
    let reply_len = HEADER + payload;
    let started = Instant::now();
    thread::scope(|s| {
        // The writer sends a burst when told to, and hangs up when the reader stops.
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let writing = s.spawn(move || {
            load::guarded(ctx, || {
                while go_rx.recv().is_ok() {
                    writer
                        .write_all(burst)
                        .context("flood writing a burst (the server stopped reading?)")?;
                }
                Ok(())
            })
        });
        let read = load::guarded(ctx, || {
            let mut buf = vec![0u8; 1 << 20];
            let mut header = [0u8; HEADER];
            let mut profile = FloodProfile::default();
            while !stop.load(Ordering::Relaxed) {
                ctx.check()?;
                if go_tx.send(()).is_err() {
                    // The writer failed; its error is the one to report.
                    return Ok(profile);
                }
                // Read this burst's replies, each checked, with no gap over io_timeout.
                let mut replies = 0usize;
                let mut in_reply = 0usize;
                let mut last_progress = Instant::now();
                while replies < per_burst {
                    let n = match reader.read(&mut buf) {
                        Ok(0) => bail!("the server closed the flooding connection"),
                        Ok(n) => n,
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            ctx.check()?;
                            if last_progress.elapsed() >= ctx.io_timeout {
                                bail!(
                                    "flood: {replies} of {per_burst} ECHO_RES of a burst in, then nothing for {} s",
                                    ctx.io_timeout.as_secs()
                                );
                            }
                            continue;
                        }
                        Err(e) => return Err(e).context("flood reading replies"),
                    };
                    last_progress = Instant::now();
                    profile.echoed_bytes += n as u64;
                    let mut data = &buf[..n];
                    while !data.is_empty() {
                        if in_reply < HEADER {
                            let take = (HEADER - in_reply).min(data.len());
                            header[in_reply..in_reply + take].copy_from_slice(&data[..take]);
                            in_reply += take;
                            data = &data[take..];
                            if in_reply == HEADER {
                                check_header(&header, payload)?;
                            }
                        } else {
                            let take = (reply_len - in_reply).min(data.len());
                            in_reply += take;
                            data = &data[take..];
                        }
                        if in_reply == reply_len {
                            in_reply = 0;
                            replies += 1;
                            if replies == per_burst && !data.is_empty() {
                                bail!("flood: more replies than requests");
                            }
                        }
                    }
                }
                profile.bursts += 1;
                bursts_done.fetch_add(1, Ordering::Release);
            }
            Ok(profile)
        });
        let wall = started.elapsed();
        drop(go_tx);
        let wrote = load::join(writing);
        let mut errors = Vec::new();
        let profile = read.map_err(|e| errors.push(e)).ok();
        if let Err(e) = wrote {
            errors.push(e);
        }
        load::first_real_error(errors)?;
        profile
            .map(|p| (p, wall))
            .context("flood ended without results")
    })
}

/// Checks one ECHO_RES header of the flood.
fn check_header(header: &[u8; HEADER], payload: usize) -> Result<()> {
    let kind = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if &header[..4] != b"\0RES" || kind != ECHO_RES || len as usize != payload {
        bail!(
            "flood expected ECHO_RES of {payload} bytes, got magic {:?} type {kind} length {len}",
            String::from_utf8_lossy(&header[..4])
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_req_is_framed() {
        let p = echo_req(b"ab");
        assert_eq!(p, b"\0REQ\0\0\0\x10\0\0\0\x02ab");
    }
}
