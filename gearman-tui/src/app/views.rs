//! Table views: the panels and their columns, the filtered and sorted rows of each panel,
//! the selection within them, and totals across servers.

use std::cmp::Ordering;

use super::{Age, App, Health, Rates};
use crate::snapshot::{FunctionRow, JobRow, WorkerRow};

/// The panels, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// Per-function queues, workers and rates.
    Functions,
    /// Connections and their functions.
    Workers,
    /// Jobs from `show jobs`.
    Jobs,
    /// One row per server.
    Servers,
    /// Queue depth and throughput over time.
    Charts,
}

impl Panel {
    /// Every panel in tab order.
    pub const ALL: [Panel; 5] = [
        Panel::Functions,
        Panel::Workers,
        Panel::Jobs,
        Panel::Servers,
        Panel::Charts,
    ];

    /// Position in [`Panel::ALL`].
    pub fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    /// The tab title.
    pub fn title(self) -> &'static str {
        match self {
            Panel::Functions => "Functions",
            Panel::Workers => "Workers",
            Panel::Jobs => "Jobs",
            Panel::Servers => "Servers",
            Panel::Charts => "Charts",
        }
    }

    /// The sortable columns (empty: the panel has a fixed order).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Panel::Functions => &[
                "Server", "Function", "Waiting", "Running", "Workers", "High", "Normal", "Low",
                "In/s", "Out/s", "Oldest",
            ],
            Panel::Workers => &["Server", "FD", "Address", "Client ID", "Functions"],
            Panel::Jobs => &[
                "Server",
                "Handle",
                "Retries",
                "Ignored",
                "Background",
                "Seen",
            ],
            Panel::Servers | Panel::Charts => &[],
        }
    }
}

/// Sort column (index into [`Panel::columns`]) and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The column.
    pub column: usize,
    /// Largest first.
    pub descending: bool,
}

/// A function row as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionView<'a> {
    /// Index of the server.
    pub server: usize,
    /// The counters.
    pub row: &'a FunctionRow,
    /// In and out per second.
    pub rates: Rates,
    /// Oldest waiting job.
    pub oldest: Age,
}

/// A connection row as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView<'a> {
    /// Index of the server.
    pub server: usize,
    /// The connection.
    pub row: &'a WorkerRow,
}

/// A job row as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView<'a> {
    /// Index of the server.
    pub server: usize,
    /// The job.
    pub row: &'a JobRow,
    /// Since the dashboard first saw it.
    pub seen: Age,
}

/// Sums over every server that answers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Servers that answered their last poll.
    pub up: usize,
    /// Servers polled.
    pub servers: usize,
    /// Servers whose last poll failed.
    pub down: usize,
    /// Functions listed.
    pub functions: usize,
    /// Jobs waiting.
    pub waiting: u64,
    /// Jobs running.
    pub running: u64,
    /// Worker registrations.
    pub workers: u64,
    /// Queued per priority (high, normal, low).
    pub priority: [u64; 3],
    /// Server-wide rates added up (`None` if no server has one yet).
    pub rates: Rates,
    /// Functions with waiting jobs and no workers.
    pub starved: usize,
}

impl App {
    /// Rows in the current panel.
    pub fn row_count(&self) -> usize {
        match self.panel {
            Panel::Functions => self.functions().len(),
            Panel::Workers => self.workers().len(),
            Panel::Jobs => self.jobs().len(),
            Panel::Servers => self.servers.len(),
            Panel::Charts => 0,
        }
    }

    /// The clamped selection of the current panel, if it has rows.
    pub fn selection(&self, panel: Panel) -> Option<usize> {
        let count = match panel {
            Panel::Functions => self.functions().len(),
            Panel::Workers => self.workers().len(),
            Panel::Jobs => self.jobs().len(),
            Panel::Servers => self.servers.len(),
            Panel::Charts => 0,
        };
        (count > 0).then(|| self.selected(panel).min(count - 1))
    }

    fn matches(&self, text: &str) -> bool {
        self.filter.is_empty() || text.to_lowercase().contains(&self.filter.to_lowercase())
    }

    /// Function rows of the servers that answer, filtered and sorted.
    pub fn functions(&self) -> Vec<FunctionView<'_>> {
        let mut rows: Vec<FunctionView<'_>> = Vec::new();
        for (i, s) in self.servers.iter().enumerate() {
            let Some(snap) = s.live() else { continue };
            for row in &snap.functions {
                if (self.hide_idle && row.is_idle()) || !self.matches(&row.name) {
                    continue;
                }
                rows.push(FunctionView {
                    server: i,
                    row,
                    rates: s.function_rates.get(&row.name).copied().unwrap_or_default(),
                    oldest: s.function_age(row, self.now),
                });
            }
        }
        let sort = self.sort(Panel::Functions);
        let prio = |v: &FunctionView<'_>, i: usize| v.row.priority.map_or(0, |p| p[i]);
        rows.sort_by(|a, b| {
            let key = match sort.column {
                0 => a.server.cmp(&b.server),
                1 => a.row.name.cmp(&b.row.name),
                2 => a.row.waiting().cmp(&b.row.waiting()),
                3 => a.row.running.cmp(&b.row.running),
                4 => a.row.workers.cmp(&b.row.workers),
                5 => prio(a, 0).cmp(&prio(b, 0)),
                6 => prio(a, 1).cmp(&prio(b, 1)),
                7 => prio(a, 2).cmp(&prio(b, 2)),
                8 => cmp_f64(a.rates.jobs_in, b.rates.jobs_in),
                9 => cmp_f64(a.rates.jobs_out, b.rates.jobs_out),
                _ => a.oldest.seconds().total_cmp(&b.oldest.seconds()),
            };
            directed(key, sort.descending)
                .then_with(|| a.server.cmp(&b.server))
                .then_with(|| a.row.name.cmp(&b.row.name))
        });
        rows
    }

    /// Connections of the servers that answer, filtered and sorted.
    pub fn workers(&self) -> Vec<WorkerView<'_>> {
        let mut rows: Vec<WorkerView<'_>> = Vec::new();
        for (i, s) in self.servers.iter().enumerate() {
            let Some(snap) = s.live() else { continue };
            for row in &snap.workers {
                if self.hide_idle && row.functions.is_empty() {
                    continue;
                }
                let text = format!(
                    "{} {} {}",
                    row.address,
                    row.client_id,
                    row.functions.join(" ")
                );
                if !self.matches(&text) {
                    continue;
                }
                rows.push(WorkerView { server: i, row });
            }
        }
        let sort = self.sort(Panel::Workers);
        rows.sort_by(|a, b| {
            let key = match sort.column {
                0 => a.server.cmp(&b.server),
                1 => a.row.fd.cmp(&b.row.fd),
                2 => a.row.address.cmp(&b.row.address),
                3 => a.row.client_id.cmp(&b.row.client_id),
                _ => a.row.functions.len().cmp(&b.row.functions.len()),
            };
            directed(key, sort.descending)
                .then_with(|| a.server.cmp(&b.server))
                .then_with(|| a.row.fd.cmp(&b.row.fd))
        });
        rows
    }

    /// Jobs of the servers that answer, filtered and sorted.
    pub fn jobs(&self) -> Vec<JobView<'_>> {
        let mut rows: Vec<JobView<'_>> = Vec::new();
        for (i, s) in self.servers.iter().enumerate() {
            let Some(jobs) = s.live().and_then(|snap| snap.jobs.as_ref()) else {
                continue;
            };
            for row in jobs {
                if !self.matches(&row.handle) {
                    continue;
                }
                let seen = s.first_seen(&row.handle).map_or(Age::Unknown, |t| {
                    Age::AtLeast(self.now.saturating_duration_since(t))
                });
                rows.push(JobView {
                    server: i,
                    row,
                    seen,
                });
            }
        }
        let sort = self.sort(Panel::Jobs);
        rows.sort_by(|a, b| {
            let key = match sort.column {
                0 => a.server.cmp(&b.server),
                1 => a.row.handle.cmp(&b.row.handle),
                2 => a.row.retries.cmp(&b.row.retries),
                3 => a.row.ignore.cmp(&b.row.ignore),
                4 => a.row.queued.cmp(&b.row.queued),
                _ => a.seen.seconds().total_cmp(&b.seen.seconds()),
            };
            directed(key, sort.descending)
                .then_with(|| a.server.cmp(&b.server))
                .then_with(|| a.row.sequence().cmp(&b.row.sequence()))
                .then_with(|| a.row.handle.cmp(&b.row.handle))
        });
        rows
    }

    /// Sums over the servers that answer (not filtered).
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            servers: self.servers.len(),
            ..Totals::default()
        };
        for s in &self.servers {
            if matches!(s.health, Health::Down { .. }) {
                t.down += 1;
            }
            let Some(snap) = s.live() else { continue };
            t.up += 1;
            t.functions += snap.functions.len();
            for f in &snap.functions {
                t.waiting += f.waiting();
                t.running += f.running;
                t.workers += f.workers;
                for (sum, n) in t.priority.iter_mut().zip(f.priority.unwrap_or_default()) {
                    *sum += n;
                }
                if f.is_starved() {
                    t.starved += 1;
                }
            }
            t.rates.jobs_in = add(t.rates.jobs_in, s.rates.jobs_in);
            t.rates.jobs_out = add(t.rates.jobs_out, s.rates.jobs_out);
        }
        t
    }

    /// Totals history across servers, aligned by poll from the newest (the pollers share one
    /// interval): `(waiting, jobs in, jobs out)` per point, oldest first.
    pub fn total_history(&self) -> Vec<(u64, f64, f64)> {
        let len = self
            .servers
            .iter()
            .map(|s| s.history.len())
            .max()
            .unwrap_or(0);
        let mut out = vec![(0u64, 0.0, 0.0); len];
        for s in &self.servers {
            let skip = len - s.history.len();
            for (slot, p) in out.iter_mut().skip(skip).zip(&s.history) {
                slot.0 += p.waiting;
                slot.1 += p.rates.jobs_in.unwrap_or(0.0);
                slot.2 += p.rates.jobs_out.unwrap_or(0.0);
            }
        }
        out
    }
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

fn cmp_f64(a: Option<f64>, b: Option<f64>) -> Ordering {
    a.unwrap_or(-1.0).total_cmp(&b.unwrap_or(-1.0))
}

fn directed(o: Ordering, descending: bool) -> Ordering {
    if descending {
        o.reverse()
    } else {
        o
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::tests::{function, key, snap_event, snapshot};
    use crossterm::event::KeyCode;
    use std::time::{Duration, Instant};

    #[test]
    fn totals_span_servers() {
        let t0 = Instant::now();
        let mut a = App::new(
            vec!["a:1".into(), "b:1".into()],
            Duration::from_secs(1),
            Duration::from_secs(60),
            t0,
        );
        a.handle(
            snap_event(0, snapshot(t0, vec![function("f", 3, 1, 2)])),
            t0,
        );
        a.handle(
            snap_event(1, snapshot(t0, vec![function("f", 4, 0, 0)])),
            t0,
        );
        let t = a.totals();
        assert_eq!(
            (t.up, t.waiting, t.running, t.workers, t.starved),
            (2, 6, 1, 2, 1)
        );
        assert_eq!(t.priority, [0, 6, 0]);
        assert_eq!(a.functions().len(), 2);
        // With two servers, the server column is sortable.
        a.handle(key(KeyCode::Char('s')), t0);
        assert_eq!(a.sort(Panel::Functions).column, 3);
        for _ in 0..8 {
            a.handle(key(KeyCode::Char('s')), t0);
        }
        assert_eq!(a.sort(Panel::Functions).column, 0);
    }
}
