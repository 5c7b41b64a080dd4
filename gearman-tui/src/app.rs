//! The dashboard's state: latest snapshot per server, history for rates and charts, the
//! operator's panel, selection, sort, filter and pending confirmation. No I/O, no drawing; the
//! time is always passed in, so tests drive it.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::event::{Action, Event};
use crate::snapshot::{FunctionRow, JobRow, Snapshot, WorkerRow};

/// How long an action's result stays in the footer.
const MESSAGE_TTL: Duration = Duration::from_secs(8);

/// The panels, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// Per-function queues, workers and rates.
    Functions,
    /// Connections and their functions.
    Workers,
    /// Jobs from `show jobs`.
    Jobs,
    /// One row per server.
    Servers,
    /// Queue depth and throughput over time.
    Charts,
}

impl Panel {
    /// Every panel in tab order.
    pub const ALL: [Panel; 5] = [
        Panel::Functions,
        Panel::Workers,
        Panel::Jobs,
        Panel::Servers,
        Panel::Charts,
    ];

    /// Position in [`Panel::ALL`].
    pub fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    /// The tab title.
    pub fn title(self) -> &'static str {
        match self {
            Panel::Functions => "Functions",
            Panel::Workers => "Workers",
            Panel::Jobs => "Jobs",
            Panel::Servers => "Servers",
            Panel::Charts => "Charts",
        }
    }

    /// The sortable columns (empty: the panel has a fixed order).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Panel::Functions => &[
                "Server", "Function", "Waiting", "Running", "Workers", "High", "Normal", "Low",
                "In/s", "Out/s", "Oldest",
            ],
            Panel::Workers => &["Server", "FD", "Address", "Client ID", "Functions"],
            Panel::Jobs => &[
                "Server",
                "Handle",
                "Retries",
                "Ignored",
                "Background",
                "Seen",
            ],
            Panel::Servers | Panel::Charts => &[],
        }
    }
}

/// Sort column (index into [`Panel::columns`]) and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The column.
    pub column: usize,
    /// Largest first.
    pub descending: bool,
}

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Navigation keys.
    Normal,
    /// Typing the filter.
    Filter,
    /// Waiting for y/n on an action.
    Confirm {
        /// The server the action goes to.
        server: usize,
        /// The action.
        action: Action,
    },
    /// The help overlay.
    Help,
}

/// Whether a server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Not polled yet.
    Connecting,
    /// The last poll succeeded.
    Up,
    /// The last poll failed.
    Down {
        /// When the first failing poll of this outage ended.
        since: Instant,
        /// The latest reason.
        error: String,
    },
}

/// Jobs per second in and out; `None` until two polls give a difference.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Jobs created per second.
    pub jobs_in: Option<f64>,
    /// Jobs finished per second.
    pub jobs_out: Option<f64>,
    /// The numbers come from counters (exact), not from changes in queue sizes (lower bounds).
    pub exact: bool,
}

/// How old something is, as far as the polls tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Not known, or nothing is waiting.
    Unknown,
    /// Reported by the server.
    Exact(Duration),
    /// At most this old (nothing was waiting at a poll this long ago).
    AtMost(Duration),
    /// At least this old (seen this long ago).
    AtLeast(Duration),
}

impl Age {
    /// Seconds, for sorting (unknown sorts lowest).
    pub fn seconds(self) -> f64 {
        match self {
            Age::Unknown => -1.0,
            Age::Exact(d) | Age::AtMost(d) | Age::AtLeast(d) => d.as_secs_f64(),
        }
    }
}

/// One point of a server's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryPoint {
    /// When the poll finished.
    pub at: Instant,
    /// Jobs waiting, all functions.
    pub waiting: u64,
    /// Jobs running, all functions.
    pub running: u64,
    /// Server-wide rates.
    pub rates: Rates,
}

/// Everything known about one server.
#[derive(Debug, Clone)]
pub struct ServerState {
    /// The address as shown.
    pub addr: String,
    /// Up, down or not yet polled.
    pub health: Health,
    /// The latest successful poll.
    pub snapshot: Option<Snapshot>,
    /// Server-wide rates from the last two polls.
    pub rates: Rates,
    /// Per-function rates from the last two polls.
    pub function_rates: HashMap<String, Rates>,
    /// Recent points, oldest first.
    pub history: VecDeque<HistoryPoint>,
    /// When each function was last seen with nothing waiting.
    last_empty: HashMap<String, Instant>,
    /// When each job handle was first seen.
    first_seen: HashMap<String, Instant>,
    /// The highest job sequence number seen (handles are `PREFIX:N`).
    last_sequence: Option<u64>,
}

impl ServerState {
    fn new(addr: String) -> Self {
        ServerState {
            addr,
            health: Health::Connecting,
            snapshot: None,
            rates: Rates::default(),
            function_rates: HashMap::new(),
            history: VecDeque::new(),
            last_empty: HashMap::new(),
            first_seen: HashMap::new(),
            last_sequence: None,
        }
    }

    /// The snapshot to show: the latest one, unless the server is down now.
    pub fn live(&self) -> Option<&Snapshot> {
        match self.health {
            Health::Up => self.snapshot.as_ref(),
            _ => None,
        }
    }

    /// Whether the last poll succeeded.
    pub fn is_up(&self) -> bool {
        self.health == Health::Up
    }

    /// When a job was first seen by this dashboard.
    pub fn first_seen(&self, handle: &str) -> Option<Instant> {
        self.first_seen.get(handle).copied()
    }

    /// The oldest queued job's age: from `stats` when the server has it, else a lower bound
    /// (since the dashboard first saw the job).
    pub fn oldest_job(&self, now: Instant) -> Age {
        let Some(snap) = self.live() else {
            return Age::Unknown;
        };
        if let Some(stats) = &snap.stats {
            let since = now.saturating_duration_since(snap.at);
            return stats
                .functions
                .values()
                .filter_map(|f| f.oldest)
                .max()
                .map_or(Age::Unknown, |d| Age::Exact(d + since));
        }
        let Some(jobs) = &snap.jobs else {
            return Age::Unknown;
        };
        jobs.iter()
            .filter_map(|j| self.first_seen(&j.handle))
            .min()
            .map_or(Age::Unknown, |t| {
                Age::AtLeast(now.saturating_duration_since(t))
            })
    }

    /// How long the server has been up at `now`, when known.
    pub fn uptime(&self, now: Instant) -> Option<Duration> {
        let s = self.live()?;
        Some(s.uptime? + now.saturating_duration_since(s.at))
    }

    /// Oldest waiting job of a function.
    pub fn function_age(&self, row: &FunctionRow, now: Instant) -> Age {
        let stats = self
            .snapshot
            .as_ref()
            .and_then(|s| s.stats.as_ref())
            .and_then(|s| s.functions.get(&row.name))
            .and_then(|f| f.oldest);
        if let (Some(age), Some(snap)) = (stats, &self.snapshot) {
            return Age::Exact(age + now.saturating_duration_since(snap.at));
        }
        if row.waiting() == 0 {
            return Age::Unknown;
        }
        match self.last_empty.get(&row.name) {
            Some(t) => Age::AtMost(now.saturating_duration_since(*t)),
            None => Age::Unknown,
        }
    }

    /// Takes in a new snapshot: rates against the previous one, ages, history.
    fn apply(&mut self, snap: Snapshot, keep: Duration) {
        let prev = self.snapshot.take();
        let restarted = match &prev {
            Some(p) => p.pid.is_some() && snap.pid.is_some() && p.pid != snap.pid,
            None => false,
        };
        if restarted {
            self.last_empty.clear();
            self.first_seen.clear();
            self.last_sequence = None;
            self.history.clear();
        }
        let prev = prev.filter(|_| !restarted);
        let dt = prev
            .as_ref()
            .map(|p| snap.at.saturating_duration_since(p.at).as_secs_f64())
            .filter(|dt| *dt > 0.0);

        // Function ages: a function with nothing waiting (or absent) at a poll has no job
        // older than that poll.
        for f in &snap.functions {
            if f.waiting() == 0 {
                self.last_empty.insert(f.name.clone(), snap.at);
            } else if let Some(p) = &prev {
                if !p.functions.iter().any(|g| g.name == f.name) {
                    self.last_empty.insert(f.name.clone(), p.at);
                }
            }
        }
        self.last_empty
            .retain(|name, _| snap.functions.iter().any(|f| &f.name == name));

        self.function_rates = match (&prev, dt) {
            (Some(p), Some(dt)) => function_rates(p, &snap, dt),
            _ => HashMap::new(),
        };
        let new_jobs = self.track_jobs(&snap);
        self.rates = match (&prev, dt) {
            (Some(p), Some(dt)) => self.server_rates(p, &snap, dt, new_jobs),
            _ => Rates::default(),
        };
        if let Some(seq) = snap
            .jobs
            .iter()
            .flatten()
            .filter_map(JobRow::sequence)
            .max()
        {
            self.last_sequence = Some(self.last_sequence.map_or(seq, |s| s.max(seq)));
        }

        let (waiting, running) = snap
            .functions
            .iter()
            .fold((0, 0), |(w, r), f| (w + f.waiting(), r + f.running));
        self.history.push_back(HistoryPoint {
            at: snap.at,
            waiting,
            running,
            rates: self.rates,
        });
        while self
            .history
            .front()
            .is_some_and(|p| snap.at.saturating_duration_since(p.at) > keep)
        {
            self.history.pop_front();
        }
        self.snapshot = Some(snap);
        self.health = Health::Up;
    }

    /// Records first sightings of jobs; returns how many handles are new.
    fn track_jobs(&mut self, snap: &Snapshot) -> usize {
        let Some(jobs) = &snap.jobs else {
            self.first_seen.clear();
            return 0;
        };
        let present: HashSet<&str> = jobs.iter().map(|j| j.handle.as_str()).collect();
        self.first_seen.retain(|h, _| present.contains(h.as_str()));
        let mut new = 0;
        for j in jobs {
            if !self.first_seen.contains_key(&j.handle) {
                self.first_seen.insert(j.handle.clone(), snap.at);
                new += 1;
            }
        }
        new
    }

    fn server_rates(&self, prev: &Snapshot, snap: &Snapshot, dt: f64, new_jobs: usize) -> Rates {
        // Counters from `stats` are exact.
        let counters = |s: &Snapshot| s.stats.as_ref().map(|st| (st.submitted, st.finished));
        if let (Some((i0, o0)), Some((i1, o1))) = (counters(prev), counters(snap)) {
            return Rates {
                jobs_in: Some(i1.saturating_sub(i0) as f64 / dt),
                jobs_out: Some(o1.saturating_sub(o0) as f64 / dt),
                exact: true,
            };
        }
        // Job handles count every job the server created: the highest one seen tells how
        // many were created in between, even those that came and went between two polls.
        if let (Some(before), Some(now)) = (&prev.jobs, &snap.jobs) {
            let seq = now.iter().filter_map(JobRow::sequence).max();
            let by_sequence = match (self.last_sequence, seq) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => 0,
            };
            let created = by_sequence.max(new_jobs as u64);
            let finished = (created + before.len() as u64).saturating_sub(now.len() as u64);
            return Rates {
                jobs_in: Some(created as f64 / dt),
                jobs_out: Some(finished as f64 / dt),
                exact: seq.is_some() || now.is_empty(),
            };
        }
        // Else the sum of the per-function lower bounds.
        let sum = |f: fn(&Rates) -> Option<f64>| -> Option<f64> {
            let rates = function_rates(prev, snap, dt);
            Some(rates.values().filter_map(f).sum())
        };
        Rates {
            jobs_in: sum(|r| r.jobs_in),
            jobs_out: sum(|r| r.jobs_out),
            exact: false,
        }
    }
}

/// Per-function rates between two polls: from `stats` counters when both have them, else
/// from the change in queued-plus-running jobs (a lower bound on both directions).
fn function_rates(prev: &Snapshot, snap: &Snapshot, dt: f64) -> HashMap<String, Rates> {
    let counters = |s: &Snapshot, name: &str| {
        let f = s.stats.as_ref()?.functions.get(name)?;
        Some((f.submitted, f.finished))
    };
    snap.functions
        .iter()
        .map(|f| {
            let rates = match (counters(prev, &f.name), counters(snap, &f.name)) {
                (Some((i0, o0)), Some((i1, o1))) => Rates {
                    jobs_in: Some(i1.saturating_sub(i0) as f64 / dt),
                    jobs_out: Some(o1.saturating_sub(o0) as f64 / dt),
                    exact: true,
                },
                _ => {
                    let before = prev
                        .functions
                        .iter()
                        .find(|g| g.name == f.name)
                        .map_or(0, |g| g.total);
                    let delta = f.total as f64 - before as f64;
                    Rates {
                        jobs_in: Some(delta.max(0.0) / dt),
                        jobs_out: Some((-delta).max(0.0) / dt),
                        exact: false,
                    }
                }
            };
            (f.name.clone(), rates)
        })
        .collect()
}

/// A function row as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionView<'a> {
    /// Index of the server.
    pub server: usize,
    /// The counters.
    pub row: &'a FunctionRow,
    /// In and out per second.
    pub rates: Rates,
    /// Oldest waiting job.
    pub oldest: Age,
}

/// A connection row as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView<'a> {
    /// Index of the server.
    pub server: usize,
    /// The connection.
    pub row: &'a WorkerRow,
}

/// A job row as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView<'a> {
    /// Index of the server.
    pub server: usize,
    /// The job.
    pub row: &'a JobRow,
    /// Since the dashboard first saw it.
    pub seen: Age,
}

/// Sums over every server that answers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Servers that answered their last poll.
    pub up: usize,
    /// Servers polled.
    pub servers: usize,
    /// Servers whose last poll failed.
    pub down: usize,
    /// Functions listed.
    pub functions: usize,
    /// Jobs waiting.
    pub waiting: u64,
    /// Jobs running.
    pub running: u64,
    /// Worker registrations.
    pub workers: u64,
    /// Queued per priority (high, normal, low).
    pub priority: [u64; 3],
    /// Server-wide rates added up (`None` if no server has one yet).
    pub rates: Rates,
    /// Functions with waiting jobs and no workers.
    pub starved: usize,
}

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

    fn on_key(&mut self, key: KeyEvent) -> Option<Effect> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Effect::Quit);
        }
        match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Normal;
                if key.code == KeyCode::Char('q') {
                    return Some(Effect::Quit);
                }
                None
            }
            Mode::Filter => {
                match key.code {
                    KeyCode::Enter => self.mode = Mode::Normal,
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.mode = Mode::Normal;
                    }
                    KeyCode::Backspace => {
                        self.filter.pop();
                    }
                    KeyCode::Char(c) if !c.is_control() => self.filter.push(c),
                    _ => {}
                }
                self.selected = [0; 5];
                None
            }
            Mode::Confirm { server, action } => {
                self.mode = Mode::Normal;
                if matches!(key.code, KeyCode::Char('y' | 'Y')) {
                    let addr = self.servers.get(server).map_or("?", |s| s.addr.as_str());
                    let text = format!("{addr}: {action}: sent");
                    self.note(text, false);
                    Some(Effect::Run { server, action })
                } else {
                    self.note(format!("{action}: not sent"), false);
                    None
                }
            }
            Mode::Normal => self.on_normal_key(key.code),
        }
    }

    fn on_normal_key(&mut self, code: KeyCode) -> Option<Effect> {
        let panel = self.panel.index();
        match code {
            KeyCode::Char('q') => return Some(Effect::Quit),
            KeyCode::Esc => {
                self.filter.clear();
                self.message = None;
            }
            KeyCode::Tab | KeyCode::Right => self.switch(1),
            KeyCode::BackTab | KeyCode::Left => self.switch(Panel::ALL.len() - 1),
            KeyCode::Char(c @ '1'..='5') => {
                let i = usize::from(c as u8 - b'1');
                self.panel = Panel::ALL[i];
            }
            KeyCode::Char('s') => self.cycle_sort(true),
            KeyCode::Char('S') => self.cycle_sort(false),
            KeyCode::Char('r') => {
                self.sort[panel].descending = !self.sort[panel].descending;
            }
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Char('i') => self.hide_idle = !self.hide_idle,
            KeyCode::Char('p' | ' ') => self.paused = !self.paused,
            KeyCode::Char('?') | KeyCode::F(1) => self.mode = Mode::Help,
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::PageDown => self.move_selection(10),
            KeyCode::PageUp => self.move_selection(-10),
            KeyCode::Home | KeyCode::Char('g') => self.selected[panel] = 0,
            KeyCode::End | KeyCode::Char('G') => {
                self.selected[panel] = self.row_count().saturating_sub(1);
            }
            KeyCode::Char('c') => self.ask_cancel(),
            KeyCode::Char('d') => self.ask_drop(),
            KeyCode::Char('X') => self.ask_shutdown(),
            _ => {}
        }
        None
    }

    fn switch(&mut self, step: usize) {
        let n = Panel::ALL.len();
        self.panel = Panel::ALL[(self.panel.index() + step) % n];
    }

    fn cycle_sort(&mut self, forward: bool) {
        let columns = self.panel.columns().len();
        if columns == 0 {
            return;
        }
        let panel = self.panel.index();
        let skip_server = !self.multi_server();
        let mut column = self.sort[panel].column;
        for _ in 0..columns {
            column = if forward {
                (column + 1) % columns
            } else {
                (column + columns - 1) % columns
            };
            // The server column is hidden with one server.
            if !(skip_server && column == 0) {
                break;
            }
        }
        // Counts read best largest first; names in alphabetical order.
        let text = matches!(
            (self.panel, column),
            (_, 0) | (Panel::Functions, 1) | (Panel::Workers, 2 | 3) | (Panel::Jobs, 1)
        );
        self.sort[panel] = Sort {
            column,
            descending: !text,
        };
    }

    fn move_selection(&mut self, delta: isize) {
        let count = self.row_count();
        let panel = self.panel.index();
        let current = self.selected[panel].min(count.saturating_sub(1));
        self.selected[panel] = current
            .saturating_add_signed(delta)
            .min(count.saturating_sub(1));
    }

    /// Rows in the current panel.
    pub fn row_count(&self) -> usize {
        match self.panel {
            Panel::Functions => self.functions().len(),
            Panel::Workers => self.workers().len(),
            Panel::Jobs => self.jobs().len(),
            Panel::Servers => self.servers.len(),
            Panel::Charts => 0,
        }
    }

    /// The clamped selection of the current panel, if it has rows.
    pub fn selection(&self, panel: Panel) -> Option<usize> {
        let count = match panel {
            Panel::Functions => self.functions().len(),
            Panel::Workers => self.workers().len(),
            Panel::Jobs => self.jobs().len(),
            Panel::Servers => self.servers.len(),
            Panel::Charts => 0,
        };
        (count > 0).then(|| self.selected(panel).min(count - 1))
    }

    fn ask_cancel(&mut self) {
        if self.panel != Panel::Jobs {
            self.note("cancel: select a job in the Jobs panel (3)", true);
            return;
        }
        let target = self
            .selection(Panel::Jobs)
            .and_then(|i| self.jobs().get(i).map(|j| (j.server, j.row.handle.clone())));
        match target {
            Some((server, handle)) => {
                self.mode = Mode::Confirm {
                    server,
                    action: Action::CancelJob(handle),
                }
            }
            None => self.note("cancel: no job selected", true),
        }
    }

    fn ask_drop(&mut self) {
        if self.panel != Panel::Functions {
            self.note("drop: select a function in the Functions panel (1)", true);
            return;
        }
        let target = self.selection(Panel::Functions).and_then(|i| {
            self.functions()
                .get(i)
                .map(|f| (f.server, f.row.name.clone(), f.row.is_idle()))
        });
        match target {
            Some((server, name, true)) => {
                self.mode = Mode::Confirm {
                    server,
                    action: Action::DropFunction(name),
                }
            }
            Some((_, name, false)) => {
                self.note(
                    format!("drop: {name} is not idle (it has jobs or workers)"),
                    true,
                );
            }
            None => self.note("drop: no function selected", true),
        }
    }

    fn ask_shutdown(&mut self) {
        let server = match self.panel {
            Panel::Servers => self.selection(Panel::Servers),
            Panel::Functions => self
                .selection(Panel::Functions)
                .and_then(|i| self.functions().get(i).map(|f| f.server)),
            Panel::Workers => self
                .selection(Panel::Workers)
                .and_then(|i| self.workers().get(i).map(|w| w.server)),
            Panel::Jobs => self
                .selection(Panel::Jobs)
                .and_then(|i| self.jobs().get(i).map(|j| j.server)),
            Panel::Charts => None,
        }
        .or((self.servers.len() == 1).then_some(0));
        match server {
            Some(server) if self.servers.get(server).is_some_and(ServerState::is_up) => {
                self.mode = Mode::Confirm {
                    server,
                    action: Action::Shutdown,
                }
            }
            Some(_) => self.note("shutdown: that server is not answering", true),
            None => self.note("shutdown: select a server in the Servers panel (4)", true),
        }
    }

    fn matches(&self, text: &str) -> bool {
        self.filter.is_empty() || text.to_lowercase().contains(&self.filter.to_lowercase())
    }

    /// Function rows of the servers that answer, filtered and sorted.
    pub fn functions(&self) -> Vec<FunctionView<'_>> {
        let mut rows: Vec<FunctionView<'_>> = Vec::new();
        for (i, s) in self.servers.iter().enumerate() {
            let Some(snap) = s.live() else { continue };
            for row in &snap.functions {
                if (self.hide_idle && row.is_idle()) || !self.matches(&row.name) {
                    continue;
                }
                rows.push(FunctionView {
                    server: i,
                    row,
                    rates: s.function_rates.get(&row.name).copied().unwrap_or_default(),
                    oldest: s.function_age(row, self.now),
                });
            }
        }
        let sort = self.sort(Panel::Functions);
        let prio = |v: &FunctionView<'_>, i: usize| v.row.priority.map_or(0, |p| p[i]);
        rows.sort_by(|a, b| {
            let key = match sort.column {
                0 => a.server.cmp(&b.server),
                1 => a.row.name.cmp(&b.row.name),
                2 => a.row.waiting().cmp(&b.row.waiting()),
                3 => a.row.running.cmp(&b.row.running),
                4 => a.row.workers.cmp(&b.row.workers),
                5 => prio(a, 0).cmp(&prio(b, 0)),
                6 => prio(a, 1).cmp(&prio(b, 1)),
                7 => prio(a, 2).cmp(&prio(b, 2)),
                8 => cmp_f64(a.rates.jobs_in, b.rates.jobs_in),
                9 => cmp_f64(a.rates.jobs_out, b.rates.jobs_out),
                _ => a.oldest.seconds().total_cmp(&b.oldest.seconds()),
            };
            directed(key, sort.descending)
                .then_with(|| a.server.cmp(&b.server))
                .then_with(|| a.row.name.cmp(&b.row.name))
        });
        rows
    }

    /// Connections of the servers that answer, filtered and sorted.
    pub fn workers(&self) -> Vec<WorkerView<'_>> {
        let mut rows: Vec<WorkerView<'_>> = Vec::new();
        for (i, s) in self.servers.iter().enumerate() {
            let Some(snap) = s.live() else { continue };
            for row in &snap.workers {
                if self.hide_idle && row.functions.is_empty() {
                    continue;
                }
                let text = format!(
                    "{} {} {}",
                    row.address,
                    row.client_id,
                    row.functions.join(" ")
                );
                if !self.matches(&text) {
                    continue;
                }
                rows.push(WorkerView { server: i, row });
            }
        }
        let sort = self.sort(Panel::Workers);
        rows.sort_by(|a, b| {
            let key = match sort.column {
                0 => a.server.cmp(&b.server),
                1 => a.row.fd.cmp(&b.row.fd),
                2 => a.row.address.cmp(&b.row.address),
                3 => a.row.client_id.cmp(&b.row.client_id),
                _ => a.row.functions.len().cmp(&b.row.functions.len()),
            };
            directed(key, sort.descending)
                .then_with(|| a.server.cmp(&b.server))
                .then_with(|| a.row.fd.cmp(&b.row.fd))
        });
        rows
    }

    /// Jobs of the servers that answer, filtered and sorted.
    pub fn jobs(&self) -> Vec<JobView<'_>> {
        let mut rows: Vec<JobView<'_>> = Vec::new();
        for (i, s) in self.servers.iter().enumerate() {
            let Some(jobs) = s.live().and_then(|snap| snap.jobs.as_ref()) else {
                continue;
            };
            for row in jobs {
                if !self.matches(&row.handle) {
                    continue;
                }
                let seen = s.first_seen(&row.handle).map_or(Age::Unknown, |t| {
                    Age::AtLeast(self.now.saturating_duration_since(t))
                });
                rows.push(JobView {
                    server: i,
                    row,
                    seen,
                });
            }
        }
        let sort = self.sort(Panel::Jobs);
        rows.sort_by(|a, b| {
            let key = match sort.column {
                0 => a.server.cmp(&b.server),
                1 => a.row.handle.cmp(&b.row.handle),
                2 => a.row.retries.cmp(&b.row.retries),
                3 => a.row.ignore.cmp(&b.row.ignore),
                4 => a.row.queued.cmp(&b.row.queued),
                _ => a.seen.seconds().total_cmp(&b.seen.seconds()),
            };
            directed(key, sort.descending)
                .then_with(|| a.server.cmp(&b.server))
                .then_with(|| a.row.sequence().cmp(&b.row.sequence()))
                .then_with(|| a.row.handle.cmp(&b.row.handle))
        });
        rows
    }

    /// Sums over the servers that answer (not filtered).
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            servers: self.servers.len(),
            ..Totals::default()
        };
        for s in &self.servers {
            if matches!(s.health, Health::Down { .. }) {
                t.down += 1;
            }
            let Some(snap) = s.live() else { continue };
            t.up += 1;
            t.functions += snap.functions.len();
            for f in &snap.functions {
                t.waiting += f.waiting();
                t.running += f.running;
                t.workers += f.workers;
                for (sum, n) in t.priority.iter_mut().zip(f.priority.unwrap_or_default()) {
                    *sum += n;
                }
                if f.is_starved() {
                    t.starved += 1;
                }
            }
            t.rates.jobs_in = add(t.rates.jobs_in, s.rates.jobs_in);
            t.rates.jobs_out = add(t.rates.jobs_out, s.rates.jobs_out);
        }
        t
    }

    /// Totals history across servers, aligned by poll from the newest (the pollers share one
    /// interval): `(waiting, jobs in, jobs out)` per point, oldest first.
    pub fn total_history(&self) -> Vec<(u64, f64, f64)> {
        let len = self
            .servers
            .iter()
            .map(|s| s.history.len())
            .max()
            .unwrap_or(0);
        let mut out = vec![(0u64, 0.0, 0.0); len];
        for s in &self.servers {
            let skip = len - s.history.len();
            for (slot, p) in out.iter_mut().skip(skip).zip(&s.history) {
                slot.0 += p.waiting;
                slot.1 += p.rates.jobs_in.unwrap_or(0.0);
                slot.2 += p.rates.jobs_out.unwrap_or(0.0);
            }
        }
        out
    }
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

fn cmp_f64(a: Option<f64>, b: Option<f64>) -> Ordering {
    a.unwrap_or(-1.0).total_cmp(&b.unwrap_or(-1.0))
}

fn directed(o: Ordering, descending: bool) -> Ordering {
    if descending {
        o.reverse()
    } else {
        o
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::snapshot::Stats;

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

    fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn snap_event(server: usize, s: Snapshot) -> Event {
        Event::Snapshot {
            server,
            snapshot: Box::new(s),
        }
    }

    fn app(t0: Instant) -> App {
        App::new(
            vec!["127.0.0.1:4730".into()],
            Duration::from_secs(1),
            Duration::from_secs(300),
            t0,
        )
    }

    #[test]
    fn rates_from_queue_changes() {
        let t0 = Instant::now();
        let mut a = app(t0);
        a.handle(
            snap_event(0, snapshot(t0, vec![function("f", 10, 0, 0)])),
            t0,
        );
        assert_eq!(a.servers[0].function_rates.get("f"), None);
        let t1 = t0 + Duration::from_secs(2);
        a.handle(
            snap_event(0, snapshot(t1, vec![function("f", 16, 0, 0)])),
            t1,
        );
        let r = a.servers[0].function_rates["f"];
        assert_eq!(
            (r.jobs_in, r.jobs_out, r.exact),
            (Some(3.0), Some(0.0), false)
        );
        let t2 = t1 + Duration::from_secs(4);
        a.handle(
            snap_event(0, snapshot(t2, vec![function("f", 8, 0, 1)])),
            t2,
        );
        let r = a.servers[0].function_rates["f"];
        assert_eq!((r.jobs_in, r.jobs_out), (Some(0.0), Some(2.0)));
        assert_eq!(a.servers[0].history.len(), 3);
        assert_eq!(a.total_history()[1].0, 16);
    }

    #[test]
    fn rates_from_stats_counters_are_exact() {
        let t0 = Instant::now();
        let mut a = app(t0);
        let with_stats = |at, submitted: u64, finished: u64| {
            let mut s = snapshot(at, vec![function("f", 1, 0, 1)]);
            let report = gearman_shared::admin::StatsReport {
                server: Default::default(),
                functions: vec![gearman_shared::admin::FunctionStats {
                    name: "f".into(),
                    submitted,
                    completed: finished,
                    oldest_queued_ms: Some(7000),
                    ..Default::default()
                }],
            };
            s.stats = Some(Stats::from(&report));
            s
        };
        a.handle(snap_event(0, with_stats(t0, 100, 90)), t0);
        let t1 = t0 + Duration::from_secs(2);
        a.handle(snap_event(0, with_stats(t1, 120, 130)), t1);
        let r = a.servers[0].function_rates["f"];
        assert_eq!(
            (r.jobs_in, r.jobs_out, r.exact),
            (Some(10.0), Some(20.0), true)
        );
        assert_eq!(a.servers[0].rates, r);
        let f = a.functions();
        assert_eq!(f[0].oldest, Age::Exact(Duration::from_secs(7)));
    }

    #[test]
    fn rates_from_job_handles_count_jobs_that_came_and_went() {
        let t0 = Instant::now();
        let mut a = app(t0);
        let with_jobs = |at, jobs: Vec<JobRow>| {
            let mut s = snapshot(at, vec![function("f", jobs.len() as u64, 0, 1)]);
            s.jobs = Some(jobs);
            s
        };
        a.handle(snap_event(0, with_jobs(t0, vec![job(1), job(2)])), t0);
        let t1 = t0 + Duration::from_secs(1);
        // Jobs 3..=9 were created; 1, 2 and 3..=8 finished; 9 and 10 are there.
        a.handle(snap_event(0, with_jobs(t1, vec![job(9), job(10)])), t1);
        let r = a.servers[0].rates;
        assert_eq!((r.jobs_in, r.jobs_out), (Some(8.0), Some(8.0)));
        // Ages of jobs: first seen at t1.
        let t2 = t1 + Duration::from_secs(5);
        a.handle(Event::Tick, t2);
        assert_eq!(
            a.servers[0].oldest_job(t2),
            Age::AtLeast(Duration::from_secs(5))
        );
        assert_eq!(a.totals().rates.jobs_in, Some(8.0));
    }

    #[test]
    fn oldest_waiting_is_bounded_by_the_last_empty_poll() {
        let t0 = Instant::now();
        let mut a = app(t0);
        a.handle(
            snap_event(0, snapshot(t0, vec![function("f", 0, 0, 1)])),
            t0,
        );
        let t1 = t0 + Duration::from_secs(1);
        a.handle(
            snap_event(
                0,
                snapshot(t1, vec![function("f", 3, 1, 1), function("g", 2, 0, 0)]),
            ),
            t1,
        );
        let t2 = t1 + Duration::from_secs(10);
        a.handle(Event::Tick, t2);
        let rows = a.functions();
        let f = rows.iter().find(|v| v.row.name == "f").unwrap();
        let g = rows.iter().find(|v| v.row.name == "g").unwrap();
        assert_eq!(f.oldest, Age::AtMost(Duration::from_secs(11)));
        // g did not exist at t0, so nothing of it was waiting then.
        assert_eq!(g.oldest, Age::AtMost(Duration::from_secs(11)));
        assert_eq!(a.totals().starved, 1);
    }

    #[test]
    fn restart_resets_the_baseline() {
        let t0 = Instant::now();
        let mut a = app(t0);
        a.handle(
            snap_event(0, snapshot(t0, vec![function("f", 10, 0, 0)])),
            t0,
        );
        let t1 = t0 + Duration::from_secs(1);
        let mut s = snapshot(t1, vec![function("f", 0, 0, 0)]);
        s.pid = Some(43);
        a.handle(snap_event(0, s), t1);
        assert!(a.servers[0].function_rates.is_empty());
        assert_eq!(a.servers[0].history.len(), 1);
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

    #[test]
    fn history_is_trimmed_to_the_window() {
        let t0 = Instant::now();
        let mut a = App::new(
            vec!["a".into()],
            Duration::from_secs(1),
            Duration::from_secs(10),
            t0,
        );
        for i in 0..30 {
            let t = t0 + Duration::from_secs(i);
            a.handle(snap_event(0, snapshot(t, vec![])), t);
        }
        assert_eq!(a.servers[0].history.len(), 11);
    }

    #[test]
    fn keys_switch_panels_sort_filter_and_pause() {
        let t0 = Instant::now();
        let mut a = app(t0);
        a.handle(
            snap_event(
                0,
                snapshot(
                    t0,
                    vec![
                        function("alpha", 1, 0, 1),
                        function("beta", 5, 0, 1),
                        function("idle", 0, 0, 0),
                    ],
                ),
            ),
            t0,
        );
        let names =
            |a: &App| -> Vec<String> { a.functions().iter().map(|v| v.row.name.clone()).collect() };
        assert_eq!(names(&a), ["beta", "alpha", "idle"]);
        a.handle(key(KeyCode::Char('r')), t0);
        assert_eq!(names(&a), ["idle", "alpha", "beta"]);
        // With one server, `s` skips the hidden server column: Function, sorted by name.
        a.handle(key(KeyCode::Char('S')), t0);
        assert_eq!(a.sort(Panel::Functions).column, 1);
        assert_eq!(names(&a), ["alpha", "beta", "idle"]);
        a.handle(key(KeyCode::Char('S')), t0);
        assert_eq!(a.sort(Panel::Functions).column, 10);
        a.handle(key(KeyCode::Char('i')), t0);
        assert!(a.hide_idle);
        assert_eq!(a.functions().len(), 2);

        a.handle(key(KeyCode::Char('/')), t0);
        assert_eq!(a.mode, Mode::Filter);
        for c in "ALP".chars() {
            a.handle(key(KeyCode::Char(c)), t0);
        }
        a.handle(key(KeyCode::Enter), t0);
        assert_eq!((a.mode.clone(), a.filter.as_str()), (Mode::Normal, "ALP"));
        assert_eq!(names(&a), ["alpha"]);
        a.handle(key(KeyCode::Esc), t0);
        assert!(a.filter.is_empty());

        a.handle(key(KeyCode::Tab), t0);
        assert_eq!(a.panel, Panel::Workers);
        a.handle(key(KeyCode::BackTab), t0);
        a.handle(key(KeyCode::BackTab), t0);
        assert_eq!(a.panel, Panel::Charts);
        a.handle(key(KeyCode::Char('4')), t0);
        assert_eq!(a.panel, Panel::Servers);

        a.handle(key(KeyCode::Char('p')), t0);
        assert!(a.paused);
        let t1 = t0 + Duration::from_secs(1);
        a.handle(snap_event(0, snapshot(t1, vec![])), t1);
        assert_eq!(a.servers[0].snapshot.as_ref().map(|s| s.at), Some(t0));
        a.handle(key(KeyCode::Char('?')), t1);
        assert_eq!(a.mode, Mode::Help);
        a.handle(key(KeyCode::Char('x')), t1);
        assert_eq!(a.mode, Mode::Normal);
        assert_eq!(a.handle(key(KeyCode::Char('q')), t1), Some(Effect::Quit));
        let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(a.handle(ctrl_c, t1), Some(Effect::Quit));
    }

    #[test]
    fn selection_moves_and_clamps() {
        let t0 = Instant::now();
        let mut a = app(t0);
        let fs = (0..5)
            .map(|i| function(&format!("f{i}"), i, 0, 1))
            .collect();
        a.handle(snap_event(0, snapshot(t0, fs)), t0);
        a.handle(key(KeyCode::Down), t0);
        a.handle(key(KeyCode::Down), t0);
        assert_eq!(a.selection(Panel::Functions), Some(2));
        a.handle(key(KeyCode::PageDown), t0);
        assert_eq!(a.selection(Panel::Functions), Some(4));
        a.handle(key(KeyCode::Up), t0);
        assert_eq!(a.selection(Panel::Functions), Some(3));
        a.handle(key(KeyCode::Home), t0);
        assert_eq!(a.selection(Panel::Functions), Some(0));
        a.handle(key(KeyCode::Char('G')), t0);
        assert_eq!(a.selection(Panel::Functions), Some(4));
        assert_eq!(a.selection(Panel::Jobs), None);
    }

    #[test]
    fn actions_need_confirmation() {
        let t0 = Instant::now();
        let mut a = app(t0);
        let mut s = snapshot(
            t0,
            vec![function("busy", 2, 0, 1), function("idle", 0, 0, 0)],
        );
        s.jobs = Some(vec![job(7)]);
        a.handle(snap_event(0, s), t0);

        // Drop: only an idle function.
        a.handle(key(KeyCode::Char('d')), t0);
        assert_eq!(a.mode, Mode::Normal);
        assert!(a.message.as_ref().is_some_and(|m| m.error));
        a.handle(key(KeyCode::Down), t0);
        a.handle(key(KeyCode::Char('d')), t0);
        assert_eq!(
            a.mode,
            Mode::Confirm {
                server: 0,
                action: Action::DropFunction("idle".into())
            }
        );
        assert_eq!(a.handle(key(KeyCode::Char('n')), t0), None);
        assert_eq!(a.mode, Mode::Normal);

        // Cancel: from the Jobs panel.
        a.handle(key(KeyCode::Char('3')), t0);
        a.handle(key(KeyCode::Char('c')), t0);
        assert_eq!(
            a.handle(key(KeyCode::Char('y')), t0),
            Some(Effect::Run {
                server: 0,
                action: Action::CancelJob("H:host:7".into())
            })
        );

        // Shutdown: the server of the selected row.
        a.handle(key(KeyCode::Char('X')), t0);
        assert_eq!(
            a.handle(key(KeyCode::Char('y')), t0),
            Some(Effect::Run {
                server: 0,
                action: Action::Shutdown
            })
        );
        a.handle(
            Event::ActionDone {
                server: 0,
                action: Action::Shutdown,
                result: Err("server error: UNKNOWN_COMMAND".into()),
            },
            t0,
        );
        let m = a.message.clone().unwrap();
        assert!(m.error && m.text.contains("shutdown graceful"));
        // Messages expire.
        a.handle(Event::Tick, t0 + Duration::from_secs(60));
        assert_eq!(a.message, None);
    }

    #[test]
    fn totals_span_servers() {
        let t0 = Instant::now();
        let mut a = App::new(
            vec!["a:1".into(), "b:1".into()],
            Duration::from_secs(1),
            Duration::from_secs(60),
            t0,
        );
        a.handle(
            snap_event(0, snapshot(t0, vec![function("f", 3, 1, 2)])),
            t0,
        );
        a.handle(
            snap_event(1, snapshot(t0, vec![function("f", 4, 0, 0)])),
            t0,
        );
        let t = a.totals();
        assert_eq!(
            (t.up, t.waiting, t.running, t.workers, t.starved),
            (2, 6, 1, 2, 1)
        );
        assert_eq!(t.priority, [0, 6, 0]);
        assert_eq!(a.functions().len(), 2);
        // With two servers, the server column is sortable.
        a.handle(key(KeyCode::Char('s')), t0);
        assert_eq!(a.sort(Panel::Functions).column, 3);
        for _ in 0..8 {
            a.handle(key(KeyCode::Char('s')), t0);
        }
        assert_eq!(a.sort(Panel::Functions).column, 0);
    }
}
