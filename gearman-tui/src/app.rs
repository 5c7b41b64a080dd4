//! The dashboard's state: latest snapshot per server, history for rates and charts, the
//! operator's panel, selection, sort, filter and pending confirmation. No I/O, no drawing; the
//! time is always passed in, so tests drive it.
//!
//! This file keeps [`App`] and its pure core, [`App::handle`]; the rest is split along its seams:
//! per-server history and rates in `history`, table views, sorting and selection in `views`,
//! key handling in `input`. Everything public is re-exported here, so paths stay `app::*`.

use std::time::{Duration, Instant};

use crate::event::{Action, Event};

mod history;
mod input;
mod views;

pub use history::{Age, Health, HistoryPoint, Rates, ServerState};
pub use input::Mode;
pub use views::{FunctionView, JobView, Panel, Sort, Totals, WorkerView};

/// How long an action's result stays in the footer.
const MESSAGE_TTL: Duration = Duration::from_secs(8);

/// A result or warning shown in the footer for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The text.
    pub text: String,
    /// Shown as an error.
    pub error: bool,
    /// When it was set.
    pub at: Instant,
}

/// What the event loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Leave.
    Quit,
    /// Send `action` to server `server`'s poller.
    Run {
        /// Index of the server.
        server: usize,
        /// The action.
        action: Action,
    },
}

/// The whole dashboard state.
#[derive(Debug, Clone)]
pub struct App {
    /// One per server, in command-line order.
    pub servers: Vec<ServerState>,
    /// The panel shown.
    pub panel: Panel,
    /// What keys do now.
    pub mode: Mode,
    /// Name filter (case-insensitive substring).
    pub filter: String,
    /// Hide functions with no jobs and no workers, and connections with no functions.
    pub hide_idle: bool,
    /// Snapshots are not applied.
    pub paused: bool,
    /// Footer message.
    pub message: Option<Message>,
    /// Time between polls.
    pub interval: Duration,
    /// How much history to keep.
    pub history: Duration,
    /// The time the state was last brought up to, used for every age shown.
    pub now: Instant,
    sort: [Sort; 5],
    selected: [usize; 5],
}

impl App {
    /// A dashboard for these server addresses.
    pub fn new(addrs: Vec<String>, interval: Duration, history: Duration, now: Instant) -> App {
        let mut sort = [Sort {
            column: 0,
            descending: false,
        }; 5];
        // Longest queues first; oldest jobs first.
        sort[Panel::Functions.index()] = Sort {
            column: 2,
            descending: true,
        };
        sort[Panel::Jobs.index()] = Sort {
            column: 5,
            descending: true,
        };
        App {
            servers: addrs.into_iter().map(ServerState::new).collect(),
            panel: Panel::Functions,
            mode: Mode::Normal,
            filter: String::new(),
            hide_idle: false,
            paused: false,
            message: None,
            interval,
            history,
            now,
            sort,
            selected: [0; 5],
        }
    }

    /// The sort of a panel.
    pub fn sort(&self, panel: Panel) -> Sort {
        self.sort[panel.index()]
    }

    /// The selected row of a panel (may be past the end; views clamp it).
    pub fn selected(&self, panel: Panel) -> usize {
        self.selected[panel.index()]
    }

    /// Whether several servers are watched (the server column is then shown).
    pub fn multi_server(&self) -> bool {
        self.servers.len() > 1
    }

    /// Applies one event at time `now`; a key may ask the loop to do something.
    pub fn handle(&mut self, event: Event, now: Instant) -> Option<Effect> {
        self.now = now;
        if self
            .message
            .as_ref()
            .is_some_and(|m| now.saturating_duration_since(m.at) > MESSAGE_TTL)
        {
            self.message = None;
        }
        match event {
            Event::Key(key) => return self.on_key(key),
            Event::Snapshot { server, snapshot } => {
                if !self.paused {
                    let keep = self.history;
                    if let Some(s) = self.servers.get_mut(server) {
                        s.apply(*snapshot, keep);
                    }
                }
            }
            Event::PollError { server, at, error } => {
                if !self.paused {
                    if let Some(s) = self.servers.get_mut(server) {
                        s.health = match &s.health {
                            Health::Down { since, .. } => Health::Down {
                                since: *since,
                                error,
                            },
                            _ => Health::Down { since: at, error },
                        };
                    }
                }
            }
            Event::ActionDone {
                server,
                action,
                result,
            } => {
                let addr = self
                    .servers
                    .get(server)
                    .map_or("?", |s| s.addr.as_str())
                    .to_string();
                self.message = Some(match result {
                    Ok(()) => Message {
                        text: format!("{addr}: {action}: OK"),
                        error: false,
                        at: now,
                    },
                    Err(e) => Message {
                        text: format!("{addr}: {action}: {e}"),
                        error: true,
                        at: now,
                    },
                });
            }
            Event::Resize | Event::Tick => {}
        }
        None
    }

    fn note(&mut self, text: impl Into<String>, error: bool) {
        self.message = Some(Message {
            text: text.into(),
            error,
            at: self.now,
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::snapshot::{FunctionRow, JobRow, Snapshot};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    pub(crate) fn function(name: &str, total: u64, running: u64, workers: u64) -> FunctionRow {
        FunctionRow {
            name: name.into(),
            total,
            running,
            workers,
            priority: Some([0, total - running, 0]),
        }
    }

    pub(crate) fn job(n: u64) -> JobRow {
        JobRow {
            handle: format!("H:host:{n}"),
            retries: 0,
            ignore: false,
            queued: true,
        }
    }

    pub(crate) fn snapshot(at: Instant, functions: Vec<FunctionRow>) -> Snapshot {
        Snapshot {
            at,
            version: Some("1.1.20".into()),
            pid: Some(42),
            uptime: Some(Duration::from_secs(3600)),
            functions,
            workers: vec![],
            jobs: None,
            stats: None,
        }
    }

    /// A server that has not answered for 30 s.
    pub(crate) fn down_server(addr: &str, now: Instant) -> ServerState {
        let mut s = ServerState::new(addr.into());
        s.health = Health::Down {
            since: now.checked_sub(Duration::from_secs(30)).unwrap_or(now),
            error: "cannot connect: Connection refused (os error 111)".into(),
        };
        s
    }

    pub(crate) fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    pub(crate) fn snap_event(server: usize, s: Snapshot) -> Event {
        Event::Snapshot {
            server,
            snapshot: Box::new(s),
        }
    }

    pub(crate) fn app(t0: Instant) -> App {
        App::new(
            vec!["127.0.0.1:4730".into()],
            Duration::from_secs(1),
            Duration::from_secs(300),
            t0,
        )
    }

    #[test]
    fn down_and_back_up() {
        let t0 = Instant::now();
        let mut a = app(t0);
        assert_eq!(a.servers[0].health, Health::Connecting);
        a.handle(
            snap_event(0, snapshot(t0, vec![function("f", 1, 0, 1)])),
            t0,
        );
        assert!(a.servers[0].is_up());
        let t1 = t0 + Duration::from_secs(1);
        let down = |at, error: &str| Event::PollError {
            server: 0,
            at,
            error: error.into(),
        };
        a.handle(down(t1, "refused"), t1);
        let t2 = t1 + Duration::from_secs(1);
        a.handle(down(t2, "timed out"), t2);
        assert_eq!(
            a.servers[0].health,
            Health::Down {
                since: t1,
                error: "timed out".into()
            }
        );
        // Down servers show no rows and count nowhere.
        assert!(a.functions().is_empty());
        assert_eq!(a.totals().up, 0);
        let t3 = t2 + Duration::from_secs(1);
        a.handle(
            snap_event(0, snapshot(t3, vec![function("f", 1, 0, 1)])),
            t3,
        );
        assert!(a.servers[0].is_up());
        assert_eq!(a.functions().len(), 1);
    }
}
