//! Benchmark: our `gearmand` against the C gearmand 1.1.20, same load, one run, with the
//! `floor` server beside them as a measuring instrument.
//!
//! Starts both servers on free 127.0.0.1 ports (`-L 127.0.0.1 -p PORT -t 4 -l none -P
//! <tmp>/NAME.pid`, plus `-f N` when `idle` runs), drives them one at a time with the
//! same load, rotating which goes first from round to round, and prints a table of
//! medians with ratios ours/C. The servers are stopped at the end, also when the bench
//! fails.
//!
//! The third server, `floor` (`shared/tools/floor`, read its README), is the leanest
//! Gearman server in C: one thread, one level-triggered epoll, one `recv` and one `send`
//! per event. Its server CPU µs per job is the physical floor of this machine's kernel
//! and syscall pattern, so the table adds its column and the ratio ours/floor. It is
//! `--floor PATH` (a built binary), or else built with `make` from `../shared/tools/floor`
//! beside the repository (sources copied to `target/bench-floor/`: `shared/` is
//! read-only), or left out with a message when neither exists (`--no-floor` leaves it out
//! too). It runs as `floor -p PORT`, always single-threaded whatever `--threads` says,
//! in every scenario but `idle` and `mem` (no admin protocol to count connections, no
//! `-f`, no `--hashtable-buckets`, and it never frees memory) and not with `--queue`.
//!
//! # Usage
//!
//! ```text
//! cargo build --release -p gearmand
//! cargo run --release --example bench                      # full run, every scenario, 3 rounds
//! cargo run --release --example bench -- --quick           # smoke run, 2,000 jobs, 1 round
//! cargo run --release --example bench -- --scenario seq    # one scenario (repeatable)
//! cargo run --release --example bench -- --threads 0       # both servers single-threaded
//! cargo run --release --example bench -- --ours /usr/sbin/gearmand   # C vs C: ratios ~1.0
//! cargo run --release --example bench -- --floor /path/to/floor       # a floor built elsewhere
//! ```
//!
//! Scenarios (`--scenario NAME`), in the order they run:
//! - `fg` (foreground): 16 clients each SUBMIT_JOB → JOB_CREATED → WORK_COMPLETE in a
//!   loop, 4 workers (CAN_DO, GRAB_JOB, PRE_SLEEP/NOOP, WORK_COMPLETE echoing the data);
//!   `--jobs` jobs (20,000) of `--fg-payload` (16) bytes. Jobs/s and p50/p99 submit →
//!   WORK_COMPLETE latency.
//! - `fg4k`: `fg` with 4 KiB payloads.
//! - `fgpipe`: `fg` with `--pipe-window` (8) SUBMIT_JOBs in flight per client connection
//!   (JOB_CREATED matched to submissions by order, WORK_COMPLETE by handle).
//! - `bg` (background): 8 clients submit `--bg-jobs` (100,000) SUBMIT_JOB_BG with a
//!   `--payload` (100) byte payload, `--bg-window` (16) requests in flight per
//!   connection; no workers.
//! - `drain`: 4 workers grab and complete the jobs `bg` queued (queued untimed first when
//!   `bg` is not selected); timed until the server acknowledged the last WORK_COMPLETE.
//! - `seq` (latency): 1 client × 1 worker, `--seq-jobs` (5,000) sequential round trips.
//! - `flood` (fairness on one I/O thread): fresh servers with `-t 1`; one connection
//!   pipelines bursts of `--flood-burst` (64) ECHO_REQs of `--flood-payload` (64 KiB) and
//!   reads all their replies, in a loop, while a neighbour connection makes
//!   `--flood-echoes` (2,000) sequential ECHO round trips `--flood-interval-ms` (1) apart.
//!   The neighbour's p50/p99/worst round trip (target: p99 ≤ 20 ms, worst ≤ 200 ms), the
//!   flood's echoed MiB/s, server CPU per ECHO answered.
//! - `idle`: the `fg` load without and with `--idle-conns` (10,000) idle connections open
//!   (each answered one ECHO_REQ, then silent); throughput with / without per server.
//! - `mem`: on a fresh server process, `--mem-jobs` (1,000,000) background jobs submitted
//!   as in `bg`, then drained as in `drain`; the server's VmRSS at start, with the jobs
//!   queued, after the drain and 2 s later. Bytes per queued job = (queued - start) / jobs.
//!   These servers run with `--hashtable-buckets` sized for the queue (`--mem-buckets`):
//!   the C server's default 991 makes a million jobs take many minutes.
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
mod flood;
mod idle;
mod load;
mod memory;
mod report;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;

use cpu::Clock;
use flood::FloodSpec;
use idle::IdleProfile;
use load::{Ctx, JobSpec, Measured, UniqueMode};
use report::{Sample, Side};
use server::{Kind, Options, Queue, Server, WorkDir};

/// Payload bytes per job in `fg4k`.
const FG4K_PAYLOAD: usize = 4096;

/// The scenarios, in the order they run and are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// Foreground round trips: many clients and workers.
    #[value(alias = "foreground")]
    Fg,
    /// Foreground round trips with 4 KiB payloads.
    #[value(name = "fg4k")]
    Fg4k,
    /// Foreground jobs, several in flight per client connection.
    #[value(name = "fgpipe", alias = "pipelined")]
    FgPipe,
    /// Background submission without workers.
    #[value(alias = "background")]
    Bg,
    /// Workers draining a queue of background jobs.
    Drain,
    /// One client, one worker, sequential round trips.
    #[value(alias = "latency")]
    Seq,
    /// ECHO round trips beside a connection flooding the same I/O thread (`-t 1`).
    Flood,
    /// The foreground load beside many idle connections.
    Idle,
    /// Server memory with a large queue and after draining it.
    #[value(alias = "memory")]
    Mem,
}

impl Scenario {
    /// The name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::Fg => "fg",
            Scenario::Fg4k => "fg4k",
            Scenario::FgPipe => "fgpipe",
            Scenario::Bg => "bg",
            Scenario::Drain => "drain",
            Scenario::Seq => "seq",
            Scenario::Flood => "flood",
            Scenario::Idle => "idle",
            Scenario::Mem => "mem",
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
    /// The floor server binary (default: built from ../shared/tools/floor beside the
    /// repository into target/bench-floor/, when that folder exists).
    #[arg(long, value_name = "PATH", conflicts_with = "no_floor")]
    floor: Option<PathBuf>,
    /// Leave the floor server out.
    #[arg(long)]
    no_floor: bool,
    /// Small smoke run: 2,000 jobs per scenario, 200 sequential, 20,000 in `mem`, 1,000
    /// idle connections, 1 round.
    #[arg(long)]
    quick: bool,
    /// Run only this scenario (repeat the option for several).
    #[arg(long, value_enum, value_name = "NAME")]
    scenario: Vec<Scenario>,
    /// Foreground jobs in `fg`, `fg4k`, `fgpipe` and each half of `idle` [default: 20000,
    /// --quick 2000].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Background jobs submitted in `bg` and drained in `drain` [default: 100000, --quick 2000].
    #[arg(long, value_name = "N")]
    bg_jobs: Option<usize>,
    /// Sequential round trips in `seq` [default: 5000, --quick 200].
    #[arg(long, value_name = "N")]
    seq_jobs: Option<usize>,
    /// Background jobs queued and drained in `mem` [default: 1000000, --quick 20000].
    #[arg(long, value_name = "N")]
    mem_jobs: Option<usize>,
    /// `--hashtable-buckets` for both servers in `mem` [default: --mem-jobs, at least 991].
    /// With its default 991 buckets the C server walks chains of ~1,000 jobs per submission
    /// and per WORK_COMPLETE at a million queued jobs and falls to ~2,000 submissions/s;
    /// ours accepts the option and ignores it.
    #[arg(long, value_name = "N")]
    mem_buckets: Option<u32>,
    /// The neighbour's ECHO round trips in `flood` [default: 2000, --quick 200].
    #[arg(long, value_name = "N")]
    flood_echoes: Option<usize>,
    /// Pause between the neighbour's round trips in `flood`, milliseconds.
    #[arg(long, default_value_t = 1, value_name = "MS")]
    flood_interval_ms: u64,
    /// ECHO_REQs per burst of the flooding connection in `flood`.
    #[arg(long, default_value_t = 64, value_name = "N")]
    flood_burst: usize,
    /// Payload bytes per flooding ECHO_REQ in `flood`.
    #[arg(long, default_value_t = 65536, value_name = "BYTES")]
    flood_payload: usize,
    /// Idle connections held open in `idle` [default: 10000, --quick 1000].
    #[arg(long, value_name = "N")]
    idle_conns: Option<usize>,
    /// Rounds per scenario and server; the table shows medians [default: 3, --quick 1].
    #[arg(long, value_name = "N")]
    rounds: Option<usize>,
    /// Concurrent clients in `fg`, `fg4k`, `fgpipe` and `idle`.
    #[arg(long, default_value_t = 16)]
    fg_clients: usize,
    /// Workers in `fg`, `fg4k`, `fgpipe` and `idle`.
    #[arg(long, default_value_t = 4)]
    fg_workers: usize,
    /// SUBMIT_JOBs in flight per client connection in `fgpipe`.
    #[arg(long, default_value_t = 8)]
    pipe_window: usize,
    /// Submitting connections in `bg` and `mem`.
    #[arg(long, default_value_t = 8)]
    bg_clients: usize,
    /// SUBMIT_JOB_BG requests in flight per connection in `bg` and `mem` (1 = strict
    /// request/reply).
    #[arg(long, default_value_t = 16)]
    bg_window: usize,
    /// Workers in `drain` and `mem`.
    #[arg(long, default_value_t = 4)]
    drain_workers: usize,
    /// Payload bytes per job in `fg`, `fgpipe` and `idle`.
    #[arg(long, default_value_t = 16)]
    fg_payload: usize,
    /// Payload bytes per job in `bg`, `drain`, `seq` and `mem`.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Unique key per job.
    #[arg(long, value_enum, default_value_t = UniqueMode::Distinct)]
    unique: UniqueMode,
    /// I/O threads for ours and the C server (`-t`; `flood` always runs them with 1, the
    /// floor server always has one).
    #[arg(long, default_value_t = 4)]
    threads: u32,
    /// Persistent queue for both servers, to measure stored background submission and
    /// drain (then --bg-jobs and --mem-jobs default to 5,000, --quick 500: the C modules
    /// manage only a few hundred jobs/s). The database stores read their settings from the variables
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
    flood_echoes: usize,
    mem_jobs: usize,
    idle_conns: usize,
    rounds: usize,
    args: Args,
    /// Where the servers keep their files; removed after they stopped.
    dir: WorkDir,
}

impl Config {
    fn io_timeout(&self) -> Duration {
        Duration::from_secs(self.args.io_timeout.max(1))
    }

    fn time_limit(&self) -> Duration {
        Duration::from_secs(self.args.timeout.max(1))
    }

    fn payload(&self, scenario: Scenario) -> usize {
        match scenario {
            Scenario::Fg | Scenario::FgPipe | Scenario::Idle => self.args.fg_payload,
            Scenario::Fg4k => FG4K_PAYLOAD,
            Scenario::Bg | Scenario::Drain | Scenario::Seq | Scenario::Mem => self.args.payload,
            Scenario::Flood => self.args.flood_payload,
        }
    }

    fn spec(&self, scenario: Scenario, round: usize) -> JobSpec {
        JobSpec {
            function: Bytes::from(format!(
                "bench-{}-{}-r{round}",
                scenario.label(),
                std::process::id()
            )),
            payload: Bytes::from(vec![b'x'; self.payload(scenario)]),
            unique: self.args.unique,
        }
    }
}

/// `$CARGO_TARGET_DIR`, or `target/` of this workspace.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn default_ours() -> PathBuf {
    target_dir().join("release").join("gearmand")
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
    let (fg, mut bg, seq, mut mem, idle, rounds) = if args.quick {
        (2_000, 2_000, 200, 20_000, 1_000, 1)
    } else {
        (20_000, 100_000, 5_000, 1_000_000, 10_000, 3)
    };
    let flood_echoes = if args.quick { 200 } else { 2_000 };
    if args.queue != Queue::Builtin {
        bg = if args.quick { 500 } else { 5_000 };
        mem = bg;
    }
    let config = Config {
        fg_jobs: args.jobs.unwrap_or(fg),
        bg_jobs: args.bg_jobs.unwrap_or(bg),
        seq_jobs: args.seq_jobs.unwrap_or(seq),
        flood_echoes: args.flood_echoes.unwrap_or(flood_echoes),
        mem_jobs: args.mem_jobs.unwrap_or(mem),
        idle_conns: args.idle_conns.unwrap_or(idle),
        rounds: args.rounds.unwrap_or(rounds).max(1),
        args,
        dir: WorkDir::create()?,
    };
    let mut selected = if config.args.scenario.is_empty() {
        <Scenario as clap::ValueEnum>::value_variants().to_vec()
    } else {
        config.args.scenario.clone()
    };
    selected.sort();
    selected.dedup();

    let clock = Clock::detect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ours_path = config.args.ours.clone().unwrap_or_else(default_ours);
    // Both servers and this process hold every idle connection: raise the limit first.
    let fds = if selected.contains(&Scenario::Idle) {
        let needed = idle::fds_needed(config.idle_conns);
        idle::raise_fd_limit(needed)?;
        Some(needed)
    } else {
        None
    };
    let options = Options {
        threads: config.args.threads,
        queue: config.args.queue,
        fds,
        hashtable_buckets: None,
        startup: Duration::from_secs(10),
    };
    let mut servers = vec![
        (
            Side::Ours,
            Server::start("ours", Kind::Gearmand, &ours_path, options, &config.dir)?,
        ),
        (
            Side::Theirs,
            Server::start(
                "C",
                Kind::Gearmand,
                &config.args.theirs,
                options,
                &config.dir,
            )?,
        ),
    ];
    let mut floor_note = None;
    match floor_binary(&config.args)? {
        Ok(path) => {
            let floor = Server::start("floor", Kind::Floor, &path, options, &config.dir)
                .context("starting the floor server (leave it out with --no-floor)")?;
            servers.push((Side::Floor, floor));
        }
        Err(why) => floor_note = Some(format!("floor: not run ({why})")),
    }
    for (side, server) in &servers {
        println!(
            "{:<6} {} (pid {}, {})",
            format!("{}:", side.label()),
            server.binary.display(),
            server.pid(),
            server.addr
        );
    }
    if let Some(note) = &floor_note {
        println!("{note}");
    }
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string());
    println!(
        "machine: {cores} cores, load average {loadavg} before the run, {} clock ticks/s; ours and C run with -t {} (flood: -t 1){}; {} round(s), rotating which server goes first",
        clock.ticks_per_sec,
        config.args.threads,
        if floor_note.is_none() {
            ", floor single-threaded"
        } else {
            ""
        },
        config.rounds
    );
    println!(
        "fg: {} jobs, {} clients, {} workers, {} B (fg4k: {FG4K_PAYLOAD} B; fgpipe: window {}) | bg: {} jobs, {} clients, window {} | drain: {} workers | seq: {} jobs | bg, drain, seq, mem: {} B | flood: {} x {} B bursts, {} neighbour echoes {} ms apart | idle: {} connections | mem: {} jobs | {:?} unique",
        config.fg_jobs,
        config.args.fg_clients,
        config.args.fg_workers,
        config.args.fg_payload,
        config.args.pipe_window,
        config.bg_jobs,
        config.args.bg_clients,
        config.args.bg_window,
        config.args.drain_workers,
        config.seq_jobs,
        config.args.payload,
        config.args.flood_burst,
        config.args.flood_payload,
        config.flood_echoes,
        config.args.flood_interval_ms,
        config.idle_conns,
        config.mem_jobs,
        config.args.unique
    );

    // Warm the servers up (allocators, caches, thread pools) before anything is timed.
    for (_, server) in &mut servers {
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
                1,
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
        // The servers that serve every scenario of the unit, in a rotating order.
        let mut taking: Vec<usize> = (0..servers.len())
            .filter(|&i| servers[i].1.kind != Kind::Floor || unit.iter().all(|&s| floor_serves(s)))
            .collect();
        for round in 0..config.rounds {
            let len = taking.len();
            taking.rotate_left(if round == 0 { u % len } else { 1 });
            for &i in &taking {
                let (side, server) = &mut servers[i];
                let got = run_unit(&config, &clock, server, *side, unit, round)?;
                samples.extend(got);
            }
        }
    }
    println!();
    print!("{}", report::render(&samples, &selected, cores));
    // Stop the servers before `config` removes their directory.
    drop(servers);
    Ok(())
}

/// Whether the floor server can serve `scenario`: not `idle` (it counts connections
/// with the admin `workers` command) nor `mem` (fresh servers with
/// `--hashtable-buckets`; floor never frees memory, so there is no floor to measure).
fn floor_serves(scenario: Scenario) -> bool {
    !matches!(scenario, Scenario::Idle | Scenario::Mem)
}

/// The floor binary to run, or why there is none: `--floor PATH`, else one built from
/// `../shared/tools/floor` beside the repository, unless `--no-floor` or `--queue` (floor
/// has no stores). A failing build is reported and the bench goes on without floor.
fn floor_binary(args: &Args) -> Result<std::result::Result<PathBuf, String>> {
    if args.no_floor {
        return Ok(Err("--no-floor".to_string()));
    }
    if args.queue != Queue::Builtin {
        return Ok(Err(format!(
            "it has no persistent queue, and --queue {:?} was given",
            args.queue
        )));
    }
    if let Some(path) = &args.floor {
        if !path.is_file() {
            bail!("--floor {}: no such file", path.display());
        }
        return Ok(Ok(path.clone()));
    }
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/floor");
    if !source.join("floor.c").is_file() {
        return Ok(Err(format!(
            "no --floor PATH given and no {} to build it from",
            source.display()
        )));
    }
    // shared/ is read-only: build a copy of the sources in the target directory. Files are
    // copied only when they changed, so make rebuilds only then.
    let build = target_dir().join("bench-floor");
    std::fs::create_dir_all(&build).with_context(|| format!("creating {}", build.display()))?;
    for file in ["floor.c", "Makefile"] {
        let from = source.join(file);
        let to = build.join(file);
        let text = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        if std::fs::read(&to).ok().as_deref() != Some(&text[..]) {
            std::fs::write(&to, &text).with_context(|| format!("writing {}", to.display()))?;
        }
    }
    let out = std::process::Command::new("make")
        .args(["-s", "-C"])
        .arg(&build)
        .arg("floor")
        .output();
    match out {
        Ok(out) if out.status.success() => Ok(Ok(build.join("floor"))),
        Ok(out) => Ok(Err(format!(
            "`make -C {} floor` failed: {}",
            build.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
        Err(e) => Ok(Err(format!("running make: {e}"))),
    }
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
        &[scenario @ (Scenario::Fg | Scenario::Fg4k | Scenario::FgPipe)] => {
            let spec = config.spec(scenario, round);
            let window = if scenario == Scenario::FgPipe {
                a.pipe_window.max(1)
            } else {
                1
            };
            samples.push(measure(config, clock, server, side, scenario, |ctx| {
                load::foreground(
                    ctx,
                    &spec,
                    a.fg_clients,
                    a.fg_workers,
                    config.fg_jobs,
                    window,
                )
            })?);
        }
        [Scenario::Idle] => samples.push(run_idle(config, clock, server, side, round)?),
        [Scenario::Mem] => samples.push(run_mem(config, clock, server, side, round)?),
        [Scenario::Flood] => samples.push(run_flood(config, clock, server, side)?),
        [Scenario::Seq] => {
            let spec = config.spec(Scenario::Seq, round);
            samples.push(measure(
                config,
                clock,
                server,
                side,
                Scenario::Seq,
                |ctx| load::foreground(ctx, &spec, 1, 1, config.seq_jobs, 1),
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
            // The floor server has no admin protocol to ask.
            if server.kind != Kind::Floor {
                check_queue(config, server, &spec, config.bg_jobs);
            }
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

/// `idle`: the `fg` load without and with `--idle-conns` idle connections open, in
/// alternating order from round to round so that neither half profits from the other's
/// warm-up. The sample is the run with the connections; the one without gives its
/// throughput to compare.
fn run_idle(
    config: &Config,
    clock: &Clock,
    server: &mut Server,
    side: Side,
    round: usize,
) -> Result<Sample> {
    let a = &config.args;
    let spec = config.spec(Scenario::Idle, round);
    let fg =
        |ctx: &Ctx| load::foreground(ctx, &spec, a.fg_clients, a.fg_workers, config.fg_jobs, 1);
    let baseline = |server: &mut Server| -> Result<Sample> {
        let sample = measure_quiet(config, clock, server, side, Scenario::Idle, fg)?;
        progress(&sample, server.name, "without idle connections");
        Ok(sample)
    };
    // Odd rounds open the connections first, even rounds run without them first.
    let (without, mut with) = if round % 2 == 1 {
        let with = with_idle_conns(config, clock, server, side, &fg)?;
        (baseline(server)?, with)
    } else {
        let without = baseline(server)?;
        (without, with_idle_conns(config, clock, server, side, &fg)?)
    };
    if let Some(idle) = with.idle.as_mut() {
        idle.baseline_jobs_per_s = without.jobs_per_s();
    }
    Ok(with)
}

/// The half of `idle` with the connections open: opens them (checking that the server
/// lists them), runs `fg`, closes them and waits until the server has let them go.
fn with_idle_conns(
    config: &Config,
    clock: &Clock,
    server: &mut Server,
    side: Side,
    fg: &dyn Fn(&Ctx) -> Result<Measured>,
) -> Result<Sample> {
    let n = config.idle_conns;
    let ctx = Ctx::new(server.addr, config.io_timeout(), config.time_limit());
    let what = format!("opening {n} idle connections to the {} server", server.name);
    let opened = (|| {
        let before = load::connection_count(&ctx)?;
        let rss_before = memory::rss_bytes(server.pid())?;
        let conns = idle::open(&ctx, n)?;
        let listed = load::connection_count(&ctx)?;
        let rss_with = memory::rss_bytes(server.pid())?;
        Ok::<_, anyhow::Error>((before, rss_before, conns, listed, rss_with))
    })();
    server.check_alive().with_context(|| what.clone())?;
    let (before, rss_before, conns, listed, rss_with) = opened.with_context(|| what.clone())?;
    if listed < n as u64 {
        eprintln!(
            "warning: the {} server lists {listed} connections with {n} idle ones open",
            server.name
        );
    }
    let mut sample = measure_quiet(config, clock, server, side, Scenario::Idle, fg)?;
    progress(
        &sample,
        server.name,
        &format!("with {n} idle connections, {listed} listed"),
    );
    drop(conns);
    // Let the server finish with the closed connections before anything else runs.
    match idle::wait_closed(&ctx, before) {
        Ok(None) => {}
        Ok(Some(left)) => eprintln!(
            "warning: the {} server still lists {left} connections {} s after the idle ones closed (had {before} before)",
            server.name,
            config.io_timeout().as_secs()
        ),
        Err(e) => eprintln!(
            "warning: counting the {} server's connections failed: {}",
            server.name,
            describe(&e)
        ),
    }
    sample.idle = Some(IdleProfile {
        conns: n as u64,
        baseline_jobs_per_s: None,
        rss_per_conn: (n > 0).then(|| (rss_with as f64 - rss_before as f64) / n as f64),
    });
    Ok(sample)
}

/// `mem` on a fresh process of `server`'s binary and options, so that its first RSS
/// reading is a server that never held a job, and what it keeps after the drain is
/// this run's doing alone. The process is stopped afterwards.
fn run_mem(
    config: &Config,
    clock: &Clock,
    server: &Server,
    side: Side,
    round: usize,
) -> Result<Sample> {
    let a = &config.args;
    // The C server's hash tables sized for the queue, as its documentation advises.
    let buckets = a
        .mem_buckets
        .unwrap_or_else(|| u32::try_from(config.mem_jobs).unwrap_or(u32::MAX).max(991));
    let options = Options {
        hashtable_buckets: Some(buckets),
        ..server.options
    };
    let mut fresh = server
        .start_fresh(options, &config.dir)
        .with_context(|| format!("starting a fresh {} server for mem", server.name))?;
    let spec = config.spec(Scenario::Mem, round);
    let pid = fresh.pid();
    let mut sample = measure_quiet(config, clock, &mut fresh, side, Scenario::Mem, |ctx| {
        memory::profile(
            ctx,
            pid,
            &spec,
            a.bg_clients,
            a.bg_window,
            a.drain_workers,
            config.mem_jobs,
        )
    })?;
    // Outside the CPU window: the server is idle meanwhile.
    std::thread::sleep(memory::SETTLE);
    fresh
        .check_alive()
        .context("the fresh server after the mem scenario")?;
    let settled = memory::rss_bytes(pid)?;
    if let Some(mem) = sample.mem.as_mut() {
        mem.settled = Some(settled);
    }
    progress(&sample, server.name, "submitted and drained");
    Ok(sample)
}

/// `flood` on a fresh process of `server`'s binary with `-t 1` (the floor server has one
/// thread anyway), so that the flooding connection and its neighbour share the one I/O
/// thread. The process is stopped afterwards.
fn run_flood(config: &Config, clock: &Clock, server: &Server, side: Side) -> Result<Sample> {
    let a = &config.args;
    let options = Options {
        threads: 1,
        ..server.options
    };
    let mut fresh = server.start_fresh(options, &config.dir).with_context(|| {
        format!(
            "starting a fresh {} server with -t 1 for flood",
            server.name
        )
    })?;
    let spec = FloodSpec {
        burst: a.flood_burst.max(1),
        payload: a.flood_payload,
        echoes: config.flood_echoes.max(1),
        interval: Duration::from_millis(a.flood_interval_ms),
    };
    measure(config, clock, &mut fresh, side, Scenario::Flood, |ctx| {
        flood::run(ctx, &spec)
    })
}

/// Runs a scenario on `server`, reading CPU counters before and after, and prints a
/// progress line.
fn measure(
    config: &Config,
    clock: &Clock,
    server: &mut Server,
    side: Side,
    scenario: Scenario,
    body: impl FnOnce(&Ctx) -> Result<Measured>,
) -> Result<Sample> {
    let sample = measure_quiet(config, clock, server, side, scenario, body)?;
    progress(&sample, server.name, "");
    Ok(sample)
}

/// Runs a scenario on `server`, reading CPU counters before and after.
fn measure_quiet(
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
    Ok(Sample {
        scenario,
        side,
        jobs: measured.jobs,
        wall_s: measured.wall.as_secs_f64(),
        cpu_window_s: cpu_window.as_secs_f64(),
        latencies_us: measured.latencies_us,
        server_cpu_s: (server_after - server_before).max(0.0),
        gen_cpu_s: (gen_after - gen_before).max(0.0),
        mem: measured.mem,
        idle: None,
        flood: measured.flood,
    })
}

/// One progress line on stderr (plus the RSS readings for `mem`).
fn progress(sample: &Sample, server: &str, tag: &str) {
    let p50 = report::percentile(&sample.latencies_us, 0.5)
        .map(|us| format!(", p50 {:.3} ms", us as f64 / 1000.0))
        .unwrap_or_default();
    let tag = if tag.is_empty() {
        String::new()
    } else {
        format!(" ({tag})")
    };
    eprintln!(
        "  {:<6} {:<5} {:>7} jobs in {:>7.3} s = {:>9.0} jobs/s{p50}; server CPU {:.2} s, generator CPU {:.2} s{tag}",
        sample.scenario.label(),
        server,
        sample.jobs,
        sample.wall_s,
        sample.jobs_per_s().unwrap_or(0.0),
        sample.server_cpu_s,
        sample.gen_cpu_s
    );
    if let Some(flood) = sample.flood {
        let ms = |p: f64| {
            report::percentile(&sample.latencies_us, p)
                .map_or("?".to_string(), |us| format!("{:.3}", us as f64 / 1000.0))
        };
        eprintln!(
            "         neighbour: {} echoes, p50 {} ms, p99 {} ms, worst {} ms; flood: {} bursts, {:.0} MiB/s echoed",
            flood.neighbour_echoes,
            ms(0.5),
            ms(0.99),
            ms(1.0),
            flood.bursts,
            flood.mib_per_s(sample.wall_s).unwrap_or(0.0)
        );
    }
    if let Some(mem) = sample.mem {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        eprintln!(
            "         RSS {:.1} MiB at start, {:.1} MiB queued ({:.0} B/job), {:.1} MiB drained, {} MiB {} s later",
            mib(mem.start),
            mib(mem.queued),
            mem.bytes_per_job(sample.jobs).unwrap_or(f64::NAN),
            mib(mem.drained),
            mem.settled
                .map_or("?".to_string(), |b| format!("{:.1}", mib(b))),
            memory::SETTLE.as_secs()
        );
    }
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
