#!/usr/bin/env bash
# Builds the Debian package gearman-rs from a clean clone: installs cargo-deb when missing,
# then `cargo deb -p gearmand`, which builds the release binaries of every workspace member
# the package ships (gearmand, gearman, gearadmin, gearman-tui) and writes
# target/debian/gearman-rs_<version>-1_<arch>.deb. Extra arguments go to cargo deb
# (e.g. --no-build after a `cargo build --release --workspace --bins`).
#
# Needs Rust, and dpkg-dev for dpkg-shlibdeps (the Depends on libc); run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

if ! cargo deb --version >/dev/null 2>&1; then
    echo "build-deb.sh: installing cargo-deb" >&2
    cargo install cargo-deb --locked
fi

# --locked: the package is built from the dependency versions in Cargo.lock, as the tests are.
cargo deb -p gearmand --locked "$@"
