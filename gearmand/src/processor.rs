//! The processing thread's loop: the only owner of the job state. It takes events in
//! batches, applies them, and hands each connection's replies to its writer in one go.

mod admin;

use std::sync::Arc;
use std::time::Duration;

use async_std::channel::Sender;
use futures::StreamExt;

use crate::acl::Acl;
use crate::clock::now_ms;
use crate::config::ShutdownAccess;
use crate::event::{Event, EventQueue, Incoming, Outbox};
use crate::fault;
use crate::notify::Heartbeat;
use crate::queue::writer::StoreMsg;
use crate::state::{ConnId, Map, Outgoing, State, StateConfig, StoredJob};
use crate::stats::Traffic;
use gearman_shared::admin::StatsReport;
use gearman_shared::protocol::Request;

/// Events handled before replies are flushed and timers checked.
const BATCH: usize = 512;

/// Facts about the running server that admin commands report or check.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Process id, for `getpid`.
    pub pid: u32,
    /// `--verbose` name, for `verbose`.
    pub verbose: String,
    /// Who may use the `shutdown` commands.
    pub shutdown_access: ShutdownAccess,
    /// Start time, ms since the epoch, for the uptime.
    pub started_ms: u64,
    /// Byte counters of the I/O threads.
    pub traffic: Arc<Traffic>,
}

/// What the processing thread starts from.
pub struct Setup {
    /// Events from the I/O threads (and the store thread).
    pub events: EventQueue,
    /// Job-model options.
    pub config: StateConfig,
    /// Facts for admin commands.
    pub info: ServerInfo,
    /// Closed when a graceful shutdown begins, to stop the listener.
    pub stop_accepting: Sender<()>,
    /// The persistent queue's thread, if any.
    pub store: Option<std::sync::mpsc::Sender<StoreMsg>>,
    /// Jobs read back from the persistent queue.
    pub replay: Vec<StoredJob>,
    /// `--acl`, if given.
    pub acl: Option<Acl>,
    /// Told once the replayed jobs are in the tables (the server is then ready).
    pub replayed: std::sync::mpsc::Sender<()>,
    /// The systemd watchdog's pulse, kept while the loop turns.
    pub heartbeat: Option<Heartbeat>,
}

/// Why the processing loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `shutdown`: stop now.
    Immediate,
    /// Graceful shutdown completed, or every I/O thread is gone.
    Done,
}

/// Runs until every I/O thread is gone, a graceful shutdown finds no job left, or an
/// admin asks for an immediate shutdown. `stop_accepting` is closed when a graceful
/// shutdown begins.
pub async fn run(setup: Setup) -> Exit {
    let Setup {
        mut events,
        config,
        info,
        stop_accepting,
        store,
        replay,
        acl,
        replayed: replay_done,
        heartbeat,
    } = setup;
    let mut state = State::new(config);
    state.set_acl(acl);
    let replayed = replay.len();
    state.replay(replay, now_ms());
    if replayed > 0 {
        tracing::info!(jobs = replayed, "replayed the persistent queue");
    }
    let _ = replay_done.send(());
    let mut processor = Processor {
        state,
        store,
        outboxes: Map::default(),
        batches: Map::default(),
        closed: Vec::new(),
        info,
        graceful: false,
        exit: None,
        stop_accepting,
    };
    let exit = loop {
        let now = now_ms();
        if let Some(heartbeat) = &heartbeat {
            heartbeat.beat(now);
        }
        let deadline = match (processor.state.next_deadline(), &heartbeat) {
            (Some(due), Some(heartbeat)) => Some(due.min(heartbeat.next_due_ms(now))),
            (due, None) => due,
            (None, Some(heartbeat)) => Some(heartbeat.next_due_ms(now)),
        };
        let first = match deadline {
            // `next()` keeps its listener in the receiver between waits.
            None => events.next().await,
            Some(deadline) => {
                let wait = Duration::from_millis(deadline.saturating_sub(now_ms()));
                match crate::reactor::timeout(wait, events.next()).await {
                    Ok(event) => event,
                    Err(_) => {
                        processor.finish_batch();
                        continue;
                    }
                }
            }
        };
        let Some(first) = first else {
            break Exit::Done;
        };
        processor.apply(first);
        for _ in 1..BATCH {
            match events.try_recv() {
                Ok(event) => processor.apply(event),
                Err(_) => break,
            }
        }
        processor.finish_batch();
        if let Some(exit) = processor.exit {
            break exit;
        }
        if processor.graceful && processor.state.job_count() == 0 {
            tracing::info!("graceful shutdown: no job left, exiting");
            break Exit::Done;
        }
    };
    // Let go of every outbox, including those of connections whose registration is
    // still queued, so each writer delivers what it holds and ends.
    drop(processor);
    events.close();
    while events.try_recv().is_ok() {}
    exit
}

struct Processor {
    state: State,
    store: Option<std::sync::mpsc::Sender<StoreMsg>>,
    outboxes: Map<ConnId, Outbox>,
    batches: Map<ConnId, Vec<Outgoing>>,
    /// Connections gone in this batch; their outboxes are dropped after the flush.
    closed: Vec<ConnId>,
    info: ServerInfo,
    graceful: bool,
    exit: Option<Exit>,
    stop_accepting: Sender<()>,
}

impl Processor {
    fn apply(&mut self, event: Event) {
        let now = now_ms();
        match event {
            Event::Connected { conn, info, outbox } => {
                self.outboxes.insert(conn, outbox);
                self.state.connect(conn, info);
            }
            Event::Input { conn, items } => {
                for item in items {
                    match item {
                        Incoming::Request(request) => {
                            tracing::debug!(conn = conn.0, ?request, "request");
                            if let Request::Submit(job) = &request {
                                fault::check(fault::Site::Processor, &job.function);
                                fault::check(fault::Site::ProcessorStall, &job.function);
                            }
                            self.state.handle(conn, request, now)
                        }
                        Incoming::Reject(response) => {
                            self.state.send(conn, Outgoing::Packet(response))
                        }
                        Incoming::Admin {
                            line,
                            terminator_len,
                        } => {
                            self.state.mark_admin(conn);
                            self.admin(conn, &line, terminator_len)
                        }
                    }
                }
            }
            Event::Disconnected { conn } => {
                self.state.disconnect(conn);
                self.closed.push(conn);
            }
            Event::GracefulShutdown => self.begin_graceful_shutdown(),
            Event::AclReload(acl) => {
                tracing::info!("access control list reloaded");
                self.state.set_acl(Some(acl));
            }
            Event::Stats { reply } => {
                let _ = reply.try_send(self.stats());
            }
            Event::Stored {
                jobs,
                barriers,
                error,
            } => {
                if let Some(error) = &error {
                    tracing::error!(
                        jobs = jobs.len(),
                        %error,
                        "persistent queue write failed: new jobs refused, finished ones may run again"
                    );
                }
                self.state.stored(&jobs, &barriers, error.is_some(), now);
            }
        }
    }

    /// The statistics of `stats`, `/metrics` and `/status`.
    fn stats(&self) -> StatsReport {
        let now = now_ms();
        let mut report = self.state.stats(now);
        report.server.uptime_seconds = now.saturating_sub(self.info.started_ms) / 1000;
        (report.server.bytes_in, report.server.bytes_out) = self.info.traffic.totals();
        report
    }

    fn begin_graceful_shutdown(&mut self) {
        if !self.graceful {
            tracing::info!("graceful shutdown: no longer accepting, finishing queued jobs");
            self.graceful = true;
            self.stop_accepting.close();
        }
    }

    /// Runs due timers, then delivers every reply of the batch, one message per connection.
    fn finish_batch(&mut self) {
        let now = now_ms();
        self.state.tick(now);
        if let Some(batch) = self.state.take_store_batch() {
            let (adds, barriers) = (batch.adds.clone(), batch.barriers.clone());
            let sent = self
                .store
                .as_ref()
                .is_some_and(|store| store.send(StoreMsg::Write(batch)).is_ok());
            if !sent {
                tracing::error!("persistent queue is gone; refusing background jobs");
                self.state.stored(&adds, &barriers, true, now);
            }
        }
        for line in self.state.take_log() {
            tracing::warn!("{line}");
        }
        for (conn, outgoing) in self.state.take_output() {
            self.batches.entry(conn).or_default().push(outgoing);
        }
        for (conn, batch) in self.batches.drain() {
            if let Some(outbox) = self.outboxes.get(&conn) {
                // Unbounded: never blocks; the writer enforces the per-peer limit.
                let _ = outbox.unbounded_send(batch);
            }
        }
        for conn in self.closed.drain(..) {
            self.outboxes.remove(&conn);
        }
    }
}
