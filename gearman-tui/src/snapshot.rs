//! What one poll of one server returns, as plain data (no I/O): functions, workers, jobs and
//! the optional `stats` counters.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gearman_shared::admin::{
    FunctionPriorityStatus, FunctionStatus, JobInfo, StatsReport, WorkerInfo,
};

/// One complete poll of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When the poll finished.
    pub at: Instant,
    /// The `version` reply.
    pub version: Option<String>,
    /// The `getpid` reply.
    pub pid: Option<u32>,
    /// How long the server has been running, at `at`, when known (from `stats`, or from
    /// /proc for a server on this machine).
    pub uptime: Option<Duration>,
    /// Functions from `status`, with `prioritystatus` merged in.
    pub functions: Vec<FunctionRow>,
    /// Connections from `workers`.
    pub workers: Vec<WorkerRow>,
    /// Jobs from `show jobs` (`None` when not asked for or refused).
    pub jobs: Option<Vec<JobRow>>,
    /// Counters from `stats` (`None` when the server does not have the command).
    pub stats: Option<Stats>,
}

/// One function's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRow {
    /// The function name (lossy UTF-8).
    pub name: String,
    /// Queued plus running jobs.
    pub total: u64,
    /// Jobs a worker is running.
    pub running: u64,
    /// Worker registrations.
    pub workers: u64,
    /// Queued jobs per priority (high, normal, low), when `prioritystatus` answered.
    pub priority: Option<[u64; 3]>,
}

impl FunctionRow {
    /// Jobs not yet handed to a worker.
    pub fn waiting(&self) -> u64 {
        self.total.saturating_sub(self.running)
    }

    /// No jobs and no workers.
    pub fn is_idle(&self) -> bool {
        self.total == 0 && self.running == 0 && self.workers == 0
    }

    /// Jobs are waiting and nobody can run them.
    pub fn is_starved(&self) -> bool {
        self.waiting() > 0 && self.workers == 0
    }
}

/// One connection from `workers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    /// The server's socket descriptor.
    pub fd: i64,
    /// The peer's IP address.
    pub address: String,
    /// The client ID (`-` when unset).
    pub client_id: String,
    /// Registered functions.
    pub functions: Vec<String>,
}

/// One job from `show jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// The job handle.
    pub handle: String,
    /// Times the job was handed back after a worker was lost.
    pub retries: u32,
    /// Cancelled or abandoned, not yet reaped.
    pub ignore: bool,
    /// A background job (in the persistent queue).
    pub queued: bool,
}

impl JobRow {
    /// The number after the handle's last `:` (handles are `PREFIX:N`, N counting every job
    /// the server created).
    pub fn sequence(&self) -> Option<u64> {
        self.handle.rsplit_once(':')?.1.parse().ok()
    }
}

/// Per-function counters from `stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// Jobs created since the server started.
    pub submitted: u64,
    /// Jobs that left: completed, failed, raised an exception or were cancelled.
    pub finished: u64,
    /// Jobs that failed or raised an exception.
    pub failed: u64,
    /// Age of the oldest queued job, if any is queued.
    pub oldest: Option<Duration>,
}

/// The `stats` reply of our server (the C server does not have it), reduced to what the
/// dashboard shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// How long the server has been running.
    pub uptime: Duration,
    /// Jobs created since the server started, all functions.
    pub submitted: u64,
    /// Jobs finished since the server started, all functions.
    pub finished: u64,
    /// Counters per function name.
    pub functions: HashMap<String, FunctionStats>,
    /// The server-wide values as `(key, value)`, in listing order.
    pub server: Vec<(&'static str, u64)>,
}

impl From<&StatsReport> for Stats {
    fn from(report: &StatsReport) -> Self {
        let s = &report.server;
        let mut stats = Stats {
            uptime: Duration::from_secs(s.uptime_seconds),
            server: vec![
                ("connections", s.connections),
                ("workers", s.workers),
                ("clients", s.clients),
                ("admins", s.admins),
                ("jobs", s.jobs),
                ("bytes_in", s.bytes_in),
                ("bytes_out", s.bytes_out),
            ],
            ..Stats::default()
        };
        for f in &report.functions {
            let finished = f.completed + f.failed + f.exceptions + f.cancelled;
            stats.submitted += f.submitted;
            stats.finished += finished;
            stats.functions.insert(
                String::from_utf8_lossy(&f.name).into_owned(),
                FunctionStats {
                    submitted: f.submitted,
                    finished,
                    failed: f.failed + f.exceptions,
                    oldest: f.oldest_queued_ms.map(Duration::from_millis),
                },
            );
        }
        stats
    }
}

/// Merges `status` and `prioritystatus` by function name, in `status` order.
pub fn merge_functions(
    status: Vec<FunctionStatus>,
    priority: Option<Vec<FunctionPriorityStatus>>,
) -> Vec<FunctionRow> {
    let priority: HashMap<Vec<u8>, [u64; 3]> = priority
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name.to_vec(), [p.high, p.normal, p.low]))
        .collect();
    let has_priority = !priority.is_empty();
    status
        .into_iter()
        .map(|s| FunctionRow {
            priority: priority
                .get(s.name.as_ref())
                .copied()
                .or(has_priority.then_some([0, 0, 0])),
            name: String::from_utf8_lossy(&s.name).into_owned(),
            total: s.total,
            running: s.running,
            workers: s.workers,
        })
        .collect()
}

impl From<WorkerInfo> for WorkerRow {
    fn from(w: WorkerInfo) -> Self {
        WorkerRow {
            fd: w.fd,
            address: w.address,
            client_id: String::from_utf8_lossy(&w.client_id).into_owned(),
            functions: w
                .functions
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect(),
        }
    }
}

impl From<JobInfo> for JobRow {
    fn from(j: JobInfo) -> Self {
        JobRow {
            handle: String::from_utf8_lossy(&j.handle).into_owned(),
            retries: j.retries,
            ignore: j.ignore,
            queued: j.queued,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_report_is_reduced() {
        let report = StatsReport {
            server: gearman_shared::admin::ServerStats {
                uptime_seconds: 42,
                connections: 3,
                ..Default::default()
            },
            functions: vec![gearman_shared::admin::FunctionStats {
                name: "reverse".into(),
                submitted: 10,
                completed: 5,
                failed: 1,
                exceptions: 1,
                cancelled: 1,
                oldest_queued_ms: Some(3500),
                ..Default::default()
            }],
        };
        let stats = Stats::from(&report);
        assert_eq!(stats.uptime, Duration::from_secs(42));
        assert_eq!((stats.submitted, stats.finished), (10, 8));
        let f = &stats.functions["reverse"];
        assert_eq!(
            (f.submitted, f.finished, f.failed, f.oldest),
            (10, 8, 2, Some(Duration::from_millis(3500)))
        );
        assert_eq!(stats.server[0], ("connections", 3));
    }

    #[test]
    fn merge_keeps_status_order_and_fills_priorities() {
        let status = vec![
            FunctionStatus {
                name: "b".into(),
                total: 3,
                running: 1,
                workers: 0,
            },
            FunctionStatus {
                name: "a".into(),
                total: 0,
                running: 0,
                workers: 0,
            },
        ];
        let prio = vec![FunctionPriorityStatus {
            name: "b".into(),
            high: 1,
            normal: 1,
            low: 0,
            workers: 0,
        }];
        let rows = merge_functions(status.clone(), Some(prio));
        assert_eq!(rows[0].priority, Some([1, 1, 0]));
        assert_eq!(rows[1].priority, Some([0, 0, 0]));
        assert!(rows[0].is_starved() && rows[1].is_idle());
        assert_eq!(merge_functions(status, None)[0].priority, None);
    }

    #[test]
    fn handle_sequence() {
        let job = |h: &str| JobRow {
            handle: h.into(),
            retries: 0,
            ignore: false,
            queued: false,
        };
        assert_eq!(job("H:host:17").sequence(), Some(17));
        assert_eq!(job("weird").sequence(), None);
    }
}
