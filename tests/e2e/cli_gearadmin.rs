//! `gearadmin` end to end (shared/docs/protocol.md §9.2): golden outputs of every option against
//! our server, `--shutdown` / `--shutdown-graceful`, `--json`, error reporting, and interop with
//! the C tool (`/usr/bin/gearadmin`) and the C server (`/usr/sbin/gearmand`).
//!
//! Golden transcripts live in `tests/e2e/golden/gearadmin/`, one file per case, in the
//! `cat -A` style of captures of the C gearadmin (shared/docs/protocol.md §9.2); `UPDATE_GOLDEN=1` rewrites them.

use std::collections::BTreeMap;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use gearman_shared::admin::AdminClient;
use gearman_shared::protocol::{Priority, Request};

use crate::harness::{b, bg_job, h, wait_until, ChildGuard, Client, Server};

const C_GEARADMIN: &str = "/usr/bin/gearadmin";
const C_GEARMAND: &str = "/usr/sbin/gearmand";

/// Every tool run is bounded.
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// How long a server gets to exit after a shutdown request.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// The options our `--help` adds to the C tool's (the TLS files after `-S`, the rest at the
/// end).
const OUR_EXTRA_OPTION_LINES: [&str; 7] = [
    "  --ssl-ca-file arg              CA file (PEM) to verify the server with.",
    "  --ssl-certificate arg          Client certificate file (PEM).",
    "  --ssl-key arg                  Client certificate's private key (PEM).",
    "  --ssl-server-name arg          Name the server's certificate must carry.",
    "  --shutdown                     Shut the server down immediately.",
    "  --shutdown-graceful            Shut the server down once no job is left.",
    "  --json                         Print listings and values as JSON.",
];

// ---------------------------------------------------------------------------------------
// Binaries and servers

/// Newest modification time of the files under `dir`.
fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// Our `gearadmin`: `target/<profile>/gearadmin`, next to the test executable's `deps/`.
fn ours() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe of the test binary");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary is inside target/<profile>/deps")
        .join("gearadmin");
    assert!(
        bin.is_file(),
        "gearadmin binary not found at {}: build it with `cargo build --workspace --bins`",
        bin.display()
    );
    // `cargo test` does not rebuild another package's binary: refuse a stale one.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let sources = [root.join("gearadmin/src"), root.join("shared/src")]
        .iter()
        .filter_map(|d| newest_mtime(d))
        .max();
    if let (Some(built), Some(sources)) = (built, sources) {
        assert!(
            built >= sources,
            "{} is older than gearadmin/src or shared/src: rebuild it with \
             `cargo build --workspace --bins`",
            bin.display()
        );
    }
    bin
}

/// The C tool; its absence fails the test loudly.
fn c_tool() -> PathBuf {
    assert!(
        Path::new(C_GEARADMIN).is_file(),
        "{C_GEARADMIN} is missing: install the Debian package gearman-tools \
         (`apt-get install gearman-tools`)"
    );
    PathBuf::from(C_GEARADMIN)
}

/// libgearman's `-S` variables, removed from every run so that `-S` cases do not depend on
/// the environment of the test.
const TLS_ENV: [&str; 3] = [
    "GEARMAND_CA_CERTIFICATE",
    "GEARMAN_CLIENT_PEM",
    "GEARMAN_CLIENT_KEY",
];

/// Runs a gearadmin binary (argv[0] `gearadmin`, so both tools print the same prefix) with
/// `-h 127.0.0.1 -p PORT` when a port is given.
fn run(bin: &Path, port: Option<u16>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.arg0("gearadmin");
    for var in TLS_ENV {
        cmd.env_remove(var);
    }
    if let Some(port) = port {
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    }
    cmd.args(args);
    ChildGuard::spawn(cmd).wait_output(RUN_LIMIT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A port nobody listens on (bound, then released).
fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// The C gearmand 1.1.20, killed (and its pid file removed) when dropped.
struct CServer {
    child: Child,
    port: u16,
    pid_file: PathBuf,
}

impl CServer {
    fn start() -> CServer {
        assert!(
            Path::new(C_GEARMAND).is_file(),
            "{C_GEARMAND} is missing: install the Debian package gearman-job-server \
             (`apt-get install gearman-job-server`)"
        );
        let mut last = String::new();
        for _attempt in 0..3 {
            let port = dead_port();
            let pid_file = PathBuf::from(format!("/tmp/ga-{port}.pid"));
            let mut child = Command::new(C_GEARMAND)
                .args([
                    "-L",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-l",
                    "none",
                    "-P",
                ])
                .arg(&pid_file)
                .args(["--job-handle-prefix", "H:host"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot spawn {C_GEARMAND}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(10);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("{C_GEARMAND} exited early with {status}");
                    break;
                }
                // The listener must be this child's (not a server another test started on
                // the same port a moment earlier): ask it for its pid.
                if admin_pid(addr) == Some(child.id()) {
                    return CServer {
                        child,
                        port,
                        pid_file,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!("{C_GEARMAND} did not accept connections within 10 s");
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = fs::remove_file(&pid_file);
        }
        panic!("{last}");
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the C server died with {status}");
        }
    }
}

/// The pid a server at `addr` reports with `getpid`, if it answers.
fn admin_pid(addr: SocketAddr) -> Option<u32> {
    let mut admin = AdminClient::connect(addr, Some(Duration::from_millis(500))).ok()?;
    admin.getpid().ok()
}

impl Drop for CServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.pid_file);
    }
}

// ---------------------------------------------------------------------------------------
// Server state

/// Connections that hold a known state on a server; the state lasts while they are open.
///
/// - worker `w1` (client id `w1`): CAN_DO reverse, upper;
/// - an anonymous worker: CAN_DO reverse, running `H:host:1`;
/// - background jobs `H:host:1` reverse NORMAL `u1` (running), `H:host:2` upper HIGH with an
///   empty unique, `H:host:3` lowfn LOW `u-low`, `H:host:4` reverse LOW `u2`;
/// - a foreground job `H:host:5` fgfn NORMAL `fg-u`, its client attached;
/// - the function `made`, created by an admin command.
struct State {
    /// The admin connection, kept open to wait for the server to settle.
    admin: Client,
    _others: Vec<Client>,
}

/// Connections in the `workers` listing while the state is held (admin included).
const STATE_CONNECTIONS: usize = 4;

fn setup_state(addr: SocketAddr) -> State {
    let mut w1 = Client::connect(addr);
    w1.send(Request::SetClientId { id: b("w1") });
    w1.register(&["reverse", "upper"]);
    let mut w2 = Client::connect(addr);
    w2.register(&["reverse"]);
    let mut client = Client::connect(addr);
    let jobs = [
        bg_job("reverse", "u1", "a", Priority::Normal),
        bg_job("upper", "", "b", Priority::High),
        bg_job("lowfn", "u-low", "c", Priority::Low),
        bg_job("reverse", "u2", "d", Priority::Low),
    ];
    for (n, job) in (1..).zip(jobs) {
        assert_eq!(client.submit(job), h(n));
    }
    let mut fg = Client::connect(addr);
    assert_eq!(fg.submit_fg("fgfn", "fg-u", "e"), h(5));
    let (handle, function, _) = w2.grab();
    assert_eq!((handle, function), (h(1), b("reverse")));
    let mut admin = Client::connect(addr);
    assert_eq!(admin.admin("create function made"), "OK\r\n");
    // The submitting client is not needed any more; its background jobs stay.
    drop(client);
    let mut state = State {
        admin,
        _others: vec![w1, w2, fg],
    };
    state.settle();
    state
}

impl State {
    /// Waits until the server lists exactly the state's connections, so that a tool's
    /// connection from an earlier run is gone before the next run lists `workers`.
    fn settle(&mut self) {
        let admin = &mut self.admin;
        wait_until(
            Duration::from_secs(5),
            "the server drops closed connections",
            || admin.admin("workers").lines().filter(|l| *l != ".").count() == STATE_CONNECTIONS,
        );
    }
}

// ---------------------------------------------------------------------------------------
// Comparing outputs

/// `cat -A` style: tab `^I`, CR `^M`, line end `$`.
fn show(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &c in bytes {
        match c {
            b'\t' => out.push_str("^I"),
            b'\r' => out.push_str("^M"),
            b'\n' => out.push_str("$\n"),
            0x20..=0x7e => out.push(char::from(c)),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        out.push_str("[no newline]\n");
    }
    out
}

/// A transcript like captures of the C gearadmin (shared/docs/protocol.md §9.2).
fn transcript(command_line: &str, out: &Output) -> String {
    format!(
        "### {command_line}\n--- stdout:\n{}--- stderr:\n{}--- rc={}\n",
        show(&out.stdout),
        show(&out.stderr),
        out.status
            .code()
            .map_or_else(|| format!("{:?}", out.status), |c| c.to_string())
    )
}

/// Replaces the server-specific parts: the fd that starts a `workers` line, the server's
/// pid, and the port.
fn normalize(output: &str, pid: u32, port: u16) -> String {
    let pid = pid.to_string();
    let mut out = String::new();
    for line in output.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let ending = &line[body.len()..];
        let fd_end = body.find(' ').unwrap_or(0);
        let normalized = if body.strip_suffix('$').unwrap_or(body) == pid {
            body.replacen(&pid, "<PID>", 1)
        } else if fd_end > 0
            && body[..fd_end].bytes().all(|c| c.is_ascii_digit())
            && body.contains(" :")
        {
            format!("<FD>{}", &body[fd_end..])
        } else {
            body.to_owned()
        };
        out.push_str(&normalized.replace(&port.to_string(), "<PORT>"));
        out.push_str(ending);
    }
    out
}

/// The lines of `bytes`, sorted, for listings whose order depends on the server.
fn sorted_lines(bytes: &str) -> Vec<String> {
    let mut lines: Vec<String> = bytes.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Our output without the options the C tool does not have.
fn without_our_options(stdout: &[u8]) -> String {
    text(stdout)
        .split_inclusive('\n')
        .filter(|l| !OUR_EXTRA_OPTION_LINES.contains(&l.trim_end_matches('\n')))
        .collect()
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/golden/gearadmin")
}

/// Compares `actual` with the golden file `name`, or rewrites it with `UPDATE_GOLDEN=1`.
fn check_golden(name: &str, actual: &str, failures: &mut Vec<String>) {
    let path = golden_dir().join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        fs::create_dir_all(golden_dir()).expect("create the golden directory");
        fs::write(&path, actual).expect("write a golden file");
        return;
    }
    match fs::read_to_string(&path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => failures.push(format!(
            "{} differs (UPDATE_GOLDEN=1 rewrites it)\n--- expected:\n{expected}--- actual:\n{actual}",
            path.display()
        )),
        Err(e) => failures.push(format!(
            "{}: {e} (UPDATE_GOLDEN=1 writes it)\n--- actual:\n{actual}",
            path.display()
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Golden outputs against our server

/// One golden case: its file name, its arguments, whether it runs against the server.
struct Golden {
    name: &'static str,
    args: &'static [&'static str],
    with_server: bool,
}

const fn case(name: &'static str, args: &'static [&'static str]) -> Golden {
    Golden {
        name,
        args,
        with_server: true,
    }
}

/// Every option of the C tool and ours, in an order where each case sees the changes of the
/// ones before it.
const GOLDEN: &[Golden] = &[
    case("01-status", &["--status"]),
    case("02-priority-status", &["--priority-status"]),
    case("03-workers", &["--workers"]),
    case("04-show-jobs", &["--show-jobs"]),
    case("05-show-unique-jobs", &["--show-unique-jobs"]),
    case("06-server-version", &["--server-version"]),
    case("07-server-verbose", &["--server-verbose"]),
    case("08-getpid", &["--getpid"]),
    case(
        "09-fixed-order",
        &["--status", "--workers", "--getpid", "--server-version"],
    ),
    case("10-create-function", &["--create-function", "newfn"]),
    case("11-status-after-create", &["--status"]),
    case("12-drop-function", &["--drop-function", "newfn"]),
    case("13-drop-function-missing", &["--drop-function", "newfn"]),
    case("14-cancel-job", &["--cancel-job", "H:host:3"]),
    case("15-show-jobs-after-cancel", &["--show-jobs"]),
    case("16-cancel-job-unknown", &["--cancel-job", "H:host:nosuch"]),
    case(
        "17-error-then-more",
        &["--status", "--drop-function", "nosuch", "--getpid"],
    ),
    case(
        "18-json",
        &[
            "--json",
            "--status",
            "--priority-status",
            "--show-jobs",
            "--show-unique-jobs",
            "--server-version",
            "--drop-function",
            "nosuch",
        ],
    ),
    case("19-abbreviated-option", &["--stat"]),
    case("20-no-operation", &[]),
    case("21-ssl", &["-S", "--status"]),
    case("22-unknown-option", &["--shutdown-now"]),
    case("23-missing-argument", &["--create-function"]),
    case("24-repeated-option", &["--status", "--status"]),
    case("25-ambiguous-option", &["--show"]),
    Golden {
        name: "26-help",
        args: &["--help"],
        with_server: false,
    },
];

#[test]
fn ours_golden_output_of_every_option() {
    let tool = ours();
    let server = Server::start(&[]);
    let mut state = setup_state(server.addr());
    let mut failures = Vec::new();
    for golden in GOLDEN {
        state.settle();
        let port = golden.with_server.then(|| server.port());
        let out = run(&tool, port, golden.args);
        let mut command_line = String::from("gearadmin");
        if golden.with_server {
            command_line.push_str(" -h 127.0.0.1 -p <PORT>");
        }
        for arg in golden.args {
            command_line.push(' ');
            command_line.push_str(arg);
        }
        let mut actual = normalize(
            &transcript(&command_line, &out),
            server.pid(),
            server.port(),
        );
        if let Some(level) = std::env::var_os("E2E_VERBOSE") {
            // The harness passes --verbose LEVEL: report the default level instead.
            let level = level.to_string_lossy().to_uppercase();
            actual = actual.replace(&format!("\n{level}$\n"), "\nERROR$\n");
        }
        check_golden(golden.name, &actual, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Shutdown

#[test]
fn ours_shutdown_stops_the_server() {
    let mut server = Server::start(&[]);
    let out = run(&ours(), Some(server.port()), &["--shutdown"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout), text(&out.stderr)),
        (Some(0), "OK\n".to_owned(), String::new()),
        "{out:?}"
    );
    wait_until(EXIT_LIMIT, "the server exits after --shutdown", || {
        server.try_exit_status().is_some()
    });
    let status = server.try_exit_status().expect("exited");
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn ours_shutdown_runs_after_every_other_operation() {
    let mut server = Server::start(&[]);
    let out = run(
        &ours(),
        Some(server.port()),
        &["--shutdown", "--getpid", "--status"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(text(&out.stdout), format!("{}\n.\nOK\n", server.pid()));
    wait_until(EXIT_LIMIT, "the server exits after --shutdown", || {
        server.try_exit_status().is_some()
    });
}

#[test]
fn ours_shutdown_graceful_waits_for_the_last_job() {
    let mut server = Server::start(&[]);
    let mut worker = server.connect();
    worker.register(&["slow"]);
    let mut client = server.connect();
    let handle = client.submit_bg("slow", "", "x");

    let out = run(&ours(), Some(server.port()), &["--shutdown-graceful"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout), text(&out.stderr)),
        (Some(0), "OK\n".to_owned(), String::new()),
        "{out:?}"
    );
    // A job is queued: the server stays, but accepts no new connection.
    wait_until(Duration::from_secs(5), "the listener closes", || {
        TcpStream::connect_timeout(&server.addr(), Duration::from_millis(200)).is_err()
    });
    thread::sleep(Duration::from_millis(200));
    server.assert_alive();

    // Existing connections still work; once the job is done the server exits.
    let (grabbed, _, _) = worker.grab();
    assert_eq!(grabbed, handle);
    worker.complete(&grabbed, b"done");
    wait_until(EXIT_LIMIT, "the server exits after its last job", || {
        server.try_exit_status().is_some()
    });
    let status = server.try_exit_status().expect("exited");
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn shutdown_is_an_error_on_the_c_server() {
    let mut c_server = CServer::start();
    for option in ["--shutdown", "--shutdown-graceful"] {
        let out = run(&ours(), Some(c_server.port), &[option, "--getpid"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(
            text(&out.stdout),
            format!("{}\n", c_server.pid()),
            "{out:?}"
        );
        let word = option.trim_start_matches("--").replace("-graceful", "");
        assert_eq!(
            text(&out.stderr),
            format!("Error: UNKNOWN_COMMAND Unknown+server+command{word}\r\n")
        );
    }
    c_server.assert_alive();
}

// ---------------------------------------------------------------------------------------
// JSON

#[test]
fn json_output_parses_back() {
    let server = Server::start(&[]);
    let mut state = setup_state(server.addr());
    let out = run(
        &ours(),
        Some(server.port()),
        &[
            "--json",
            "--getpid",
            "--status",
            "--priority-status",
            "--workers",
            "--show-jobs",
            "--show-unique-jobs",
            "--server-version",
            "--server-verbose",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));

    assert_eq!(json["getpid"], serde_json::json!(server.pid()));
    assert!(json["server_version"]
        .as_str()
        .is_some_and(|v| v.starts_with("1.1.20")));
    assert!(json["server_verbose"].is_string());
    assert_eq!(json["errors"], serde_json::json!([]));

    let by_function = |key: &str| -> BTreeMap<String, serde_json::Value> {
        json[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is an array: {json}"))
            .iter()
            .map(|entry| {
                let name = entry["function"]
                    .as_str()
                    .expect("function name")
                    .to_owned();
                (name, entry.clone())
            })
            .collect()
    };
    let status = by_function("status");
    assert_eq!(
        status["reverse"],
        serde_json::json!({"function": "reverse", "total": 2, "running": 1, "workers": 2})
    );
    assert_eq!(
        status["made"],
        serde_json::json!({"function": "made", "total": 0, "running": 0, "workers": 0})
    );
    assert_eq!(status["fgfn"]["total"], 1);
    let priority = by_function("priority_status");
    assert_eq!(
        priority["reverse"],
        serde_json::json!({"function": "reverse", "high": 0, "normal": 0, "low": 1, "workers": 2})
    );
    assert_eq!(priority["upper"]["high"], 1);
    assert_eq!(priority["fgfn"]["normal"], 1);

    let workers = json["workers"].as_array().expect("workers array");
    assert_eq!(workers.len(), STATE_CONNECTIONS + 1, "{json}");
    let w1 = workers
        .iter()
        .find(|w| w["client_id"] == "w1")
        .expect("worker w1 listed");
    assert_eq!(w1["functions"], serde_json::json!(["upper", "reverse"]));
    assert_eq!(w1["address"], "127.0.0.1");
    assert!(w1["fd"].is_i64());

    let jobs = json["show_jobs"].as_array().expect("show_jobs array");
    let mut handles: Vec<&str> = jobs.iter().filter_map(|j| j["handle"].as_str()).collect();
    handles.sort_unstable();
    assert_eq!(
        handles,
        ["H:host:1", "H:host:2", "H:host:3", "H:host:4", "H:host:5"]
    );
    let fg = jobs
        .iter()
        .find(|j| j["handle"] == "H:host:5")
        .expect("the foreground job");
    assert_eq!(
        *fg,
        serde_json::json!({"handle": "H:host:5", "retries": 0, "ignore": false, "queued": false})
    );
    let mut uniques: Vec<&str> = json["show_unique_jobs"]
        .as_array()
        .expect("show_unique_jobs array")
        .iter()
        .filter_map(|u| u.as_str())
        .collect();
    uniques.sort_unstable();
    assert_eq!(uniques, ["", "fg-u", "u-low", "u1", "u2"]);

    // Errors: listed in "errors", reported on stderr, exit status 1; other keys still there.
    state.settle();
    let out = run(
        &ours(),
        Some(server.port()),
        &[
            "--json",
            "--drop-function",
            "nosuch",
            "--create-function",
            "made2",
            "--cancel-job",
            "H:host:nosuch",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stderr),
        "Error: function not found\r\nError: UNKNOWN_JOB\r\n"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(
        json,
        serde_json::json!({
            "create_function": "OK",
            "errors": [
                {"operation": "drop_function", "error": "function not found"},
                {"operation": "cancel_job", "error": "UNKNOWN_JOB"}
            ]
        })
    );
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn err_reply_goes_to_stderr_with_a_non_zero_exit() {
    let server = Server::start(&[]);
    let out = run(&ours(), Some(server.port()), &["--drop-function", "nosuch"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(text(&out.stderr), "Error: function not found\r\n");

    // The other operations still run.
    let out = run(
        &ours(),
        Some(server.port()),
        &["--cancel-job", "H:host:1", "--getpid"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(text(&out.stdout), format!("{}\n", server.pid()));
    assert_eq!(text(&out.stderr), "Error: UNKNOWN_JOB\r\n");
}

#[test]
fn unreachable_server_is_one_line_and_a_non_zero_exit() {
    let port = dead_port();
    let out = run(&ours(), Some(port), &["--status"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(
        text(&out.stderr),
        format!("Error: Error connecting to 127.0.0.1 port {port}: Connection refused\n")
    );

    let mut cmd = Command::new(ours());
    cmd.arg0("gearadmin")
        .args(["-h", "nonexistent.invalid", "--status"]);
    let out = ChildGuard::spawn(cmd).wait_output(RUN_LIMIT);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("Error: Failed to connect on nonexistent.invalid:4730 with "),
        "{stderr:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");

    // An unknown service name: the C tool's message.
    let out = run(&ours(), None, &["-p", "no-such-service-x", "--status"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stderr),
        "Error: Failed to connect on localhost:no-such-service-x with Servname not supported \
         for ai_socktype\n"
    );
}

/// `-S` without a CA file, or with one that cannot be read, fails before connecting (TLS
/// against a real server: tests/e2e/security.rs).
#[test]
fn ssl_without_a_usable_ca_file_fails_without_connecting() {
    // Nothing listens: a connection attempt would report "Error connecting".
    let out = run(&ours(), Some(dead_port()), &["-S", "--status"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(
        text(&out.stderr),
        "Error: TLS (-S): TLS needs a CA file to verify the server's certificate \
         (--ssl-ca-file FILE); there is no built-in trust store\n"
    );
    let out = run(
        &ours(),
        Some(dead_port()),
        &["-S", "--ssl-ca-file", "/nonexistent/ca.pem", "--status"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("Error: TLS (-S): cannot read /nonexistent/ca.pem: "),
        "{stderr:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
}

/// The `--ssl-*` options need `-S`: a usage error in boost's style, before anything else.
#[test]
fn ssl_options_without_dash_s_are_a_usage_error() {
    let out = run(
        &ours(),
        Some(dead_port()),
        &["--ssl-ca-file", "/ca.pem", "--status"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "gearadmin : option '--ssl-ca-file' requires option '--ssl'\n\nOptions:\n"
        ),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------------------
// Interop: the C tool and ours, the C server and ours

/// One invocation compared between the C tool and ours.
struct Interop {
    args: &'static [&'static str],
    /// The output holds a `workers` listing, whose order and fds vary between runs.
    unordered: bool,
    /// An admin line sent before each tool's run, to give both the same starting state.
    before: Option<&'static str>,
}

const fn same(args: &'static [&'static str]) -> Interop {
    Interop {
        args,
        unordered: false,
        before: None,
    }
}

const INTEROP: &[Interop] = &[
    same(&["--status"]),
    same(&["--priority-status"]),
    Interop {
        args: &["--workers"],
        unordered: true,
        before: None,
    },
    same(&["--show-jobs"]),
    same(&["--show-unique-jobs"]),
    same(&["--server-version"]),
    same(&["--server-verbose"]),
    same(&["--getpid"]),
    Interop {
        args: &["--status", "--workers", "--getpid", "--server-version"],
        unordered: true,
        before: None,
    },
    same(&[
        "--show-unique-jobs",
        "--show-jobs",
        "--priority-status",
        "--server-verbose",
    ]),
    same(&["--stat"]),
    same(&["--create-function", "newfn"]),
    Interop {
        args: &["--drop-function", "dropme"],
        unordered: false,
        before: Some("create function dropme"),
    },
    same(&["--drop-function", "nosuch"]),
    same(&["--cancel-job", "H:host:3"]),
    same(&["--cancel-job", "H:host:nosuch"]),
    same(&["--getpid", "--drop-function", "nosuch", "--status"]),
    same(&["--help"]),
    same(&[]),
    same(&["--bogus"]),
    same(&["--create-function"]),
    same(&["--status", "--status"]),
    same(&["--show"]),
    same(&["--status=1"]),
];

/// Runs every [`INTEROP`] case with both tools against the server at `addr`.
fn compare_tools(addr: SocketAddr, state: &mut State) {
    let (c, ours) = (c_tool(), ours());
    let mut failures = Vec::new();
    for case in INTEROP {
        let mut outputs = Vec::new();
        for bin in [&c, &ours] {
            if let Some(line) = case.before {
                assert_eq!(state.admin.admin(line), "OK\r\n", "{line}");
            }
            state.settle();
            outputs.push(run(bin, Some(addr.port()), case.args));
        }
        let (c_out, our_out) = (&outputs[0], &outputs[1]);
        let mut problems = Vec::new();

        let c_stdout = text(&c_out.stdout);
        let our_stdout = without_our_options(&our_out.stdout);
        let stdout_matches = if case.unordered {
            sorted_lines(&normalize(&c_stdout, 0, addr.port()))
                == sorted_lines(&normalize(&our_stdout, 0, addr.port()))
        } else {
            c_stdout == our_stdout
        };
        if !stdout_matches {
            problems.push("stdout differs");
        }
        if c_out.stderr != our_out.stderr {
            problems.push("stderr differs");
        }
        // The C tool exits 0 after an ERR reply; ours exits 1 (a deliberate fix).
        let server_error = c_out.stderr.starts_with(b"Error: ");
        let expected_code = match c_out.status.code() {
            Some(0) if server_error => Some(1),
            code => code,
        };
        if our_out.status.code() != expected_code {
            problems.push("exit status differs");
        }
        if !problems.is_empty() {
            failures.push(format!(
                "gearadmin {}: {}\n--- C tool:\n{}--- ours:\n{}",
                case.args.join(" "),
                problems.join(", "),
                transcript("C", c_out),
                transcript("ours", our_out)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn interop_same_output_as_the_c_tool_against_our_server() {
    let server = Server::start(&[]);
    let mut state = setup_state(server.addr());
    compare_tools(server.addr(), &mut state);
}

#[test]
fn interop_same_output_as_the_c_tool_against_the_c_server() {
    let server = CServer::start();
    let mut state = setup_state(server.addr());
    compare_tools(server.addr(), &mut state);
}

/// Our tool against both servers holding the same state: the same lines, in the server's
/// own order (ours sorts functions by name and jobs by age, the C server uses hash order).
#[test]
fn interop_our_server_and_the_c_server_list_the_same() {
    let tool = ours();
    let our_server = Server::start(&[]);
    let c_server = CServer::start();
    let mut our_state = setup_state(our_server.addr());
    let mut c_state = setup_state(c_server.addr());
    let cases: &[&[&str]] = &[
        &["--status"],
        &["--priority-status"],
        &["--workers"],
        &["--show-jobs"],
        &["--show-unique-jobs"],
        &["--server-verbose"],
        &["--getpid"],
        &["--create-function", "newfn"],
        &["--status"],
        &["--drop-function", "newfn"],
        &["--drop-function", "newfn"],
        &["--cancel-job", "H:host:3"],
        &["--show-jobs"],
        &["--cancel-job", "H:host:nosuch"],
    ];
    let mut failures = Vec::new();
    for args in cases {
        our_state.settle();
        c_state.settle();
        let from_ours = run(&tool, Some(our_server.port()), args);
        let from_c = run(&tool, Some(c_server.port), args);
        let lines = |out: &Output, pid: u32, port: u16| {
            sorted_lines(&normalize(&transcript(&args.join(" "), out), pid, port))
        };
        if lines(&from_ours, our_server.pid(), our_server.port())
            != lines(&from_c, c_server.pid(), c_server.port)
        {
            failures.push(format!(
                "{}--- C server:\n{}",
                transcript(&format!("our server: {}", args.join(" ")), &from_ours),
                transcript("", &from_c)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
