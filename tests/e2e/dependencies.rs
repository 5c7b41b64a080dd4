//! What the shipped server is built from: the unmaintained HTTP stack (tide, http-types,
//! async-h1, with their RustSec advisories and a second async-io) must not come back.

use std::process::Command;

#[test]
fn gearmand_does_not_depend_on_the_tide_stack() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["tree", "-p", "gearmand", "-e", "normal", "--prefix", "none"])
        .args(["--locked", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    crate::harness::as_from_a_shell(&mut cmd);
    let out = cmd.output().expect("run cargo tree");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && tree.contains("gearmand v"),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let banned: Vec<&str> = tree
        .lines()
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or_default();
            matches!(name, "tide" | "http-types" | "async-h1")
        })
        .collect();
    assert!(banned.is_empty(), "gearmand depends on {banned:?}");
}
