//! Interoperability with the Python `gear` library: `python/gear_interop.py` runs a gear.Worker
//! and gear.Client against our server (submit, result, status, data, warnings, background,
//! unique, exceptions).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::harness::{ChildGuard, Server};

fn python() -> String {
    std::env::var("E2E_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/python/gear_interop.py")
}

fn assert_gear_installed() {
    let mut cmd = Command::new(python());
    cmd.args(["-c", "import gear"]);
    let out = ChildGuard::spawn(cmd).wait_output(Duration::from_secs(30));
    assert!(
        out.status.success(),
        "the Python package `gear` is not importable by {}: install it with \
         `python3 -m pip install gear` (tests/run.sh does)\n{}",
        python(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_gear_client_and_worker_work_with_the_server() {
    assert_gear_installed();
    let server = Server::start(&[]);
    let mut cmd = Command::new(python());
    cmd.arg(script()).arg(server.port().to_string());
    let out = ChildGuard::spawn(cmd).wait_output(Duration::from_secs(60));
    assert!(
        out.status.success(),
        "gear_interop.py failed ({})\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
