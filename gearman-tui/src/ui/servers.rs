//! The servers panel: one row per server (state, version, uptime, refresh, counts, rates), the
//! target of `X` (graceful shutdown), and the selected server's `stats` below.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap,
};

use super::{age, duration, rate, scroll_offset, ALERT, DIM, HEADER, SELECTED};
use crate::app::{App, Health, Panel, ServerState};

const COLUMNS: [&str; 12] = [
    "Server",
    "State",
    "Version",
    "PID",
    "Uptime",
    "Refreshed",
    "Functions",
    "Waiting",
    "Workers",
    "Jobs",
    "In/s",
    "Out/s",
];

/// Draws the panel.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let [table_area, detail_area] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(5)]).areas(area);
    let body: Vec<Row<'_>> = app.servers.iter().map(|s| row(app, s)).collect();
    let widths = [
        Constraint::Length(22),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    let selected = app.selection(Panel::Servers);
    let mut state = TableState::new()
        .with_selected(selected)
        .with_offset(scroll_offset(selected, table_area.height.saturating_sub(3)));
    let block = Block::new().borders(Borders::ALL).title(Line::from(vec![
        Span::raw(" Servers "),
        Span::styled(format!("{} ", app.servers.len()), DIM),
    ]));
    StatefulWidget::render(
        Table::new(body, widths)
            .header(Row::new(COLUMNS).style(HEADER))
            .block(block)
            .row_highlight_style(SELECTED),
        table_area,
        buf,
        &mut state,
    );
    if let Some(s) = selected.and_then(|i| app.servers.get(i)) {
        detail(app, s, detail_area, buf);
    }
}

fn row<'a>(app: &App, s: &'a ServerState) -> Row<'a> {
    let now = app.now;
    let (state, style) = match &s.health {
        Health::Connecting => ("…", DIM),
        Health::Up => ("up", Style::new().fg(Color::Green)),
        Health::Down { .. } => ("DOWN", ALERT),
    };
    let mut cells = vec![s.addr.clone(), state.to_string()];
    match s.live() {
        Some(snap) => {
            let waiting: u64 = snap.functions.iter().map(|f| f.waiting()).sum();
            let workers = snap
                .workers
                .iter()
                .filter(|w| !w.functions.is_empty())
                .count();
            cells.extend([
                snap.version.clone().unwrap_or_default(),
                snap.pid.map_or(String::new(), |p| p.to_string()),
                s.uptime(now).map_or(String::new(), duration),
                format!("{} ago", duration(now.saturating_duration_since(snap.at))),
                snap.functions.len().to_string(),
                waiting.to_string(),
                workers.to_string(),
                snap.jobs
                    .as_ref()
                    .map_or("-".into(), |j| j.len().to_string()),
                rate(s.rates.jobs_in),
                rate(s.rates.jobs_out),
            ]);
            Row::new(cells)
        }
        None => Row::new(cells).style(style),
    }
}

fn detail(app: &App, s: &ServerState, area: Rect, buf: &mut Buffer) {
    let mut lines = Vec::new();
    match &s.health {
        Health::Down { since, error } => lines.push(Line::styled(
            format!(
                "not answering for {}: {error}",
                duration(app.now.saturating_duration_since(*since))
            ),
            ALERT,
        )),
        Health::Connecting => lines.push(Line::styled("connecting…", DIM)),
        Health::Up => {}
    }
    if let Some(snap) = s.live() {
        let oldest = age(s.oldest_job(app.now));
        if !oldest.is_empty() {
            lines.push(Line::raw(format!("oldest job: {oldest}")));
        }
        match &snap.stats {
            Some(stats) => {
                let mut text: Vec<String> = stats
                    .server
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                text.push(format!("submitted={}", stats.submitted));
                text.push(format!("finished={}", stats.finished));
                let failed: u64 = stats.functions.values().map(|f| f.failed).sum();
                text.push(format!("failed={failed}"));
                lines.push(Line::raw(format!("stats: {}", text.join("  "))));
            }
            None => lines.push(Line::styled(
                "stats: not supported by this server (rates come from job handles and queue changes)",
                DIM,
            )),
        }
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(
            Block::new()
                .borders(Borders::ALL)
                .title(format!(" {} ", s.addr)),
        )
        .render(area, buf);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::app::Panel;
    use crate::event::Event;
    use crate::ui::tests::{draw_part, loaded_app};

    #[test]
    fn servers_panel() {
        let app = loaded_app(Panel::Servers);
        let t = draw_part(110, 10, |area, buf| super::render(&app, area, buf));
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn servers_panel_down() {
        let mut app = loaded_app(Panel::Servers);
        let at = app.now;
        app.handle(
            Event::PollError {
                server: 0,
                at,
                error: "timed out waiting for the server's reply".into(),
            },
            at,
        );
        app.handle(Event::Tick, at + Duration::from_secs(75));
        let t = draw_part(110, 10, |area, buf| super::render(&app, area, buf));
        insta::assert_snapshot!(t.backend());
    }
}
