//! Key handling: what each key does in each mode, including asking for confirmation before
//! an action is sent to a server.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{App, Effect, Panel, ServerState, Sort};
use crate::event::Action;

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

impl App {
    pub(super) fn on_key(&mut self, key: KeyEvent) -> Option<Effect> {
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::tests::{app, function, job, key, snap_event, snapshot};
    use crate::event::Event;
    use std::time::{Duration, Instant};

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
}
