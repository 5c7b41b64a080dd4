//! The README's run command is true: taken from the README as written, it builds and
//! starts the server from this checkout (on a free port instead of 4730), which then
//! answers on the port and stops cleanly at SIGTERM. It is a release build, so it also
//! shows that release builds ignore the test-only fault hooks (`GEARMAND_TEST_FAULT`).

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gearman_shared::connection::Connection;
use gearman_shared::protocol::{Request, Response};

use crate::server_process::ServerProcess;

/// A release build from scratch on a 2-core machine takes minutes.
const BUILD_LIMIT: Duration = Duration::from_secs(1500);

/// The first `cargo run …` line of the README, as words.
fn run_command(readme: &str) -> Vec<String> {
    let line = readme
        .lines()
        .take(20)
        .map(str::trim)
        .find(|l| l.starts_with("cargo run"))
        .unwrap_or_else(|| panic!("no `cargo run` line among the README's first 20 lines"));
    line.split_whitespace().map(str::to_string).collect()
}

/// The words with the value after `-p` replaced by `port`.
fn on_port(mut words: Vec<String>, port: u16) -> Vec<String> {
    let at = words
        .iter()
        .position(|w| w == "-p" || w == "--port")
        .unwrap_or_else(|| panic!("the README's run command names no port: {words:?}"));
    words[at + 1] = port.to_string();
    words
}

#[test]
fn readme_run_command_parsing() {
    let words = run_command("# t\n\n    cargo run --bin gearmand -- -p 4730 -l stderr\n");
    assert_eq!(
        on_port(words, 5000).join(" "),
        "cargo run --bin gearmand -- -p 5000 -l stderr"
    );
}

/// An ECHO round trip with `data`.
fn echo(addr: SocketAddr, data: &'static [u8]) -> Result<(), String> {
    let mut conn =
        Connection::connect(addr, Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    conn.send(Request::Echo { data: data.into() })
        .map_err(|e| e.to_string())?;
    match conn.read_response() {
        Ok(Response::Echo { data: got }) if got == data => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[test]
fn ours_readme_run_command_builds_and_serves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).expect("read README.md");
    let port = crate::http::free_port();
    let words = on_port(run_command(&readme), port);
    assert!(
        words.iter().any(|w| w == "gearmand"),
        "the README's run command does not run gearmand: {words:?}"
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let log = std::env::temp_dir().join(format!("gearman-readme-{}.log", std::process::id()));
    let mut cmd = Command::new(cargo);
    cmd.args(&words[1..])
        .current_dir(root)
        .env("GEARMAND_TEST_FAULT", "io");
    crate::harness::as_from_a_shell(&mut cmd);
    let mut server = ServerProcess::spawn(cmd, log.clone());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + BUILD_LIMIT;
    while echo(addr, b"ready?").is_err() {
        if let Some(status) = server.exit_status() {
            panic!(
                "`{}` exited with {status}:\n{}",
                words.join(" "),
                server.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "`{}` did not serve within {BUILD_LIMIT:?}:\n{}",
            words.join(" "),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The release build has no fault hooks: the trigger is an ordinary ECHO.
    echo(addr, b"gearmand-test-fault").expect("the release build echoes the trigger");
    server.assert_alive();
    // `cargo run` replaced itself with the server: SIGTERM reaches gearmand.
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}\n{}", server.log());
    let _ = fs::remove_file(log);
}
