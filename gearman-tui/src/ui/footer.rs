//! The footer: key hints, the filter being typed, a confirmation prompt or an action's result.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::ALERT;
use crate::app::{App, Mode};
use crate::event::Action;

/// Keys and what they do, as shown in the footer.
pub const KEYS: [(&str, &str); 11] = [
    ("q", "quit"),
    ("Tab", "panel"),
    ("s", "sort"),
    ("r", "reverse"),
    ("/", "filter"),
    ("i", "idle"),
    ("p", "pause"),
    ("c", "cancel job"),
    ("d", "drop function"),
    ("X", "shutdown"),
    ("?", "help"),
];

/// Draws the footer.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let key_style = Style::new()
        .fg(Color::Black)
        .bg(Color::Cyan)
        .add_modifier(Modifier::BOLD);
    let line = match &app.mode {
        Mode::Filter => Line::from(vec![
            Span::styled(" filter ", key_style),
            Span::raw(format!(" {}", app.filter)),
            Span::styled("█", Style::new().add_modifier(Modifier::SLOW_BLINK)),
            Span::raw("   Enter keep · Esc clear"),
        ]),
        Mode::Confirm { server, action } => {
            let addr = app.servers.get(*server).map_or("?", |s| s.addr.as_str());
            let question = match action {
                Action::CancelJob(h) => format!("Cancel job {h} on {addr}?"),
                Action::DropFunction(f) => format!("Drop function {f} on {addr}?"),
                Action::Shutdown => {
                    format!("Shut down {addr} gracefully (it finishes running jobs, then exits)?")
                }
            };
            Line::from(vec![
                Span::styled(
                    format!(" {question} "),
                    Style::new()
                        .fg(Color::Black)
                        .bg(Color::Yellow)
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw("  y: yes · any other key: no"),
            ])
        }
        Mode::Normal | Mode::Help => match &app.message {
            Some(m) => Line::styled(
                format!(" {}", m.text),
                if m.error {
                    ALERT
                } else {
                    Style::new().fg(Color::Green)
                },
            ),
            None => {
                let mut spans = Vec::new();
                for (key, what) in KEYS {
                    spans.push(Span::raw(" "));
                    spans.push(Span::styled(key, key_style));
                    spans.push(Span::raw(format!(" {what} ")));
                }
                Line::from(spans)
            }
        },
    };
    Paragraph::new(line).render(area, buf);
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use crate::app::Panel;
    use crate::event::Event;
    use crate::ui::tests::{draw_part, loaded_app};

    fn press(app: &mut crate::app::App, code: KeyCode) {
        let now = app.now;
        app.handle(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)), now);
    }

    #[test]
    fn footer_states() {
        let mut app = loaded_app(Panel::Jobs);
        let shot = |app: &crate::app::App| {
            let t = draw_part(120, 1, |area, buf| super::render(app, area, buf));
            t.backend().to_string()
        };
        let keys = shot(&app);
        press(&mut app, KeyCode::Char('c'));
        let confirm = shot(&app);
        press(&mut app, KeyCode::Char('n'));
        let answered = shot(&app);
        press(&mut app, KeyCode::Esc);
        press(&mut app, KeyCode::Char('/'));
        press(&mut app, KeyCode::Char('r'));
        press(&mut app, KeyCode::Char('e'));
        let filter = shot(&app);
        insta::assert_snapshot!(format!("{keys}{confirm}{answered}{filter}"));
    }
}
