//! Benchmark: our `gearmand` against the C gearmand 1.1.20, same load, one run.
//!
//! Starts both servers on free 127.0.0.1 ports (`-L 127.0.0.1 -p PORT -t 4 -l none -P
//! <tmp>/NAME.pid`), drives them one at a time with the same load, alternating which
//! goes first from round to round, and prints a table of medians with ratios ours/C.
//! The servers are stopped at the end, also when the bench fails.
//!
//! # Usage
//!
//! ```text
//! cargo build --release -p gearmand
//! cargo run --release --example bench                      # full run, 3 rounds
//! cargo run --release --example bench -- --quick           # smoke run, 2,000 jobs, 1 round
//! cargo run --release --example bench -- --scenario seq    # one scenario (repeatable)
//! cargo run --release --example bench -- --ours /usr/sbin/gearmand   # C vs C: ratios ~1.0
//! ```
//!
//! Scenarios (`--scenario NAME`):
//! - `fg` (foreground): 16 clients each SUBMIT_JOB → JOB_CREATED → WORK_COMPLETE in a
//!   loop, 4 workers (CAN_DO, GRAB_JOB, PRE_SLEEP/NOOP, WORK_COMPLETE echoing the data);
//!   `--jobs` jobs (20,000). Jobs/s and p50/p99 submit → WORK_COMPLETE latency.
//! - `bg` (background): 8 clients submit `--bg-jobs` (100,000) SUBMIT_JOB_BG with a
//!   100-byte payload, `--bg-window` (16) requests in flight per connection; no workers.
//! - `drain`: 4 workers grab and complete the jobs `bg` queued (queued untimed first when
//!   `bg` is not selected); timed until the server acknowledged the last WORK_COMPLETE.
//! - `seq` (latency): 1 client × 1 worker, `--seq-jobs` (5,000) sequential round trips.
//!
//! `--queue sqlite|postgres|mysql|redis|memcached` runs both servers on that store (a fresh
//! database file, or their own table or key prefix), so `bg` and `drain` measure stored
//! submission and drain (`--scenario bg --scenario drain`); the database stores take their
//! settings from `eval "$(tests/db_servers.sh start)"`.
//!
//! For each run the table shows the server's CPU seconds (utime + stime of all its threads
//! from `/proc/<pid>/stat`, read before and after) and the generator's own (from
//! `/proc/self/stat`), and notes when the generator saturated a core. Every read is bounded
//! by `--io-timeout` (30 s) and every run by `--timeout` (300 s); on failure the bench exits
//! non-zero with the reason.

mod cpu;
mod load;
mod report;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;

use cpu::Clock;
use load::{Ctx, JobSpec, Measured, UniqueMode};
use report::{Sample, Side};
use server::{Queue, Server, WorkDir};

/// The scenarios, in the order they run and are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// Foreground round trips: many clients and workers.
    #[value(alias = "foreground")]
    Fg,
    /// Background submission without workers.
    #[value(alias = "background")]
    Bg,
    /// Workers draining a queue of background jobs.
    Drain,
    /// One client, one worker, sequential round trips.
    #[value(alias = "latency")]
    Seq,
}

impl Scenario {
    /// The name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::Fg => "fg",
            Scenario::Bg => "bg",
            Scenario::Drain => "drain",
            Scenario::Seq => "seq",
        }
    }
}

#[derive(Debug, Parser)]
#[command(about = "Benchmark our gearmand against the C gearmand under the same load")]
struct Args {
    /// Our server binary (default: target/release/gearmand of this workspace).
    #[arg(long, value_name = "PATH")]
    ours: Option<PathBuf>,
    /// The C server binary.
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/gearmand")]
    theirs: PathBuf,
    /// Small smoke run: 2,000 jobs per scenario, 200 sequential, 1 round.
    #[arg(long)]
    quick: bool,
    /// Run only this scenario (repeat the option for several).
    #[arg(long, value_enum, value_name = "NAME")]
    scenario: Vec<Scenario>,
    /// Foreground jobs in `fg` [default: 20000, --quick 2000].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Background jobs submitted in `bg` and drained in `drain` [default: 100000, --quick 2000].
    #[arg(long, value_name = "N")]
    bg_jobs: Option<usize>,
    /// Sequential round trips in `seq` [default: 5000, --quick 200].
    #[arg(long, value_name = "N")]
    seq_jobs: Option<usize>,
    /// Rounds per scenario and server; the table shows medians [default: 3, --quick 1].
    #[arg(long, value_name = "N")]
    rounds: Option<usize>,
    /// Concurrent clients in `fg`.
    #[arg(long, default_value_t = 16)]
    fg_clients: usize,
    /// Workers in `fg`.
    #[arg(long, default_value_t = 4)]
    fg_workers: usize,
    /// Submitting connections in `bg`.
    #[arg(long, default_value_t = 8)]
    bg_clients: usize,
    /// SUBMIT_JOB_BG requests in flight per connection in `bg` (1 = strict request/reply).
    #[arg(long, default_value_t = 16)]
    bg_window: usize,
    /// Workers in `drain`.
    #[arg(long, default_value_t = 4)]
    drain_workers: usize,
    /// Payload bytes per job.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Unique key per job.
    #[arg(long, value_enum, default_value_t = UniqueMode::Distinct)]
    unique: UniqueMode,
    /// I/O threads for each server (`-t`).
    #[arg(long, default_value_t = 4)]
    threads: u32,
    /// Persistent queue for both servers, to measure stored background submission and
    /// drain (then --bg-jobs defaults to 5,000, --quick 500: the C modules manage only a
    /// few hundred jobs/s). The database stores read their settings from the variables
    /// `tests/db_servers.sh start` prints.
    #[arg(long, value_enum, default_value_t = Queue::Builtin)]
    queue: Queue,
    /// Longest wait for any single reply, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    io_timeout: u64,
    /// Longest time one scenario run may take, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    timeout: u64,
}

/// Everything a run needs, with the `--quick` defaults resolved.
struct Config {
    fg_jobs: usize,
    bg_jobs: usize,
    seq_jobs: usize,
    rounds: usize,
    args: Args,
}

impl Config {
    fn io_timeout(&self) -> Duration {
        Duration::from_secs(self.args.io_timeout.max(1))
    }

    fn time_limit(&self) -> Duration {
        Duration::from_secs(self.args.timeout.max(1))
    }

    fn spec(&self, scenario: Scenario, round: usize) -> JobSpec {
        JobSpec {
            function: Bytes::from(format!(
                "bench-{}-{}-r{round}",
                scenario.label(),
                std::process::id()
            )),
            payload: Bytes::from(vec![b'x'; self.args.payload]),
            unique: self.args.unique,
        }
    }
}

fn default_ours() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release").join("gearmand")
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error with its causes, each once: `ConnectionError::Io` displays its source too.
fn describe(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn run() -> Result<()> {
    let args = Args::parse();
    let (fg, mut bg, seq, rounds) = if args.quick {
        (2_000, 2_000, 200, 1)
    } else {
        (20_000, 100_000, 5_000, 3)
    };
    if args.queue != Queue::Builtin {
        bg = if args.quick { 500 } else { 5_000 };
    }
    let config = Config {
        fg_jobs: args.jobs.unwrap_or(fg),
        bg_jobs: args.bg_jobs.unwrap_or(bg),
        seq_jobs: args.seq_jobs.unwrap_or(seq),
        rounds: args.rounds.unwrap_or(rounds).max(1),
        args,
    };
    let mut selected = if config.args.scenario.is_empty() {
        vec![Scenario::Fg, Scenario::Bg, Scenario::Drain, Scenario::Seq]
    } else {
        config.args.scenario.clone()
    };
    selected.sort();
    selected.dedup();

    let clock = Clock::detect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ours_path = config.args.ours.clone().unwrap_or_else(default_ours);
    let dir = WorkDir::create()?;
    let startup = Duration::from_secs(10);
    let (threads, queue) = (config.args.threads, config.args.queue);
    let mut ours = Server::start("ours", &ours_path, threads, queue, &dir, startup)?;
    let mut theirs = Server::start("C", &config.args.theirs, threads, queue, &dir, startup)?;
    println!(
        "ours: {} (pid {}, {})\nC:    {} (pid {}, {})",
        ours.binary.display(),
        ours.pid(),
        ours.addr,
        theirs.binary.display(),
        theirs.pid(),
        theirs.addr
    );
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string());
    println!(
        "machine: {cores} cores, load average {loadavg} before the run, {} clock ticks/s; servers run with -t {}; {} round(s), alternating which server goes first",
        clock.ticks_per_sec, config.args.threads, config.rounds
    );
    println!(
        "fg: {} jobs, {} clients, {} workers | bg: {} jobs, {} clients, window {} | drain: {} workers | seq: {} jobs | payload {} B, {:?} unique",
        config.fg_jobs,
        config.args.fg_clients,
        config.args.fg_workers,
        config.bg_jobs,
        config.args.bg_clients,
        config.args.bg_window,
        config.args.drain_workers,
        config.seq_jobs,
        config.args.payload,
        config.args.unique
    );

    // Warm both servers up (allocators, caches, thread pools) before anything is timed.
    for server in [&mut ours, &mut theirs] {
        let spec = JobSpec {
            function: Bytes::from(format!("bench-warmup-{}", std::process::id())),
            ..config.spec(Scenario::Fg, 0)
        };
        let jobs = config.fg_jobs.min(2_000);
        untimed(&config, server, "warming up", |ctx| {
            load::foreground(
                ctx,
                &spec,
                config.args.fg_clients,
                config.args.fg_workers,
                jobs,
            )
        })?;
    }

    let mut samples = Vec::new();
    // Units run back to back on one server: bg and drain share their queue.
    let mut units: Vec<Vec<Scenario>> = Vec::new();
    for &s in &selected {
        match units.last_mut() {
            Some(unit) if s == Scenario::Drain && unit == &[Scenario::Bg] => unit.push(s),
            _ => units.push(vec![s]),
        }
    }
    for (u, unit) in units.iter().enumerate() {
        for round in 0..config.rounds {
            let order: [&mut Server; 2] = if (round + u) % 2 == 0 {
                [&mut ours, &mut theirs]
            } else {
                [&mut theirs, &mut ours]
            };
            for server in order {
                let side = if server.name == "ours" {
                    Side::Ours
                } else {
                    Side::Theirs
                };
                let got = run_unit(&config, &clock, server, side, unit, round)?;
                samples.extend(got);
            }
        }
    }
    println!();
    print!("{}", report::render(&samples, &selected, cores));
    drop(theirs);
    drop(ours);
    Ok(())
}

/// Runs one unit (one scenario, or bg followed by drain) on one server.
fn run_unit(
    config: &Config,
    clock: &Clock,
    server: &mut Server,
    side: Side,
    unit: &[Scenario],
    round: usize,
) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    let a = &config.args;
    match unit {
        [Scenario::Fg] => {
            let spec = config.spec(Scenario::Fg, round);
            samples.push(measure(config, clock, server, side, Scenario::Fg, |ctx| {
                load::foreground(ctx, &spec, a.fg_clients, a.fg_workers, config.fg_jobs)
            })?);
        }
        [Scenario::Seq] => {
            let spec = config.spec(Scenario::Seq, round);
            samples.push(measure(
                config,
                clock,
                server,
                side,
                Scenario::Seq,
                |ctx| load::foreground(ctx, &spec, 1, 1, config.seq_jobs),
            )?);
        }
        _ => {
            // bg and/or drain on one queue; whichever is not selected runs untimed so that
            // drain has its jobs and no jobs are left behind for later scenarios.
            let spec = config.spec(Scenario::Bg, round);
            let submit =
                |ctx: &Ctx| load::background(ctx, &spec, a.bg_clients, a.bg_window, config.bg_jobs);
            let drain = |ctx: &Ctx| load::drain(ctx, &spec, a.drain_workers, config.bg_jobs);
            if unit.contains(&Scenario::Bg) {
                samples.push(measure(config, clock, server, side, Scenario::Bg, submit)?);
            } else {
                untimed(config, server, "queueing jobs for drain", submit)?;
            }
            check_queue(config, server, &spec, config.bg_jobs);
            if unit.contains(&Scenario::Drain) {
                samples.push(measure(
                    config,
                    clock,
                    server,
                    side,
                    Scenario::Drain,
                    drain,
                )?);
            } else {
                untimed(config, server, "draining the bg jobs", drain)?;
            }
        }
    }
    Ok(samples)
}

/// Runs a scenario on `server`, reading CPU counters before and after.
fn measure(
    config: &Config,
    clock: &Clock,
    server: &mut Server,
    side: Side,
    scenario: Scenario,
    body: impl FnOnce(&Ctx) -> Result<Measured>,
) -> Result<Sample> {
    let ctx = Ctx::new(server.addr, config.io_timeout(), config.time_limit());
    let server_before = clock.cpu_seconds(Some(server.pid()))?;
    let gen_before = clock.cpu_seconds(None)?;
    let started = Instant::now();
    let result = body(&ctx);
    let cpu_window = started.elapsed();
    let what = format!(
        "scenario {} on the {} server",
        scenario.label(),
        server.name
    );
    // A crashed server explains a failed run better than the socket error it caused.
    server.check_alive().with_context(|| what.clone())?;
    let mut measured = result.with_context(|| what.clone())?;
    let server_after = clock.cpu_seconds(Some(server.pid()))?;
    let gen_after = clock.cpu_seconds(None)?;
    measured.latencies_us.sort_unstable();
    let sample = Sample {
        scenario,
        side,
        jobs: measured.jobs,
        wall_s: measured.wall.as_secs_f64(),
        cpu_window_s: cpu_window.as_secs_f64(),
        latencies_us: measured.latencies_us,
        server_cpu_s: (server_after - server_before).max(0.0),
        gen_cpu_s: (gen_after - gen_before).max(0.0),
    };
    let rate = if sample.wall_s > 0.0 {
        sample.jobs as f64 / sample.wall_s
    } else {
        0.0
    };
    let p50 = report::percentile(&sample.latencies_us, 0.5)
        .map(|us| format!(", p50 {:.3} ms", us as f64 / 1000.0))
        .unwrap_or_default();
    eprintln!(
        "  {:<5} {:<4} {:>7} jobs in {:>7.3} s = {:>9.0} jobs/s{p50}; server CPU {:.2} s, generator CPU {:.2} s",
        scenario.label(),
        server.name,
        sample.jobs,
        sample.wall_s,
        rate,
        sample.server_cpu_s,
        sample.gen_cpu_s
    );
    Ok(sample)
}

/// Runs a preparation or clean-up step that is not reported.
fn untimed(
    config: &Config,
    server: &mut Server,
    what: &str,
    body: impl FnOnce(&Ctx) -> Result<Measured>,
) -> Result<()> {
    let ctx = Ctx::new(server.addr, config.io_timeout(), config.time_limit());
    let result = body(&ctx);
    let what = format!("{what} on the {} server", server.name);
    server.check_alive().with_context(|| what.clone())?;
    result.with_context(|| what.clone())?;
    Ok(())
}

/// Warns when the admin `status` count of queued jobs differs from what was submitted.
fn check_queue(config: &Config, server: &Server, spec: &JobSpec, expected: usize) {
    let ctx = Ctx::new(server.addr, config.io_timeout(), config.time_limit());
    match load::queued_jobs(&ctx, &spec.function) {
        Ok(Some(n)) if n == expected as u64 => {}
        Ok(Some(n)) => eprintln!(
            "warning: {} server's admin status shows {n} queued jobs, expected {expected}",
            server.name
        ),
        Ok(None) if expected == 0 => {}
        Ok(None) => eprintln!(
            "warning: {} server's admin status does not list the benchmark function",
            server.name
        ),
        Err(e) => eprintln!(
            "warning: {} server's admin status failed: {}",
            server.name,
            describe(&e)
        ),
    }
}
