//! gearman-tui: a live terminal dashboard for Gearman job servers, and its `--once` text mode.
//!
//! Poller threads (`poller`) feed one channel of [`event::Event`]s; the loop here applies them to
//! the state ([`app::App`]), which [`ui`] draws. `main.rs` only parses and maps the outcome.

pub mod app;
pub mod cli;
pub mod event;
pub mod once;
pub mod poller;
pub mod snapshot;
pub mod ui;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gearman_shared::tls::{TlsConnector, TlsError};

use crate::app::{App, Effect};
use crate::cli::{Cli, ServerAddr, ServerListError};
use crate::event::Event;
use crate::poller::{PollOptions, Poller};

/// How often the screen is redrawn when nothing else happens (ages keep moving).
const TICK: Duration = Duration::from_millis(250);

/// Events applied before one redraw, at most.
const MAX_BATCH: usize = 1024;

/// Why the dashboard could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A server address is malformed.
    #[error(transparent)]
    Addr(#[from] ServerListError),
    /// The terminal could not be set up, drawn or read.
    #[error("cannot use the terminal")]
    Terminal(#[source] io::Error),
    /// A thread could not be started.
    #[error("cannot start a thread")]
    Thread(#[source] io::Error),
    /// `--once` could not write its output.
    #[error("cannot write the snapshot")]
    Output(#[source] io::Error),
    /// `-S`: the TLS files or the server name cannot be used (no CA file, unreadable PEM,
    /// a key that does not match its certificate, …). The cause is part of the message.
    #[error("TLS (-S): {0}")]
    Tls(TlsError),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The operator quit, or `--once` reached every server.
    Done,
    /// `--once` found a server that does not answer.
    ServerDown,
}

/// Runs what the command line asks for.
pub fn run(cli: &Cli) -> Result<Outcome, Error> {
    let servers = cli.servers()?;
    // The TLS files are read once, before any server is polled.
    let tls = cli
        .tls_options(|var| std::env::var_os(var))
        .map(|options| TlsConnector::new(&options))
        .transpose()
        .map_err(Error::Tls)?;
    let options = PollOptions {
        timeout: cli.timeout,
        jobs: !cli.no_jobs,
        tls,
    };
    if cli.once {
        let app = once::collect(&servers, &options);
        let all_up = once::print(&app, &mut io::stdout().lock()).map_err(Error::Output)?;
        return Ok(if all_up {
            Outcome::Done
        } else {
            Outcome::ServerDown
        });
    }
    let history = Duration::from_secs(u64::from(cli.history) * 60);
    run_dashboard(&servers, &options, cli.interval, history)?;
    Ok(Outcome::Done)
}

/// Restores the terminal when dropped: on a normal exit and on an error (ratatui's panic hook
/// covers panics).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn run_dashboard(
    servers: &[ServerAddr],
    options: &PollOptions,
    interval: Duration,
    history: Duration,
) -> Result<(), Error> {
    let (tx, rx) = mpsc::channel();
    let guard = TerminalGuard;
    let mut terminal = ratatui::try_init().map_err(Error::Terminal)?;
    let stop = Arc::new(AtomicBool::new(false));
    spawn_input(tx.clone(), Arc::clone(&stop))?;
    let pollers = servers
        .iter()
        .enumerate()
        .map(|(i, addr)| Poller::spawn(i, addr.clone(), options.clone(), interval, tx.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Thread)?;
    drop(tx);

    let mut app = App::new(
        servers.iter().map(ToString::to_string).collect(),
        interval,
        history,
        Instant::now(),
    );
    let result = (|| loop {
        app.now = Instant::now();
        terminal
            .draw(|f| f.render_widget(&app, f.area()))
            .map_err(Error::Terminal)?;
        let mut batch = Vec::new();
        match rx.recv_timeout(TICK) {
            Ok(e) => batch.push(e),
            Err(RecvTimeoutError::Timeout) => batch.push(Event::Tick),
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        for event in batch {
            match app.handle(event, Instant::now()) {
                Some(Effect::Quit) => return Ok(()),
                Some(Effect::Run { server, action }) => {
                    if let Some(p) = pollers.get(server) {
                        p.send(action);
                    }
                }
                None => {}
            }
        }
    })();
    stop.store(true, Ordering::Relaxed);
    // Dropping the pollers' senders ends their threads at their next wake-up; nothing waits
    // for a server that does not answer.
    drop(pollers);
    drop(guard);
    result
}

/// Reads the terminal on its own thread, so a burst of snapshots never delays a key.
fn spawn_input(tx: Sender<Event>, stop: Arc<AtomicBool>) -> Result<(), Error> {
    use crossterm::event::{self, Event as Term};
    thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(100)) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(_) => return,
                }
                let event = match event::read() {
                    Ok(Term::Key(key)) => Event::Key(key),
                    Ok(Term::Resize(..)) => Event::Resize,
                    Ok(_) => continue,
                    Err(_) => return,
                };
                if tx.send(event).is_err() {
                    return;
                }
            }
        })
        .map(drop)
        .map_err(Error::Thread)
}
