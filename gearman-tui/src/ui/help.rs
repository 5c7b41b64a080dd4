//! The help overlay: every key, and where the numbers come from.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use super::{DIM, HEADER};
use crate::app::App;

const KEYS: [(&str, &str); 16] = [
    ("q, Ctrl-C", "quit"),
    ("Tab, Shift-Tab, ←/→, 1-5", "switch panel"),
    ("↑/↓, j/k, PgUp/PgDn, g/G", "move the selection"),
    ("s / S", "sort by the next / previous column"),
    ("r", "reverse the sort"),
    ("/", "filter by name (Enter keeps, Esc clears)"),
    ("i", "hide idle functions and connections without functions"),
    ("p, Space", "pause / resume refreshing"),
    ("c", "cancel the selected job (Jobs panel)"),
    ("d", "drop the selected idle function (Functions panel)"),
    ("X", "shut down the selected row's server gracefully"),
    ("y", "confirm an action (any other key cancels it)"),
    ("?, F1", "this help (any key closes it)"),
    ("Esc", "clear the filter and the message"),
    ("⚠ red row", "jobs are waiting and no worker can run them"),
    ("≤ / ≥", "a bound: at most / at least"),
];

/// Draws the overlay centred on `area`.
pub fn render(_app: &App, area: Rect, buf: &mut Buffer) {
    let [area] = Layout::horizontal([Constraint::Max(86)])
        .flex(Flex::Center)
        .areas(area);
    let [area] = Layout::vertical([Constraint::Max(26)])
        .flex(Flex::Center)
        .areas(area);
    let mut lines: Vec<Line<'_>> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>26}  "), HEADER),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Rates and ages come from `stats` counters when the server has them (ours). Else \
         (the C gearmand): server-wide rates from job handle numbers, which count every job, \
         even those that came and went between two polls; per-function rates from queue \
         changes (≥, lower bounds); a function's oldest job is ≤ the time since a poll last \
         saw its queue empty; a job's age is ≥ the time since it was first seen.",
        DIM,
    ));
    Clear.render(area, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(
            Block::new()
                .borders(Borders::ALL)
                .title(" Help ")
                .title_style(Style::new().add_modifier(Modifier::BOLD)),
        )
        .render(area, buf);
}

#[cfg(test)]
mod tests {
    use crate::app::{Mode, Panel};
    use crate::ui::tests::{draw, loaded_app};

    #[test]
    fn help_overlay() {
        let mut app = loaded_app(Panel::Functions);
        app.mode = Mode::Help;
        let t = draw(&app, 100, 30);
        insta::assert_snapshot!(t.backend());
    }
}
