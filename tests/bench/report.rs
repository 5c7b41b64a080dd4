//! Turns the measured runs into the comparison table: medians over rounds, ratios ours/C
//! (and ours/floor when the floor server ran), and notes on when the load generator (or
//! the whole machine) was the bottleneck.

use std::fmt::Write as _;

use crate::flood::{FloodProfile, P99_TARGET_MS, WORST_TARGET_MS};
use crate::idle::IdleProfile;
use crate::memory::{MemProfile, SETTLE};
use crate::Scenario;

/// Runs shorter than this (seconds) are not judged for CPU saturation.
const MIN_JUDGED_WINDOW_S: f64 = 0.5;

/// Max/min over rounds above which a metric is reported as noisy.
const NOISY_SPREAD: f64 = 1.25;

/// Throughput with idle connections over throughput without, below which `idle` gets a
/// note (the target is "within 10%").
const IDLE_TARGET: f64 = 0.9;

/// The `idle` row with that ratio.
const IDLE_RATIO: &str = "with / without idle conns";

/// The `flood` rows the issue sets targets for.
const FLOOD_P99: &str = "neighbour p99 latency ms";
const FLOOD_WORST: &str = "neighbour worst latency ms";

/// The `mem` row of the last RSS reading, [`SETTLE`] after the drain.
const SETTLED_LABEL: &str = "RSS 2 s after drain / start";

/// Which server a run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Our gearmand.
    Ours,
    /// The C gearmand.
    Theirs,
    /// The `floor` instrument (`shared/tools/floor`), single-threaded.
    Floor,
}

impl Side {
    /// The column name.
    pub fn label(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::Theirs => "C",
            Side::Floor => "floor",
        }
    }
}

/// One scenario run against one server, with the CPU it cost.
#[derive(Debug, Clone)]
pub struct Sample {
    /// What ran.
    pub scenario: Scenario,
    /// Against which server.
    pub side: Side,
    /// Jobs finished.
    pub jobs: u64,
    /// Seconds from the start line to the last job.
    pub wall_s: f64,
    /// Seconds between the two CPU readings (setup and teardown included).
    pub cpu_window_s: f64,
    /// Sorted submit → WORK_COMPLETE latencies, microseconds (foreground only).
    pub latencies_us: Vec<u64>,
    /// Server CPU seconds (user + system, all threads) in the CPU window.
    pub server_cpu_s: f64,
    /// Load-generator CPU seconds in the CPU window.
    pub gen_cpu_s: f64,
    /// The server's memory over the run (`mem` only).
    pub mem: Option<MemProfile>,
    /// The comparison run and connection cost (`idle` only).
    pub idle: Option<IdleProfile>,
    /// What the flooding connection did (`flood` only).
    pub flood: Option<FloodProfile>,
}

impl Sample {
    /// Jobs per second of wall time.
    pub fn jobs_per_s(&self) -> Option<f64> {
        (self.wall_s > 0.0).then(|| self.jobs as f64 / self.wall_s)
    }

    /// Throughput with the idle connections open over throughput without (`idle` only).
    fn idle_ratio(&self) -> Option<f64> {
        let without = self.idle?.baseline_jobs_per_s?;
        (without > 0.0).then_some(self.jobs_per_s()? / without)
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// RSS at `at` over RSS at start.
fn rss_over_start(mem: MemProfile, at: u64) -> Option<f64> {
    (mem.start > 0).then(|| at as f64 / mem.start as f64)
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
    Neither,
}

impl Better {
    fn label(self) -> &'static str {
        match self {
            Better::Higher => "higher",
            Better::Lower => "lower",
            Better::Neither => "-",
        }
    }
}

/// The `p`-th percentile (0..=1) of sorted values, nearest rank.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

type Metric = (&'static str, Better, usize, fn(&Sample) -> Option<f64>);

fn metrics(scenario: Scenario) -> Vec<Metric> {
    let per_sec: Metric = ("jobs/s", Better::Higher, 0, Sample::jobs_per_s);
    let p50: Metric = ("p50 latency ms", Better::Lower, 3, |s| {
        percentile(&s.latencies_us, 0.50).map(|us| us as f64 / 1000.0)
    });
    let p99: Metric = ("p99 latency ms", Better::Lower, 3, |s| {
        percentile(&s.latencies_us, 0.99).map(|us| us as f64 / 1000.0)
    });
    let mut list: Vec<Metric> = match scenario {
        Scenario::Fg | Scenario::Fg4k | Scenario::FgPipe => vec![per_sec, p50, p99],
        Scenario::Bg | Scenario::Drain => vec![per_sec],
        Scenario::Seq => vec![p50, p99, per_sec],
        Scenario::Flood => vec![
            ("neighbour p50 latency ms", Better::Lower, 3, |s| {
                percentile(&s.latencies_us, 0.50).map(|us| us as f64 / 1000.0)
            }),
            (FLOOD_P99, Better::Lower, 3, |s| {
                percentile(&s.latencies_us, 0.99).map(|us| us as f64 / 1000.0)
            }),
            (FLOOD_WORST, Better::Lower, 3, |s| {
                s.latencies_us.last().map(|&us| us as f64 / 1000.0)
            }),
            ("flood MiB/s echoed", Better::Higher, 0, |s| {
                s.flood.and_then(|f| f.mib_per_s(s.wall_s))
            }),
        ],
        Scenario::Idle => vec![
            ("jobs/s without idle conns", Better::Higher, 0, |s| {
                s.idle.and_then(|i| i.baseline_jobs_per_s)
            }),
            (
                "jobs/s with idle conns",
                Better::Higher,
                0,
                Sample::jobs_per_s,
            ),
            (IDLE_RATIO, Better::Higher, 2, Sample::idle_ratio),
            p50,
            p99,
            ("server RSS B per idle conn", Better::Lower, 0, |s| {
                s.idle.and_then(|i| i.rss_per_conn)
            }),
        ],
        // The settle time is a constant, so the label can name it.
        Scenario::Mem => vec![
            ("RSS at start MiB", Better::Neither, 1, |s| {
                s.mem.map(|m| mib(m.start))
            }),
            ("RSS with jobs queued MiB", Better::Lower, 1, |s| {
                s.mem.map(|m| mib(m.queued))
            }),
            ("bytes per queued job", Better::Lower, 0, |s| {
                s.mem.and_then(|m| m.bytes_per_job(s.jobs))
            }),
            ("RSS after drain MiB", Better::Lower, 1, |s| {
                s.mem.map(|m| mib(m.drained))
            }),
            ("RSS after drain / start", Better::Lower, 2, |s| {
                s.mem.and_then(|m| rss_over_start(m, m.drained))
            }),
            (SETTLED_LABEL, Better::Lower, 2, |s| {
                s.mem
                    .and_then(|m| m.settled.and_then(|at| rss_over_start(m, at)))
            }),
        ],
    };
    // In `flood` the "jobs" are the ECHOs answered, nearly all of them the flood's.
    let per_job = if scenario == Scenario::Flood {
        "server CPU us/echo"
    } else {
        "server CPU us/job"
    };
    list.extend::<[Metric; 5]>([
        ("server CPU s", Better::Lower, 2, |s| Some(s.server_cpu_s)),
        (per_job, Better::Lower, 1, |s| {
            (s.jobs > 0).then(|| s.server_cpu_s * 1e6 / s.jobs as f64)
        }),
        ("server cores busy", Better::Neither, 2, |s| {
            (s.cpu_window_s > 0.0).then(|| s.server_cpu_s / s.cpu_window_s)
        }),
        ("generator CPU s", Better::Neither, 2, |s| Some(s.gen_cpu_s)),
        ("generator cores busy", Better::Neither, 2, |s| {
            (s.cpu_window_s > 0.0).then(|| s.gen_cpu_s / s.cpu_window_s)
        }),
    ]);
    list
}

fn format_value(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) => format!("{v:.decimals$}"),
        None => "n/a".to_string(),
    }
}

/// The table (Markdown) plus notes, for the scenarios in `order`. The floor columns
/// (its value and the ratio ours/floor) appear when any floor run is among `samples`.
pub fn render(samples: &[Sample], order: &[Scenario], cores: usize) -> String {
    let with_floor = samples.iter().any(|s| s.side == Side::Floor);
    let sides: &[Side] = if with_floor {
        &[Side::Ours, Side::Theirs, Side::Floor]
    } else {
        &[Side::Ours, Side::Theirs]
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut notes = Vec::new();
    let mut short_runs = false;
    let mut noisy = Vec::new();
    for &scenario in order {
        let of = |side: Side| -> Vec<&Sample> {
            samples
                .iter()
                .filter(|s| s.scenario == scenario && s.side == side)
                .collect()
        };
        let runs: Vec<(Side, Vec<&Sample>)> = sides.iter().map(|&side| (side, of(side))).collect();
        if runs.iter().all(|(_, r)| r.is_empty()) {
            continue;
        }
        let stat = |runs: &[&Sample], f: fn(&Sample) -> Option<f64>| {
            median(runs.iter().filter_map(|s| f(s)).collect())
        };
        for (name, better, decimals, f) in metrics(scenario) {
            let values: Vec<Option<f64>> = runs.iter().map(|(_, r)| stat(r, f)).collect();
            let ratio = |other: Option<f64>| match (values[0], other) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "n/a".to_string(),
            };
            // Flag spread in the headline metrics (CPU figures are tick-quantised).
            if name.starts_with("jobs/s")
                || name.contains("latency")
                || name == IDLE_RATIO
                || name == "bytes per queued job"
            {
                for (side, runs) in &runs {
                    let values: Vec<f64> = runs.iter().filter_map(|s| f(s)).collect();
                    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    if values.len() >= 2 && lo > 0.0 && hi / lo > NOISY_SPREAD {
                        noisy.push(format!(
                            "{} {name} {} {lo:.decimals$}..{hi:.decimals$}",
                            scenario.label(),
                            side.label()
                        ));
                    }
                }
            }
            let mut row = vec![
                scenario.label().to_string(),
                name.to_string(),
                better.label().to_string(),
                format_value(values[0], decimals),
                format_value(values[1], decimals),
            ];
            if with_floor {
                // "-": the floor server does not run this scenario.
                row.push(if runs[2].1.is_empty() {
                    "-".to_string()
                } else {
                    format_value(values[2], decimals)
                });
            }
            row.push(ratio(values[1]));
            if with_floor {
                row.push(if runs[2].1.is_empty() {
                    "-".to_string()
                } else {
                    ratio(values[2])
                });
            }
            rows.push(row);
        }
        if scenario == Scenario::Idle {
            for (side, runs) in &runs {
                let ratio = stat(runs, Sample::idle_ratio);
                let conns = runs.iter().find_map(|s| s.idle).map_or(0, |i| i.conns);
                if let Some(ratio) = ratio.filter(|&r| r < IDLE_TARGET) {
                    notes.push(format!(
                        "idle: {} kept {:.1}% of its throughput with {conns} idle connections open (target: at least {:.0}%)",
                        side.label(),
                        ratio * 100.0,
                        IDLE_TARGET * 100.0
                    ));
                }
            }
        }
        if scenario == Scenario::Flood {
            for (side, runs) in &runs {
                let p99 = stat(runs, |s| {
                    percentile(&s.latencies_us, 0.99).map(|us| us as f64 / 1000.0)
                });
                let worst = stat(runs, |s| {
                    s.latencies_us.last().map(|&us| us as f64 / 1000.0)
                });
                if let (Some(p99), Some(worst)) = (p99, worst) {
                    let verdict = if p99 <= P99_TARGET_MS && worst <= WORST_TARGET_MS {
                        "meets"
                    } else {
                        "misses"
                    };
                    notes.push(format!(
                        "flood: {} {verdict} the target (neighbour p99 at most {P99_TARGET_MS} ms, worst at most {WORST_TARGET_MS} ms): p99 {p99:.3} ms, worst {worst:.3} ms (medians over rounds)",
                        side.label()
                    ));
                }
            }
        }
        for (side, runs) in &runs {
            let side = side.label();
            // With 10 ms ticks a shorter window says little about saturation.
            let busy = |s: &Sample, cpu: f64| {
                (s.cpu_window_s >= MIN_JUDGED_WINDOW_S).then(|| cpu / s.cpu_window_s)
            };
            if runs.iter().any(|s| s.cpu_window_s < MIN_JUDGED_WINDOW_S) {
                short_runs = true;
            }
            let gen = median(runs.iter().filter_map(|s| busy(s, s.gen_cpu_s)).collect());
            let total = median(
                runs.iter()
                    .filter_map(|s| busy(s, s.gen_cpu_s + s.server_cpu_s))
                    .collect(),
            );
            if let Some(gen) = gen.filter(|&g| g >= 0.9) {
                notes.push(format!(
                    "{}: against {side}, the load generator saturated a core ({gen:.2} cores busy): the result may be generator-bound",
                    scenario.label()
                ));
            }
            if let Some(total) = total.filter(|&t| t >= 0.9 * cores as f64) {
                notes.push(format!(
                    "{}: against {side}, server + generator kept {total:.2} of the machine's {cores} cores busy (CPU-saturated)",
                    scenario.label()
                ));
            }
        }
    }
    let mut header: Vec<String> = ["scenario", "metric", "better", "ours", "C"]
        .map(String::from)
        .to_vec();
    if with_floor {
        header.push("floor".to_string());
    }
    header.push("ratio ours/C".to_string());
    if with_floor {
        header.push("ratio ours/floor".to_string());
    }
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        out.push('|');
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            // Text left, numbers right.
            if i < 3 {
                let _ = write!(out, " {cell:<w$} |");
            } else {
                let _ = write!(out, " {cell:>w$} |");
            }
        }
        out.push('\n');
    };
    line(&mut out, &header);
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        let dashes = "-".repeat(*w);
        let end = if i < 3 { '-' } else { ':' };
        let _ = write!(out, "-{dashes}{end}|");
    }
    out.push('\n');
    for row in &rows {
        line(&mut out, row);
    }
    out.push_str(
        "\nbetter = which direction wins for that metric. For \"higher\" metrics a ratio ours/C > 1 means ours is better; for \"lower\" metrics (latency, CPU) a ratio < 1 means ours is better.\n",
    );
    if with_floor {
        out.push_str("floor = shared/tools/floor, the leanest Gearman server (one thread, one epoll, one recv and one send per event): its server CPU us/job is the physical floor on this machine, so ratio ours/floor on that row is how far above the floor ours runs. It serves no admin protocol, no -t and no stores: \"-\" where it did not run (idle, mem, any --queue).\n");
    }
    out.push_str("Values are medians over the rounds. CPU = user + system seconds from /proc (all threads), measured around each run including connection setup.\n");
    if order.contains(&Scenario::Idle) {
        out.push_str(&format!("idle: the fg load in the same round without and with the idle connections open; \"{IDLE_RATIO}\" is its throughput ratio (target: at least {IDLE_TARGET:.2}); latency and CPU are of the run with them.\n"));
    }
    if order.contains(&Scenario::Flood) {
        out.push_str("flood: fresh servers with -t 1 (floor: always one thread); latencies are the neighbour's ECHO round trips beside the flooding connection, CPU per echo counts every ECHO answered (almost all the flood's 64 KiB ones).\n");
    }
    if order.contains(&Scenario::Mem) {
        out.push_str(&format!("mem: RSS = VmRSS of a fresh server process; bytes per queued job = (RSS queued - RSS at start) / jobs; the last RSS reading is {} s after the drain; both servers run with --hashtable-buckets sized for the queue. CPU covers submission and drain.\n", SETTLE.as_secs()));
    }
    if !noisy.is_empty() {
        notes.push(format!(
            "noisy over the rounds (max/min > {NOISY_SPREAD}; more --rounds or a quieter machine would help): {}",
            noisy.join("; ")
        ));
    }
    if short_runs {
        notes.push(format!(
            "some runs took less than {MIN_JUDGED_WINDOW_S} s: their CPU figures are coarse (clock ticks) and were not judged for saturation"
        ));
    }
    if notes.is_empty() {
        out.push_str("The load generator kept less than 0.9 core busy in every run.\n");
    } else {
        out.push_str("Notes:\n");
        for note in notes {
            out.push_str("- ");
            out.push_str(&note);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn settled_label_names_the_settle_time() {
        assert!(SETTLED_LABEL.contains(&format!(" {} s ", SETTLE.as_secs())));
    }
}
