//! The Debian package `gearman-rs` (gearmand/debian/, README "Install as a Debian package"):
//! built with the documented command `gearmand/debian/build-deb.sh`, its control fields,
//! maintainer scripts and file list checked with `dpkg-deb`, then the packaged binaries run
//! from a `dpkg-deb -x` tree: the server started with the unit's `ExecStart` and the default
//! file's `PARAMS`, a job round trip through the packaged `gearman` as worker and client,
//! `gearadmin --status` through the packaged `gearadmin`, and `systemd-analyze verify` of the
//! packaged unit.
//!
//! The package is never installed here: other tests need Debian's gearman-job-server and
//! gearman-tools, which it replaces.
//!
//! The first build is a release build of the whole workspace (minutes); tests/run.sh runs the
//! same command before the tests, so here it only checks that nothing changed and packs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{ChildGuard, Server};

/// Upper bound for the package build: a release build from scratch on a slow machine.
const BUILD_LIMIT: Duration = Duration::from_secs(40 * 60);

/// Upper bound for one run of a packaged tool.
const RUN_LIMIT: Duration = Duration::from_secs(10);

/// Where the package puts things, as `dpkg-deb -c` lists them.
const SERVER: &str = "./usr/sbin/gearmand";
const TOOLS: [&str; 3] = [
    "./usr/bin/gearman",
    "./usr/bin/gearadmin",
    "./usr/bin/gearman-tui",
];
const MAN_PAGES: [&str; 4] = [
    "./usr/share/man/man8/gearmand.8.gz",
    "./usr/share/man/man1/gearman.1.gz",
    "./usr/share/man/man1/gearadmin.1.gz",
    "./usr/share/man/man1/gearman-tui.1.gz",
];
const UNIT: &str = "./usr/lib/systemd/system/gearmand.service";
const DEFAULT_FILE: &str = "./etc/default/gearmand";

/// The repository's root (the e2e package's manifest directory).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` to the end, failing the test with its output when it cannot start or fails.
fn run_ok(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed with {}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds the package with the README's command and returns the `.deb`, whose path
/// cargo-deb prints as the last line of its output.
fn build_package() -> PathBuf {
    let script = repo_root().join("gearmand/debian/build-deb.sh");
    let mut cmd = Command::new(&script);
    cmd.current_dir(repo_root());
    crate::harness::as_from_a_shell(&mut cmd);
    // Bounded, so a wedged build fails the test instead of hanging the suite.
    let out = ChildGuard::spawn(cmd).wait_output(BUILD_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed with {}\n--- stdout:\n{stdout}\n--- stderr:\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{} printed no package path", script.display()));
    let name = deb.file_name().map(|n| n.to_string_lossy().into_owned());
    assert!(
        deb.is_file()
            && name
                .as_deref()
                .is_some_and(|n| n.starts_with("gearman-rs_") && n.ends_with(".deb")),
        "{} printed {}, not a gearman-rs_*.deb",
        script.display(),
        deb.display()
    );
    deb
}

/// A control field of the package, empty when absent.
fn field(deb: &Path, name: &str) -> String {
    let out = run_ok(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The package names of a relationship field (`a (>= 1), b | c` → a, b, c).
fn names(relation: &str) -> Vec<String> {
    relation
        .split([',', '|'])
        .filter_map(|alt| alt.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// A temporary directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("gearman-e2e-{what}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The words of the `PARAMS="..."` line that is not commented out.
fn default_params(default_file: &str) -> Vec<String> {
    let active: Vec<&str> = default_file
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("PARAMS="))
        .collect();
    assert_eq!(
        active.len(),
        1,
        "/etc/default/gearmand should set PARAMS exactly once, has {active:?}"
    );
    let value = active[0]["PARAMS=".len()..].trim_matches('"');
    value.split_whitespace().map(str::to_string).collect()
}

/// The unit's `ExecStart=` words after the binary, `$PARAMS` replaced by `params` and the
/// runtime directory by `run_dir` (systemd would have created /run/gearman).
fn exec_start_args(unit: &str, params: &[String], run_dir: &Path) -> Vec<String> {
    let exec = unit
        .lines()
        .find_map(|l| l.trim().strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("the unit has no ExecStart=:\n{unit}"));
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/sbin/gearmand"), "ExecStart={exec}");
    let mut args = Vec::new();
    for word in words {
        if word == "$PARAMS" {
            args.extend(params.iter().cloned());
        } else {
            let run = run_dir.to_string_lossy();
            args.push(word.replace("/run/gearman", &run));
        }
    }
    args
}

/// Runs a packaged tool to the end, bounded by [`RUN_LIMIT`].
fn tool(bin: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    ChildGuard::spawn(cmd).wait_output(RUN_LIMIT)
}

#[test]
fn ours_debian_package_builds_installs_the_right_files_and_runs() {
    let deb = build_package();

    // --- control fields ---
    assert_eq!(field(&deb, "Package"), "gearman-rs");
    for relation in ["Conflicts", "Replaces", "Provides"] {
        let listed = names(&field(&deb, relation));
        for c_package in ["gearman-job-server", "gearman-tools"] {
            assert!(
                listed.iter().any(|n| n == c_package),
                "{relation} lacks {c_package}: {listed:?}"
            );
        }
    }
    let depends = names(&field(&deb, "Depends"));
    for needed in ["libc6", "adduser"] {
        assert!(
            depends.iter().any(|n| n == needed),
            "Depends lacks {needed}: {depends:?}"
        );
    }
    // Nothing of the C packages may be needed by their replacement.
    assert!(
        !depends
            .iter()
            .any(|n| n.starts_with("gearman") || n.starts_with("libgearman")),
        "Depends on a C gearman package: {depends:?}"
    );

    // --- maintainer scripts ---
    let control = TempDir::new("deb-control");
    run_ok(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control.0));
    let read = |name: &str| {
        fs::read_to_string(control.0.join(name))
            .unwrap_or_else(|e| panic!("control file {name} of {}: {e}", deb.display()))
    };
    assert!(
        read("conffiles")
            .lines()
            .any(|l| l == "/etc/default/gearmand"),
        "/etc/default/gearmand is not a conffile:\n{}",
        read("conffiles")
    );
    let postinst = read("postinst");
    for part in [
        "adduser --system",
        "/var/lib/gearman",
        "deb-systemd-helper enable gearmand.service",
    ] {
        assert!(
            postinst.contains(part),
            "postinst lacks {part:?}:\n{postinst}"
        );
    }
    let postrm = read("postrm");
    assert!(
        postrm.contains("rm -rf /var/lib/gearman") && postrm.contains("deb-systemd-helper purge"),
        "postrm does not clean up on purge:\n{postrm}"
    );
    for (name, script) in [("postinst", &postinst), ("postrm", &postrm)] {
        assert!(
            !script.contains("#DEBHELPER#"),
            "{name} still has the #DEBHELPER# token: cargo-deb did not fill it in"
        );
        run_ok(Command::new("sh").arg("-n").arg(control.0.join(name)));
    }

    // --- file list ---
    let listing = run_ok(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    // `-rwxr-xr-x root/root 123 2024-01-01 00:00 ./usr/sbin/gearmand`
    let entries: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|l| {
            let mode = l.split_whitespace().next()?;
            let path = l.split_whitespace().nth(5)?;
            Some((mode, path))
        })
        .collect();
    let mode_of = |path: &str| {
        entries
            .iter()
            .find(|(_, p)| *p == path)
            .map(|(m, _)| *m)
            .unwrap_or_else(|| panic!("{} lacks {path}:\n{listing}", deb.display()))
    };
    for bin in std::iter::once(SERVER).chain(TOOLS) {
        assert_eq!(mode_of(bin), "-rwxr-xr-x", "{bin}");
    }
    for file in MAN_PAGES.into_iter().chain([UNIT, DEFAULT_FILE]) {
        assert_eq!(mode_of(file), "-rw-r--r--", "{file}");
    }

    // --- the packaged binaries ---
    let root = TempDir::new("deb-root");
    run_ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root.0));
    let at = |p: &str| root.0.join(p.trim_start_matches("./"));
    let unit = fs::read_to_string(at(UNIT)).expect("read the extracted unit");
    let default_file =
        fs::read_to_string(at(DEFAULT_FILE)).expect("read the extracted default file");

    let version = tool(&at(SERVER), &["--version"]);
    assert!(
        version.status.success() && String::from_utf8_lossy(&version.stdout).contains("gearmand"),
        "packaged gearmand --version: {version:?}"
    );

    // The server as the unit starts it, with the default PARAMS (it listens on 127.0.0.1;
    // the harness adds the free port).
    let run_dir = TempDir::new("deb-run");
    let args = exec_start_args(&unit, &default_params(&default_file), &run_dir.0);
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = Server::start_bin(&at(SERVER), &arg_refs, &[]);
    let port = server.port().to_string();
    assert!(
        run_dir.0.join("gearmand.pid").is_file(),
        "the server did not write its pid file into the runtime directory"
    );

    let gearman = at("./usr/bin/gearman");
    let gearadmin = at("./usr/bin/gearadmin");
    let mut worker_cmd = Command::new(&gearman);
    worker_cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-w",
        "-f",
        "deb_echo",
        "-c",
        "1",
        "--",
        "cat",
    ]);
    let worker = ChildGuard::spawn(worker_cmd);

    // gearadmin --status shows the worker once it has registered; the client is sent only
    // then, so a lost registration shows here and not as a client time-out.
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        let status = tool(&gearadmin, &["-h", "127.0.0.1", "-p", &port, "--status"]);
        let text = String::from_utf8_lossy(&status.stdout).into_owned();
        assert!(
            status.status.success(),
            "packaged gearadmin --status: {status:?}"
        );
        assert!(
            text.ends_with(".\n"),
            "gearadmin --status output not ended by '.': {text:?}"
        );
        if text.lines().any(|l| l == "deb_echo\t0\t0\t1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the packaged worker never showed in gearadmin --status: {text:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }

    let client = tool(
        &gearman,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-f",
            "deb_echo",
            "packaged round trip",
        ],
    );
    assert!(
        client.status.success(),
        "packaged gearman client: {client:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&client.stdout),
        "packaged round trip"
    );
    let worker = worker.wait_output(RUN_LIMIT);
    assert!(
        worker.status.success(),
        "packaged gearman worker: {worker:?}"
    );

    // The unit stops the server with SIGTERM.
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(
        status.success(),
        "gearmand exited with {status} on SIGTERM:\n{}",
        server.log()
    );

    verify_unit(&unit, &at(SERVER), &root.0);
}

/// `systemd-analyze verify` of the packaged unit, ExecStart pointed at the extracted binary
/// (verify insists the program exists). Any message naming the unit fails the test; other
/// messages come from the machine (a container without a running systemd).
fn verify_unit(unit: &str, server: &Path, root: &Path) {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    assert!(
        analyze.is_file(),
        "{} is missing: install the Debian package systemd (tests/run.sh does)",
        analyze.display()
    );
    let dir = root.join("verify");
    fs::create_dir_all(&dir).expect("create the verify dir");
    let path = dir.join("gearmand.service");
    let server = server.to_string_lossy();
    fs::write(&path, unit.replace("/usr/sbin/gearmand", &server)).expect("write the unit copy");
    let out = Command::new(analyze)
        .arg("verify")
        .arg("--man=no")
        .arg(&path)
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("gearmand.service") || l.contains(&*server))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify of the packaged unit: {} with complaints:\n{stderr}",
        out.status
    );
}
