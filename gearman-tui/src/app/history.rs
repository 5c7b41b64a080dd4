//! Per-server state: health, the latest snapshot, history points, and the rates and ages
//! derived from consecutive polls.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::snapshot::{FunctionRow, JobRow, Snapshot};

/// Whether a server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Not polled yet.
    Connecting,
    /// The last poll succeeded.
    Up,
    /// The last poll failed.
    Down {
        /// When the first failing poll of this outage ended.
        since: Instant,
        /// The latest reason.
        error: String,
    },
}

/// Jobs per second in and out; `None` until two polls give a difference.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Jobs created per second.
    pub jobs_in: Option<f64>,
    /// Jobs finished per second.
    pub jobs_out: Option<f64>,
    /// The numbers come from counters (exact), not from changes in queue sizes (lower bounds).
    pub exact: bool,
}

/// How old something is, as far as the polls tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Not known, or nothing is waiting.
    Unknown,
    /// Reported by the server.
    Exact(Duration),
    /// At most this old (nothing was waiting at a poll this long ago).
    AtMost(Duration),
    /// At least this old (seen this long ago).
    AtLeast(Duration),
}

impl Age {
    /// Seconds, for sorting (unknown sorts lowest).
    pub fn seconds(self) -> f64 {
        match self {
            Age::Unknown => -1.0,
            Age::Exact(d) | Age::AtMost(d) | Age::AtLeast(d) => d.as_secs_f64(),
        }
    }
}

/// One point of a server's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryPoint {
    /// When the poll finished.
    pub at: Instant,
    /// Jobs waiting, all functions.
    pub waiting: u64,
    /// Jobs running, all functions.
    pub running: u64,
    /// Server-wide rates.
    pub rates: Rates,
}

/// Everything known about one server.
#[derive(Debug, Clone)]
pub struct ServerState {
    /// The address as shown.
    pub addr: String,
    /// Up, down or not yet polled.
    pub health: Health,
    /// The latest successful poll.
    pub snapshot: Option<Snapshot>,
    /// Server-wide rates from the last two polls.
    pub rates: Rates,
    /// Per-function rates from the last two polls.
    pub function_rates: HashMap<String, Rates>,
    /// Recent points, oldest first.
    pub history: VecDeque<HistoryPoint>,
    /// When each function was last seen with nothing waiting.
    last_empty: HashMap<String, Instant>,
    /// When each job handle was first seen.
    first_seen: HashMap<String, Instant>,
    /// The highest job sequence number seen (handles are `PREFIX:N`).
    last_sequence: Option<u64>,
}

impl ServerState {
    pub(super) fn new(addr: String) -> Self {
        ServerState {
            addr,
            health: Health::Connecting,
            snapshot: None,
            rates: Rates::default(),
            function_rates: HashMap::new(),
            history: VecDeque::new(),
            last_empty: HashMap::new(),
            first_seen: HashMap::new(),
            last_sequence: None,
        }
    }

    /// The snapshot to show: the latest one, unless the server is down now.
    pub fn live(&self) -> Option<&Snapshot> {
        match self.health {
            Health::Up => self.snapshot.as_ref(),
            _ => None,
        }
    }

    /// Whether the last poll succeeded.
    pub fn is_up(&self) -> bool {
        self.health == Health::Up
    }

    /// When a job was first seen by this dashboard.
    pub fn first_seen(&self, handle: &str) -> Option<Instant> {
        self.first_seen.get(handle).copied()
    }

    /// The oldest queued job's age: from `stats` when the server has it, else a lower bound
    /// (since the dashboard first saw the job).
    pub fn oldest_job(&self, now: Instant) -> Age {
        let Some(snap) = self.live() else {
            return Age::Unknown;
        };
        if let Some(stats) = &snap.stats {
            let since = now.saturating_duration_since(snap.at);
            return stats
                .functions
                .values()
                .filter_map(|f| f.oldest)
                .max()
                .map_or(Age::Unknown, |d| Age::Exact(d + since));
        }
        let Some(jobs) = &snap.jobs else {
            return Age::Unknown;
        };
        jobs.iter()
            .filter_map(|j| self.first_seen(&j.handle))
            .min()
            .map_or(Age::Unknown, |t| {
                Age::AtLeast(now.saturating_duration_since(t))
            })
    }

    /// How long the server has been up at `now`, when known.
    pub fn uptime(&self, now: Instant) -> Option<Duration> {
        let s = self.live()?;
        Some(s.uptime? + now.saturating_duration_since(s.at))
    }

    /// Oldest waiting job of a function.
    pub fn function_age(&self, row: &FunctionRow, now: Instant) -> Age {
        let stats = self
            .snapshot
            .as_ref()
            .and_then(|s| s.stats.as_ref())
            .and_then(|s| s.functions.get(&row.name))
            .and_then(|f| f.oldest);
        if let (Some(age), Some(snap)) = (stats, &self.snapshot) {
            return Age::Exact(age + now.saturating_duration_since(snap.at));
        }
        if row.waiting() == 0 {
            return Age::Unknown;
        }
        match self.last_empty.get(&row.name) {
            Some(t) => Age::AtMost(now.saturating_duration_since(*t)),
            None => Age::Unknown,
        }
    }

    /// Takes in a new snapshot: rates against the previous one, ages, history.
    pub(super) fn apply(&mut self, snap: Snapshot, keep: Duration) {
        let prev = self.snapshot.take();
        let restarted = match &prev {
            Some(p) => p.pid.is_some() && snap.pid.is_some() && p.pid != snap.pid,
            None => false,
        };
        if restarted {
            self.last_empty.clear();
            self.first_seen.clear();
            self.last_sequence = None;
            self.history.clear();
        }
        let prev = prev.filter(|_| !restarted);
        let dt = prev
            .as_ref()
            .map(|p| snap.at.saturating_duration_since(p.at).as_secs_f64())
            .filter(|dt| *dt > 0.0);

        // Function ages: a function with nothing waiting (or absent) at a poll has no job
        // older than that poll.
        for f in &snap.functions {
            if f.waiting() == 0 {
                self.last_empty.insert(f.name.clone(), snap.at);
            } else if let Some(p) = &prev {
                if !p.functions.iter().any(|g| g.name == f.name) {
                    self.last_empty.insert(f.name.clone(), p.at);
                }
            }
        }
        self.last_empty
            .retain(|name, _| snap.functions.iter().any(|f| &f.name == name));

        self.function_rates = match (&prev, dt) {
            (Some(p), Some(dt)) => function_rates(p, &snap, dt),
            _ => HashMap::new(),
        };
        let new_jobs = self.track_jobs(&snap);
        self.rates = match (&prev, dt) {
            (Some(p), Some(dt)) => self.server_rates(p, &snap, dt, new_jobs),
            _ => Rates::default(),
        };
        if let Some(seq) = snap
            .jobs
            .iter()
            .flatten()
            .filter_map(JobRow::sequence)
            .max()
        {
            self.last_sequence = Some(self.last_sequence.map_or(seq, |s| s.max(seq)));
        }

        let (waiting, running) = snap
            .functions
            .iter()
            .fold((0, 0), |(w, r), f| (w + f.waiting(), r + f.running));
        self.history.push_back(HistoryPoint {
            at: snap.at,
            waiting,
            running,
            rates: self.rates,
        });
        while self
            .history
            .front()
            .is_some_and(|p| snap.at.saturating_duration_since(p.at) > keep)
        {
            self.history.pop_front();
        }
        self.snapshot = Some(snap);
        self.health = Health::Up;
    }

    /// Records first sightings of jobs; returns how many handles are new.
    fn track_jobs(&mut self, snap: &Snapshot) -> usize {
        let Some(jobs) = &snap.jobs else {
            self.first_seen.clear();
            return 0;
        };
        let present: HashSet<&str> = jobs.iter().map(|j| j.handle.as_str()).collect();
        self.first_seen.retain(|h, _| present.contains(h.as_str()));
        let mut new = 0;
        for j in jobs {
            if !self.first_seen.contains_key(&j.handle) {
                self.first_seen.insert(j.handle.clone(), snap.at);
                new += 1;
            }
        }
        new
    }

    fn server_rates(&self, prev: &Snapshot, snap: &Snapshot, dt: f64, new_jobs: usize) -> Rates {
        // Counters from `stats` are exact.
        let counters = |s: &Snapshot| s.stats.as_ref().map(|st| (st.submitted, st.finished));
        if let (Some((i0, o0)), Some((i1, o1))) = (counters(prev), counters(snap)) {
            return Rates {
                jobs_in: Some(i1.saturating_sub(i0) as f64 / dt),
                jobs_out: Some(o1.saturating_sub(o0) as f64 / dt),
                exact: true,
            };
        }
        // Job handles count every job the server created: the highest one seen tells how
        // many were created in between, even those that came and went between two polls.
        if let (Some(before), Some(now)) = (&prev.jobs, &snap.jobs) {
            let seq = now.iter().filter_map(JobRow::sequence).max();
            let by_sequence = match (self.last_sequence, seq) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => 0,
            };
            let created = by_sequence.max(new_jobs as u64);
            let finished = (created + before.len() as u64).saturating_sub(now.len() as u64);
            return Rates {
                jobs_in: Some(created as f64 / dt),
                jobs_out: Some(finished as f64 / dt),
                exact: seq.is_some() || now.is_empty(),
            };
        }
        // Else the sum of the per-function lower bounds.
        let sum = |f: fn(&Rates) -> Option<f64>| -> Option<f64> {
            let rates = function_rates(prev, snap, dt);
            Some(rates.values().filter_map(f).sum())
        };
        Rates {
            jobs_in: sum(|r| r.jobs_in),
            jobs_out: sum(|r| r.jobs_out),
            exact: false,
        }
    }
}

/// Per-function rates between two polls: from `stats` counters when both have them, else
/// from the change in queued-plus-running jobs (a lower bound on both directions).
fn function_rates(prev: &Snapshot, snap: &Snapshot, dt: f64) -> HashMap<String, Rates> {
    let counters = |s: &Snapshot, name: &str| {
        let f = s.stats.as_ref()?.functions.get(name)?;
        Some((f.submitted, f.finished))
    };
    snap.functions
        .iter()
        .map(|f| {
            let rates = match (counters(prev, &f.name), counters(snap, &f.name)) {
                (Some((i0, o0)), Some((i1, o1))) => Rates {
                    jobs_in: Some(i1.saturating_sub(i0) as f64 / dt),
                    jobs_out: Some(o1.saturating_sub(o0) as f64 / dt),
                    exact: true,
                },
                _ => {
                    let before = prev
                        .functions
                        .iter()
                        .find(|g| g.name == f.name)
                        .map_or(0, |g| g.total);
                    let delta = f.total as f64 - before as f64;
                    Rates {
                        jobs_in: Some(delta.max(0.0) / dt),
                        jobs_out: Some((-delta).max(0.0) / dt),
                        exact: false,
                    }
                }
            };
            (f.name.clone(), rates)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::tests::{app, function, job, snap_event, snapshot};
    use crate::app::App;
    use crate::event::Event;
    use crate::snapshot::Stats;

    #[test]
    fn rates_from_queue_changes() {
        let t0 = Instant::now();
        let mut a = app(t0);
        a.handle(
            snap_event(0, snapshot(t0, vec![function("f", 10, 0, 0)])),
            t0,
        );
        assert_eq!(a.servers[0].function_rates.get("f"), None);
        let t1 = t0 + Duration::from_secs(2);
        a.handle(
            snap_event(0, snapshot(t1, vec![function("f", 16, 0, 0)])),
            t1,
        );
        let r = a.servers[0].function_rates["f"];
        assert_eq!(
            (r.jobs_in, r.jobs_out, r.exact),
            (Some(3.0), Some(0.0), false)
        );
        let t2 = t1 + Duration::from_secs(4);
        a.handle(
            snap_event(0, snapshot(t2, vec![function("f", 8, 0, 1)])),
            t2,
        );
        let r = a.servers[0].function_rates["f"];
        assert_eq!((r.jobs_in, r.jobs_out), (Some(0.0), Some(2.0)));
        assert_eq!(a.servers[0].history.len(), 3);
        assert_eq!(a.total_history()[1].0, 16);
    }

    #[test]
    fn rates_from_stats_counters_are_exact() {
        let t0 = Instant::now();
        let mut a = app(t0);
        let with_stats = |at, submitted: u64, finished: u64| {
            let mut s = snapshot(at, vec![function("f", 1, 0, 1)]);
            let report = gearman_shared::admin::StatsReport {
                server: Default::default(),
                functions: vec![gearman_shared::admin::FunctionStats {
                    name: "f".into(),
                    submitted,
                    completed: finished,
                    oldest_queued_ms: Some(7000),
                    ..Default::default()
                }],
            };
            s.stats = Some(Stats::from(&report));
            s
        };
        a.handle(snap_event(0, with_stats(t0, 100, 90)), t0);
        let t1 = t0 + Duration::from_secs(2);
        a.handle(snap_event(0, with_stats(t1, 120, 130)), t1);
        let r = a.servers[0].function_rates["f"];
        assert_eq!(
            (r.jobs_in, r.jobs_out, r.exact),
            (Some(10.0), Some(20.0), true)
        );
        assert_eq!(a.servers[0].rates, r);
        let f = a.functions();
        assert_eq!(f[0].oldest, Age::Exact(Duration::from_secs(7)));
    }

    #[test]
    fn rates_from_job_handles_count_jobs_that_came_and_went() {
        let t0 = Instant::now();
        let mut a = app(t0);
        let with_jobs = |at, jobs: Vec<JobRow>| {
            let mut s = snapshot(at, vec![function("f", jobs.len() as u64, 0, 1)]);
            s.jobs = Some(jobs);
            s
        };
        a.handle(snap_event(0, with_jobs(t0, vec![job(1), job(2)])), t0);
        let t1 = t0 + Duration::from_secs(1);
        // Jobs 3..=9 were created; 1, 2 and 3..=8 finished; 9 and 10 are there.
        a.handle(snap_event(0, with_jobs(t1, vec![job(9), job(10)])), t1);
        let r = a.servers[0].rates;
        assert_eq!((r.jobs_in, r.jobs_out), (Some(8.0), Some(8.0)));
        // Ages of jobs: first seen at t1.
        let t2 = t1 + Duration::from_secs(5);
        a.handle(Event::Tick, t2);
        assert_eq!(
            a.servers[0].oldest_job(t2),
            Age::AtLeast(Duration::from_secs(5))
        );
        assert_eq!(a.totals().rates.jobs_in, Some(8.0));
    }

    #[test]
    fn oldest_waiting_is_bounded_by_the_last_empty_poll() {
        let t0 = Instant::now();
        let mut a = app(t0);
        a.handle(
            snap_event(0, snapshot(t0, vec![function("f", 0, 0, 1)])),
            t0,
        );
        let t1 = t0 + Duration::from_secs(1);
        a.handle(
            snap_event(
                0,
                snapshot(t1, vec![function("f", 3, 1, 1), function("g", 2, 0, 0)]),
            ),
            t1,
        );
        let t2 = t1 + Duration::from_secs(10);
        a.handle(Event::Tick, t2);
        let rows = a.functions();
        let f = rows.iter().find(|v| v.row.name == "f").unwrap();
        let g = rows.iter().find(|v| v.row.name == "g").unwrap();
        assert_eq!(f.oldest, Age::AtMost(Duration::from_secs(11)));
        // g did not exist at t0, so nothing of it was waiting then.
        assert_eq!(g.oldest, Age::AtMost(Duration::from_secs(11)));
        assert_eq!(a.totals().starved, 1);
    }

    #[test]
    fn restart_resets_the_baseline() {
        let t0 = Instant::now();
        let mut a = app(t0);
        a.handle(
            snap_event(0, snapshot(t0, vec![function("f", 10, 0, 0)])),
            t0,
        );
        let t1 = t0 + Duration::from_secs(1);
        let mut s = snapshot(t1, vec![function("f", 0, 0, 0)]);
        s.pid = Some(43);
        a.handle(snap_event(0, s), t1);
        assert!(a.servers[0].function_rates.is_empty());
        assert_eq!(a.servers[0].history.len(), 1);
    }

    #[test]
    fn history_is_trimmed_to_the_window() {
        let t0 = Instant::now();
        let mut a = App::new(
            vec!["a".into()],
            Duration::from_secs(1),
            Duration::from_secs(10),
            t0,
        );
        for i in 0..30 {
            let t = t0 + Duration::from_secs(i);
            a.handle(snap_event(0, snapshot(t, vec![])), t);
        }
        assert_eq!(a.servers[0].history.len(), 11);
    }
}
