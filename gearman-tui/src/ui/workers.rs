//! The workers panel: one row per connection (fd, address, client id, functions).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::Row;

use super::{panel_frame, panel_widths, render_panel_table, server_cell, DIM};
use crate::app::{App, Panel};

/// Draws the panel.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let rows = app.workers();
    let total: usize = app
        .servers
        .iter()
        .filter_map(|s| s.live())
        .map(|s| s.workers.len())
        .sum();
    let why = || {
        if app.servers.iter().all(|s| s.live().is_none()) {
            "No server is answering yet."
        } else {
            "No connection matches (Esc clears the filter; i shows connections without functions)."
        }
    };
    let Some(block) = panel_frame(app, "Connections", rows.len(), total, why, area, buf) else {
        return;
    };
    let multi = app.multi_server();
    let widths = panel_widths(
        app,
        &[
            Constraint::Length(6),
            Constraint::Length(16),
            Constraint::Length(20),
            Constraint::Min(20),
        ],
    );
    let body: Vec<Row<'_>> = rows
        .iter()
        .map(|v| {
            let mut cells = Vec::new();
            if multi {
                cells.push(server_cell(app, v.server));
            }
            cells.extend([
                v.row.fd.to_string(),
                v.row.address.clone(),
                v.row.client_id.clone(),
                v.row.functions.join(" "),
            ]);
            let style = if v.row.functions.is_empty() {
                DIM
            } else {
                Style::new()
            };
            Row::new(cells).style(style)
        })
        .collect();
    render_panel_table(app, Panel::Workers, body, widths, None, block, area, buf);
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use crate::app::Panel;
    use crate::event::Event;
    use crate::ui::tests::{draw_part, loaded_app};

    #[test]
    fn workers_panel() {
        let app = loaded_app(Panel::Workers);
        let t = draw_part(90, 7, |area, buf| super::render(&app, area, buf));
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn workers_panel_idle_hidden_sorted_by_client_id() {
        let mut app = loaded_app(Panel::Workers);
        let now = app.now;
        for c in ['i', 's', 's', 's', 'r'] {
            app.handle(
                Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
                now,
            );
        }
        let t = draw_part(90, 6, |area, buf| super::render(&app, area, buf));
        insta::assert_snapshot!(t.backend());
    }
}
