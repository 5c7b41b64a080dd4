//! Starting the server: bind, write the pid file, start the threads of the chosen
//! model, then wait for signals on the main thread.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use async_std::channel::{self, Receiver, Sender};
use futures::{FutureExt, SinkExt};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::{Handle, Signals};

use crate::acl::Acl;
use crate::config::{Config, ThreadModel};
use crate::connection;
use crate::event::{Event, EventQueue, Events};
use crate::http;
use crate::io_thread;
use crate::listener;
use crate::logging;
use crate::notify;
use crate::processor::{self, ServerInfo};
use crate::queue::sqlite::SqliteStore;
use crate::queue::writer::{StoreMsg, StoreThread};
use crate::queue::QueueConfig;
use crate::queue::QueueStore;
use crate::reactor::{self, Reactor};
use crate::state::StoredJob;
use crate::stats::Traffic;
use crate::system;

/// Events in flight from the I/O threads before their readers wait for the processor.
const EVENT_QUEUE: usize = 4096;
/// Accepted sockets in flight to one I/O thread.
const ACCEPT_QUEUE: usize = 256;
/// How long the end of the processing loop waits at most for the last replies to be
/// written.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// Runs the server until SIGTERM/SIGINT, an admin `shutdown`, or until a graceful
/// shutdown completes. With `--check-args` it returns once the configuration is valid.
pub fn run(config: Config) -> anyhow::Result<()> {
    let user = config.user.as_deref().map(system::find_user).transpose()?;
    let acl = config.acl.as_deref().map(Acl::load).transpose()?;
    // Certificates are checked by --check-args too.
    let tls = config
        .tls
        .as_ref()
        .map(crate::tls::acceptor)
        .transpose()
        .context("TLS")?;
    if config.check_only {
        return Ok(());
    }
    system::set_limits(&config)?;
    // Before the port opens, so a signal that comes right after is never fatal.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGUSR1, SIGHUP])
        .context("cannot install signal handlers")?;
    let listeners = listener::bind(config.listen.as_deref(), config.port, config.backlog)?;
    let http_listeners = match &config.http {
        Some(http) => listener::bind(config.listen.as_deref(), http.port, config.backlog)?,
        None => Vec::new(),
    };
    if config.daemon {
        // Before any thread exists: fork() keeps only the calling thread.
        system::daemonize()?;
    }
    let logger = logging::init(&config)?;
    // The ports were bound before the logger existed (so bind errors reach the terminal).
    for (kind, listener) in listeners
        .iter()
        .map(|l| ("Gear", l))
        .chain(http_listeners.iter().map(|l| ("HTTP", l)))
    {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, protocol = kind, "Listening");
        }
    }
    // After the fork: a database connection must not cross it.
    let (store, replay) = open_queue(&config)?;
    let pid_file = PidFile::create(&config)?;
    if let Some(user) = &user {
        system::switch_user(user)?;
    }
    let mut config = config;
    config.state.session = session_id();
    let (mut events_tx, events_rx) = futures::channel::mpsc::channel(EVENT_QUEUE);
    let store = match store {
        Some(store) => Some(
            StoreThread::start(store, config.queue.on_shutdown(), events_tx.clone())
                .context("cannot start the store thread")?,
        ),
        None => None,
    };
    let (stop_tx, stop_rx) = channel::bounded(1);
    let stop_rx_for_http = stop_rx.clone();
    let heartbeat = notify::start_watchdog()?;
    let (replayed_tx, replayed_rx) = std::sync::mpsc::channel();
    let parts = Parts {
        listeners,
        events_tx: events_tx.clone(),
        events_rx,
        stop_tx,
        stop_rx,
        config: config.clone(),
        done: signals.handle(),
        store: store.as_ref().map(StoreThread::sender),
        replay,
        traffic: Arc::default(),
        tls: tls.clone(),
        acl,
        writers: connection::Writers::default(),
        replayed: replayed_tx,
        heartbeat,
    };
    start_threads(parts)?;
    if let Some(http) = config.http {
        let context = http::HttpContext::new(events_tx.clone(), http.max_body);
        for listener in http_listeners {
            let (context, tls, stop) = (context.clone(), tls.clone(), stop_rx_for_http.clone());
            // Its own event loop, as every server thread: the HTTP connections run there.
            spawn_on_loop("gearmand-http".into(), move || {
                http::run(listener, context, tls, stop)
            })?;
        }
    }
    // The ports listen already; the processor says when the replayed jobs are in. An
    // error means it ended first (an admin `shutdown` during start-up): not ready at all.
    if replayed_rx.recv().is_ok() {
        tracing::info!(threads = ?config.threads, "gearmand ready");
        notify::ready();
    }
    for signal in signals.forever() {
        match signal {
            SIGUSR1 => {
                tracing::info!("SIGUSR1: graceful shutdown");
                let _ = futures::executor::block_on(events_tx.send(Event::GracefulShutdown));
            }
            SIGHUP => {
                logger.reopen();
                if let Some(path) = &config.acl {
                    match Acl::load(path) {
                        Ok(acl) => {
                            let _ =
                                futures::executor::block_on(events_tx.send(Event::AclReload(acl)));
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "ACL not reloaded, the old one stays")
                        }
                    }
                }
            }
            _ => {
                tracing::info!(signal, "shutting down");
                break;
            }
        }
    }
    notify::stopping();
    if let Some(store) = store {
        store.stop();
    }
    drop(pid_file);
    Ok(())
}

/// The store, if any, and the jobs it held.
type OpenedQueue = (Option<Box<dyn QueueStore>>, Vec<StoredJob>);

/// Opens the persistent queue and reads it back; a store that cannot be read stops the
/// start-up rather than silently starting empty.
fn open_queue(config: &Config) -> anyhow::Result<OpenedQueue> {
    let mut store: Box<dyn QueueStore> = match &config.queue {
        QueueConfig::Builtin => return Ok((None, Vec::new())),
        QueueConfig::Sqlite { db, table, .. } => {
            Box::new(SqliteStore::open(db, table).with_context(|| {
                format!(
                    "Error while initializing the queue : libsqlite3 ({})",
                    db.display()
                )
            })?)
        }
        other => crate::queue::stores::open(other)?,
    };
    let jobs = store
        .replay()
        .context("failed to reload queue: the persistent queue cannot be read")?;
    Ok((Some(store), jobs))
}

/// A per-run number for generated storage keys.
fn session_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What the threads are built from.
struct Parts {
    listeners: Vec<std::net::TcpListener>,
    events_tx: Events,
    events_rx: EventQueue,
    stop_tx: Sender<()>,
    stop_rx: Receiver<()>,
    config: Config,
    /// Closing it ends the main thread's signal loop, and so the process.
    done: Handle,
    /// The store thread's inbox.
    store: Option<std::sync::mpsc::Sender<StoreMsg>>,
    /// Jobs read back from the store, for the processor.
    replay: Vec<StoredJob>,
    /// Byte counters shared by the I/O threads and the processor.
    traffic: Arc<Traffic>,
    /// `--ssl`: the handshake every connection starts with.
    tls: Option<futures_rustls::TlsAcceptor>,
    /// `--acl`, for the processor.
    acl: Option<Acl>,
    /// The connection writers still running, waited for at the exit.
    writers: connection::Writers,
    /// Told by the processor once the replayed jobs are in its tables.
    replayed: std::sync::mpsc::Sender<()>,
    /// The systemd watchdog's pulse, if a watchdog is asked for.
    heartbeat: Option<notify::Heartbeat>,
}

impl Parts {
    /// The processing loop; when it ends the whole server ends.
    fn processor(mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let info = ServerInfo {
            pid: std::process::id(),
            verbose: self.config.verbose_name.clone(),
            shutdown_access: self.config.shutdown_access.clone(),
            started_ms: crate::clock::now_ms(),
            traffic: Arc::clone(&self.traffic),
        };
        let (done, writers) = (self.done.clone(), self.writers.clone());
        processor::run(processor::Setup {
            events: self.events_rx,
            config: self.config.state.clone(),
            info,
            stop_accepting: self.stop_tx.clone(),
            store: self.store.clone(),
            replay: std::mem::take(&mut self.replay),
            acl: self.acl.take(),
            replayed: self.replayed.clone(),
            heartbeat: self.heartbeat.take(),
        })
        .then(|_exit| async move {
            writers.finished(FLUSH_LIMIT).await;
            done.close();
        })
    }

    /// What an I/O thread's loop is built from, inside its thread: its tasks are not
    /// `Send`, they live and die on that thread.
    fn io_context(&self) -> connection::Context {
        connection::Context {
            events: self.events_tx.clone(),
            limits: self.config.limits,
            max_outbox: self.config.max_outbox,
            traffic: Arc::clone(&self.traffic),
            partial_timeout: self.config.partial_timeout,
            tls: self.tls.clone(),
            writers: self.writers.clone(),
        }
    }
}

fn spawn(name: String, body: impl FnOnce() + Send + 'static) -> anyhow::Result<()> {
    thread::Builder::new()
        .name(name.clone())
        .spawn(body)
        .with_context(|| format!("cannot start thread {name}"))?;
    Ok(())
}

/// `-t 0`: one thread for everything; `-t 1`: listener + an I/O thread that also
/// processes; `-t N`: listener + N I/O threads + a processing thread. Each thread runs
/// on an event loop of its own ([`Reactor`]).
fn start_threads(parts: Parts) -> anyhow::Result<()> {
    let io_count = match parts.config.threads {
        ThreadModel::Single | ThreadModel::OneIo => 1,
        ThreadModel::Pool(n) => n,
    };
    let (io_senders, io_receivers): (Vec<_>, Vec<_>) = (0..io_count)
        .map(|_| channel::bounded(ACCEPT_QUEUE))
        .unzip();
    // Built on the listener's thread: its sockets belong to that thread's loop.
    let (listeners, stop) = (parts.listeners.clone_all()?, parts.stop_rx.clone());
    let (keepalive, max_connections) = (parts.config.keepalive, parts.config.max_connections);
    let accept = move || listener::run(listeners, io_senders, stop, keepalive, max_connections);
    match parts.config.threads {
        ThreadModel::Single => {
            let (accepted, context) = (io_receivers[0].clone(), parts.io_context());
            let processor = parts.processor();
            // Each a task of the loop, woken on its own: polled together, every wake-up of
            // one would poll the others too, and the listener's poll is an `accept` call.
            spawn_on_loop("gearmand-main".into(), move || async move {
                reactor::spawn(accept());
                reactor::spawn(io_thread::run(accepted, context));
                processor.await
            })?;
        }
        ThreadModel::OneIo => {
            spawn_on_loop("gearmand-listen".into(), accept)?;
            let (accepted, context) = (io_receivers[0].clone(), parts.io_context());
            let processor = parts.processor();
            spawn_on_loop("gearmand-io-0".into(), move || async move {
                reactor::spawn(io_thread::run(accepted, context));
                processor.await
            })?;
        }
        ThreadModel::Pool(_) => {
            spawn_on_loop("gearmand-listen".into(), accept)?;
            for (i, accepted) in io_receivers.iter().enumerate() {
                let (accepted, context) = (accepted.clone(), parts.io_context());
                spawn_on_loop(format!("gearmand-io-{i}"), move || {
                    io_thread::run(accepted, context)
                })?;
            }
            // The processing thread sleeps on its own loop too, with nothing registered:
            // a wake-up from an I/O thread is one eventfd write, as the C server's is one
            // pipe write, never a turn at driving async-io's shared reactor.
            let processor = parts.processor();
            spawn_on_loop("gearmand-proc".into(), move || processor)?;
        }
    }
    Ok(())
}

/// Starts a thread running the future `make` builds there (its tasks need not be
/// `Send`) on an event loop of its own, made here so that failing to make one stops the
/// start-up.
fn spawn_on_loop<F: std::future::Future<Output = ()>>(
    name: String,
    make: impl FnOnce() -> F + Send + 'static,
) -> anyhow::Result<()> {
    let reactor =
        Reactor::new().with_context(|| format!("cannot create the event loop of {name}"))?;
    spawn(name, move || reactor.block_on(make()))
}

/// Cloning listeners so [`Parts`] can keep its own handles while threads take theirs.
trait CloneAll: Sized {
    fn clone_all(&self) -> anyhow::Result<Self>;
}

impl CloneAll for Vec<std::net::TcpListener> {
    fn clone_all(&self) -> anyhow::Result<Self> {
        self.iter()
            .map(|l| l.try_clone().context("cannot duplicate a listening socket"))
            .collect()
    }
}

/// The pid file, removed when dropped.
struct PidFile(Option<PathBuf>);

impl PidFile {
    fn create(config: &Config) -> anyhow::Result<PidFile> {
        let path = config.pid_file.clone();
        match fs::write(&path, format!("{}\n", std::process::id())) {
            Ok(()) => Ok(PidFile(Some(path))),
            Err(e) if config.pid_file_is_default => {
                tracing::debug!(path = %path.display(), error = %e, "default pid file not written");
                Ok(PidFile(None))
            }
            Err(e) => Err(e).with_context(|| format!("Could not open pid file {}", path.display())),
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}
