//! Server memory from `/proc`: the resident set (VmRSS) of a process, and the `mem`
//! scenario built on it: a fresh server's RSS at start, with a large queue of background
//! jobs, and after workers drained it.
//!
//! RSS is what the machine pays, allocator caches and fragmentation included, so it is
//! read from the kernel rather than asked of the server.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::load::{self, Ctx, JobSpec, Measured};

/// How long after the drain the last RSS reading waits: allocators hand freed memory
/// back to the kernel lazily (glibc trims on free, others on a timer).
pub const SETTLE: Duration = Duration::from_secs(2);

/// The server's resident memory over one `mem` run, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemProfile {
    /// Before anything was submitted (a fresh process).
    pub start: u64,
    /// With every job queued.
    pub queued: u64,
    /// Right after the workers completed the last job.
    pub drained: u64,
    /// [`SETTLE`] after the drain.
    pub settled: Option<u64>,
}

impl MemProfile {
    /// What each queued job cost: RSS growth from start to full queue over `jobs`.
    pub fn bytes_per_job(&self, jobs: u64) -> Option<f64> {
        (jobs > 0).then(|| (self.queued as f64 - self.start as f64) / jobs as f64)
    }
}

/// Resident memory of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss(&text).with_context(|| format!("parsing {path}"))
}

/// The `VmRSS:  1234 kB` line of a `/proc/<pid>/status`, in bytes.
fn parse_vm_rss(status: &str) -> Result<u64> {
    let Some(line) = status.lines().find(|l| l.starts_with("VmRSS:")) else {
        bail!("no VmRSS line");
    };
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let (Some(value), Some("kB"), None) = (fields.next(), fields.next(), fields.next()) else {
        bail!("VmRSS line is not `VmRSS: <n> kB`: {line:?}");
    };
    let kib: u64 = value
        .parse()
        .with_context(|| format!("VmRSS is not a number: {value:?}"))?;
    Ok(kib * 1024)
}

/// The `mem` body, on the server with process id `pid`: `jobs` background jobs submitted
/// by `clients` connections (`window` in flight each), RSS read, then drained by
/// `workers` workers, RSS read again. Submission and drain each get the whole scenario
/// time limit. The settled reading is left to the caller, outside the CPU window.
pub fn profile(
    ctx: &Ctx,
    pid: u32,
    spec: &JobSpec,
    clients: usize,
    window: usize,
    workers: usize,
    jobs: usize,
) -> Result<Measured> {
    let start = rss_bytes(pid)?;
    let submitted = load::background(ctx, spec, clients, window, jobs)?;
    let queued = rss_bytes(pid)?;
    let drain_ctx = Ctx::new(ctx.addr, ctx.io_timeout, ctx.time_limit);
    let drained_run = load::drain(&drain_ctx, spec, workers, jobs)?;
    let drained = rss_bytes(pid)?;
    Ok(Measured {
        jobs: drained_run.jobs,
        wall: submitted.wall + drained_run.wall,
        latencies_us: Vec::new(),
        mem: Some(MemProfile {
            start,
            queued,
            drained,
            settled: None,
        }),
        flood: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_bytes() {
        let status = "Name:\tgearmand\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t5\n";
        assert_eq!(parse_vm_rss(status).ok(), Some(5120 * 1024));
        assert!(parse_vm_rss("Name:\tx\n").is_err());
        assert!(parse_vm_rss("VmRSS:\t12 MB\n").is_err());
    }
}
