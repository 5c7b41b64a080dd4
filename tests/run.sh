#!/usr/bin/env bash
# The one command that runs every test: installs what the suite needs on a fresh Debian machine
# with Rust (when run as root), builds the workspace binaries the end-to-end tests start, then
# runs `cargo test --workspace` (unit tests and tests/e2e).
#
# Needed besides Rust:
#   - gearman-tools (/usr/bin/gearman): tests/e2e/interop_c.rs runs the C client and worker;
#   - gearman-job-server (/usr/sbin/gearmand): the C server, to compare behaviour with
#     GEARMAND_BIN=/usr/sbin/gearmand (not used by the default run);
#   - python3 with pip and the `gear` package: tests/e2e/interop_gear.rs;
#   - the Python package `prometheus-client`: tests/e2e/stats.rs parses /metrics with it;
#   - cargo-deb, dpkg-dev (dpkg-shlibdeps) and systemd (systemd-analyze): tests/e2e/package.rs
#     builds the Debian package and verifies its unit.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

is_root() { [ "$(id -u)" = 0 ]; }

apt_missing=()
[ -x /usr/bin/gearman ] || apt_missing+=(gearman-tools)
[ -x /usr/sbin/gearmand ] || apt_missing+=(gearman-job-server)
command -v python3 >/dev/null 2>&1 || apt_missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || apt_missing+=(python3-pip)
# Persistent queue stores (tests/e2e/persistence_db.rs; tests/db_servers.sh starts them).
command -v pg_ctlcluster >/dev/null 2>&1 || apt_missing+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || apt_missing+=(mariadb-server)
command -v memcached >/dev/null 2>&1 || apt_missing+=(memcached)
command -v redis-server >/dev/null 2>&1 || apt_missing+=(redis-server)
# Tokyo Cabinet is loaded at run time (dlopen of libtokyocabinet.so.9), so only the runtime
# library is needed, not its headers.
dpkg -s libtokyocabinet9 >/dev/null 2>&1 || apt_missing+=(libtokyocabinet9)
# The Debian package (tests/e2e/package.rs): its Depends, and a check of its systemd unit.
command -v dpkg-shlibdeps >/dev/null 2>&1 || apt_missing+=(dpkg-dev)
[ -x /usr/bin/systemd-analyze ] || apt_missing+=(systemd)

if [ "${#apt_missing[@]}" -gt 0 ]; then
    if ! is_root; then
        echo "tests/run.sh: missing ${apt_missing[*]}; run as root or install them" >&2
        exit 1
    fi
    echo "tests/run.sh: installing ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${apt_missing[@]}"
    # The package may start its own gearmand on port 4730. The tests use random ports, but a
    # stray system daemon is not wanted on a test machine.
    if [[ " ${apt_missing[*]} " == *" gearman-job-server "* ]]; then
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet gearman-job-server 2>/dev/null; then
            systemctl stop gearman-job-server || true
        elif [ -x /etc/init.d/gearman-job-server ]; then
            /etc/init.d/gearman-job-server stop >/dev/null 2>&1 || true
        fi
    fi
fi

if ! python3 -c 'import gear' >/dev/null 2>&1; then
    echo "tests/run.sh: installing the Python package gear"
    # Debian's own python3 refuses pip installs into the system (PEP 668) unless told otherwise.
    python3 -m pip install --quiet gear ||
        python3 -m pip install --quiet --break-system-packages gear
fi
python3 -c 'import gear' || {
    echo "tests/run.sh: the Python package gear is still not importable" >&2
    exit 1
}
if ! python3 -c 'import prometheus_client' >/dev/null 2>&1; then
    echo "tests/run.sh: installing the Python package prometheus-client"
    python3 -m pip install --quiet prometheus-client ||
        python3 -m pip install --quiet --break-system-packages prometheus-client
fi
python3 -c 'import prometheus_client.parser' || {
    echo "tests/run.sh: the Python package prometheus-client is still not importable" >&2
    exit 1
}

if ! cargo deb --version >/dev/null 2>&1; then
    echo "tests/run.sh: installing cargo-deb"
    cargo install cargo-deb --locked
fi

cargo build --workspace --bins
# tests/e2e/package.rs builds the Debian package with gearmand/debian/build-deb.sh, a release
# build of the workspace: done here first, so the test itself only packs and a failing build
# shows plainly.
gearmand/debian/build-deb.sh
if is_root; then
    # The database servers of tests/e2e/persistence_db.rs, on 127.0.0.1; those this run
    # started are stopped at exit.
    db_env=$(tests/db_servers.sh start)
    eval "$db_env"
    trap 'tests/db_servers.sh stop $GEARMAND_TEST_STARTED' EXIT
fi
cargo test --workspace
