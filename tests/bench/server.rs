//! A server process under test (a gearmand, or the `floor` instrument): started on a free
//! loopback port, killed on drop.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use gearman_shared::connection::Connection;
use gearman_shared::protocol::{Request, Response};

/// A running server. Dropping it stops the process (SIGTERM, then SIGKILL).
pub struct Server {
    /// Short name for the report, e.g. `ours` or `C`.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The binary it runs.
    pub binary: PathBuf,
    /// How it was started, to start another one like it.
    pub options: Options,
    /// Which command line it takes.
    pub kind: Kind,
    child: Child,
    stderr_path: PathBuf,
}

/// The server process has exited (the message quotes its stderr).
#[derive(Debug)]
pub struct Exited(String);

impl std::fmt::Display for Exited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Exited {}

/// Where the servers keep their pid files and stderr; removed on drop.
pub struct WorkDir {
    /// The directory itself.
    pub path: PathBuf,
}

impl WorkDir {
    /// Creates `/tmp/gearman-bench-<pid>` (or under `$TMPDIR`).
    pub fn create() -> Result<WorkDir> {
        let path = std::env::temp_dir().join(format!("gearman-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a probe socket")?;
    Ok(listener.local_addr()?.port())
}

/// The persistent queue both servers run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Queue {
    /// `-q builtin`: nothing stored.
    Builtin,
    /// `-q libsqlite3` on a fresh database file.
    Sqlite,
    /// `-q Postgres` on `GEARMAND_TEST_PG` (a libpq conninfo), a table per server.
    Postgres,
    /// `-q MySQL` on `GEARMAND_TEST_MYSQL` (`host= port= user= password= db=`).
    Mysql,
    /// `-q redis` on `GEARMAND_TEST_REDIS` (`host:port`), a key prefix per server.
    Redis,
    /// `-q libmemcached` on `GEARMAND_TEST_MEMCACHED` (`host:port`), a prefix per server.
    Memcached,
}

impl Queue {
    /// The options that select this queue for the server `name` (`ours` or `C`), each
    /// server with its own table or key prefix so that neither sees the other's jobs.
    pub fn args(self, name: &str, dir: &WorkDir, port: u16) -> Result<Vec<String>> {
        let env = |var: &str| {
            std::env::var(var).with_context(|| {
                format!("{var} is not set: start the stores with `eval \"$(tests/db_servers.sh start)\"`")
            })
        };
        // Short names: the C redis module crashes on prefixes longer than 6 bytes.
        let tag = if name == "ours" { "bo" } else { "bc" };
        let table = format!("bench_{tag}_{port}");
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Ok(match self {
            Queue::Builtin => Vec::new(),
            Queue::Sqlite => {
                let db = dir.path.join(format!("{name}-{port}.sqlite"));
                owned(&["-q", "libsqlite3", "--libsqlite3-db", &db.to_string_lossy()])
            }
            Queue::Postgres => owned(&[
                "-q",
                "Postgres",
                "--libpq-conninfo",
                &env("GEARMAND_TEST_PG")?,
                "--libpq-table",
                &table,
            ]),
            Queue::Mysql => {
                let settings = env("GEARMAND_TEST_MYSQL")?;
                let field = |key: &str| {
                    settings
                        .split_whitespace()
                        .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
                        .unwrap_or_default()
                };
                owned(&[
                    "-q",
                    "MySQL",
                    "--mysql-host",
                    &field("host"),
                    "--mysql-port",
                    &field("port"),
                    "--mysql-user",
                    &field("user"),
                    "--mysql-password",
                    &field("password"),
                    "--mysql-db",
                    &field("db"),
                    "--mysql-table",
                    &table,
                ])
            }
            Queue::Redis => {
                let server = env("GEARMAND_TEST_REDIS")?;
                let (host, redis_port) = server.rsplit_once(':').unwrap_or((&server, "6379"));
                owned(&[
                    "-q",
                    "redis",
                    "--redis-server",
                    host,
                    "--redis-port",
                    redis_port,
                    "--redis-prefix",
                    &format!("{tag}{}_", port % 1000),
                ])
            }
            Queue::Memcached => owned(&[
                "-q",
                "libmemcached",
                "--libmemcached-servers",
                &env("GEARMAND_TEST_MEMCACHED")?,
                "--libmemcached-prefix",
                &format!("{tag}{port}_"),
            ]),
        })
    }
}

/// Which command line a server binary takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A gearmand (ours or the C one): every option of [`Options`].
    Gearmand,
    /// `shared/tools/floor`: only `-p PORT`; one thread, 127.0.0.1 only, no queue store,
    /// no admin protocol.
    Floor,
}

/// What both servers are started with.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// I/O threads (`-t`).
    pub threads: u32,
    /// The persistent queue.
    pub queue: Queue,
    /// File descriptors to allow (`-f`); `None` leaves each server's default (the hard
    /// limit, for both).
    pub fds: Option<u64>,
    /// Buckets of the C server's job hash tables (`--hashtable-buckets`; ours accepts and
    /// ignores it); `None` leaves the default, 991.
    pub hashtable_buckets: Option<u32>,
    /// Longest wait for the first ECHO_RES.
    pub startup: Duration,
}

impl Server {
    /// Starts `binary -L 127.0.0.1 -p PORT -t THREADS -l none -P DIR/NAME.pid` (plus `-f`
    /// and `--hashtable-buckets` when set) and waits until it answers an ECHO_REQ, for at
    /// most `options.startup` (a few tries on fresh ports if it exits at once, e.g. because
    /// the port was taken meanwhile).
    ///
    /// A [`Kind::Floor`] server is started as `binary -p PORT` alone.
    pub fn start(
        name: &'static str,
        kind: Kind,
        binary: &Path,
        options: Options,
        dir: &WorkDir,
    ) -> Result<Server> {
        if !binary.is_file() {
            bail!(
                "{name} server binary {} does not exist (build it with `cargo build --release -p gearmand`, or pass a path)",
                binary.display()
            );
        }
        // A server that exits at once may have lost a race for its port: try fresh ports.
        let mut attempt = 0;
        loop {
            match Server::try_start(name, kind, binary, options, dir, attempt) {
                Ok(server) => return Ok(server),
                Err(e) if attempt < 2 && e.chain().any(|c| c.is::<Exited>()) => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// A new process of the same binary with `options`, on a fresh port: a server that
    /// has never held anything, for measuring memory from its start.
    pub fn start_fresh(&self, options: Options, dir: &WorkDir) -> Result<Server> {
        Server::start(self.name, self.kind, &self.binary, options, dir)
    }

    fn try_start(
        name: &'static str,
        kind: Kind,
        binary: &Path,
        options: Options,
        dir: &WorkDir,
        attempt: u32,
    ) -> Result<Server> {
        let port = free_port()?;
        let pid_file = dir.path.join(format!("{name}-{port}.pid"));
        let stderr_path = dir.path.join(format!("{name}-{port}.stderr"));
        let stderr = File::create(&stderr_path)
            .with_context(|| format!("creating {}", stderr_path.display()))?;
        let mut command = Command::new(binary);
        match kind {
            Kind::Floor => {
                command.args(["-p", &port.to_string()]);
            }
            Kind::Gearmand => {
                command
                    .args(["-L", "127.0.0.1", "-p", &port.to_string()])
                    .args(["-t", &options.threads.to_string(), "-l", "none", "-P"])
                    .arg(&pid_file);
                if let Some(fds) = options.fds {
                    command.args(["-f", &fds.to_string()]);
                }
                if let Some(buckets) = options.hashtable_buckets {
                    command.args(["--hashtable-buckets", &buckets.to_string()]);
                }
                command.args(options.queue.args(name, dir, port)?);
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {name} server {}", binary.display()))?;
        let mut server = Server {
            name,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            binary: binary.to_path_buf(),
            options,
            kind,
            child,
            stderr_path,
        };
        server.wait_ready(options.startup).with_context(|| {
            format!(
                "{name} server {} failed to start on port {port} (attempt {})",
                binary.display(),
                attempt + 1
            )
        })?;
        Ok(server)
    }

    /// Polls until an ECHO_REQ round trip works.
    fn wait_ready(&mut self, startup: Duration) -> Result<()> {
        let limit = Instant::now() + startup;
        let mut last = String::from("never tried");
        while Instant::now() < limit {
            self.check_alive()?;
            match echo(self.addr) {
                Ok(()) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("no ECHO_RES within {startup:?} (last error: {last})")
    }

    /// The process id, for `/proc/<pid>/stat`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has exited, quoting its stderr.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
            let stderr = stderr.trim();
            let tail: String = stderr
                .chars()
                .rev()
                .take(2000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(Exited(format!(
                "{} server {} exited with {status}; stderr: {}",
                self.name,
                self.binary.display(),
                if tail.is_empty() { "(empty)" } else { &tail }
            ))
            .into());
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM first so the C server removes its pid file; no unsafe code needed.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let limit = Instant::now() + Duration::from_secs(3);
        while Instant::now() < limit {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One ECHO_REQ round trip on a fresh connection, bounded by one second.
fn echo(addr: SocketAddr) -> Result<()> {
    let timeout = Duration::from_secs(1);
    let mut conn = Connection::connect(addr, Some(timeout))?;
    conn.set_read_timeout(Some(timeout))?;
    conn.stream().set_write_timeout(Some(timeout))?;
    conn.send(Request::Echo {
        data: "bench-ping".into(),
    })?;
    match conn.read_response()? {
        Response::Echo { data } if data.as_ref() == b"bench-ping" => Ok(()),
        other => bail!("unexpected reply to ECHO_REQ: {other:?}"),
    }
}
