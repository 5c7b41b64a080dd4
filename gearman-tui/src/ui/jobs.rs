//! The jobs panel: one row per job from `show jobs` (handle, retries, flags, first seen), the
//! target of `c` (cancel).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::Row;

use super::{age, panel_frame, panel_widths, render_panel_table, server_cell, DIM};
use crate::app::{App, Panel};

/// Draws the panel.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let rows = app.jobs();
    let live: Vec<_> = app.servers.iter().filter_map(|s| s.live()).collect();
    let total: usize = live
        .iter()
        .filter_map(|s| s.jobs.as_ref())
        .map(Vec::len)
        .sum();
    let why = || {
        if live.is_empty() {
            "No server is answering yet."
        } else if live.iter().all(|s| s.jobs.is_none()) {
            "`show jobs` is not polled (--no-jobs) or not answered by the server."
        } else if total == 0 {
            "No jobs."
        } else {
            "No job matches the filter (Esc clears it)."
        }
    };
    let Some(block) = panel_frame(app, "Jobs", rows.len(), total, why, area, buf) else {
        return;
    };
    let multi = app.multi_server();
    let widths = panel_widths(
        app,
        &[
            Constraint::Min(20),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(11),
            Constraint::Length(9),
        ],
    );
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let body: Vec<Row<'_>> = rows
        .iter()
        .map(|v| {
            let mut cells = Vec::new();
            if multi {
                cells.push(server_cell(app, v.server));
            }
            cells.extend([
                v.row.handle.clone(),
                v.row.retries.to_string(),
                yes_no(v.row.ignore),
                yes_no(v.row.queued),
                age(v.seen),
            ]);
            Row::new(cells).style(if v.row.ignore { DIM } else { Style::new() })
        })
        .collect();
    render_panel_table(app, Panel::Jobs, body, widths, None, block, area, buf);
}

#[cfg(test)]
mod tests {
    use crate::app::Panel;
    use crate::ui::tests::{draw_part, loaded_app};

    #[test]
    fn jobs_panel_scrolls_to_the_selection() {
        let mut app = loaded_app(Panel::Jobs);
        let now = app.now;
        for _ in 0..8 {
            app.handle(
                crate::event::Event::Key(crossterm::event::KeyEvent::new(
                    crossterm::event::KeyCode::Down,
                    crossterm::event::KeyModifiers::NONE,
                )),
                now,
            );
        }
        let t = draw_part(70, 8, |area, buf| super::render(&app, area, buf));
        insta::assert_snapshot!(t.backend());
    }
}
