//! Drawing: the screen layout (`impl Widget for &App`) and the formatting shared by the panels
//! in `ui/*.rs`, one file per panel.

mod charts;
mod footer;
mod functions;
mod header;
mod help;
mod jobs;
mod servers;
mod workers;

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Tabs, Widget};

use crate::app::{Age, App, Mode, Panel, Sort};

/// Style of a function with waiting jobs and no workers, and of a down server.
pub const ALERT: Style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
/// Style of table headers.
pub const HEADER: Style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
/// Style of the selected row.
pub const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);
/// Style of secondary text.
pub const DIM: Style = Style::new().fg(Color::DarkGray);

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let header_height = header::height(self);
        let strip = self.panel != Panel::Charts && area.height >= 24;
        let [header_area, tabs_area, main_area, strip_area, footer_area] = Layout::vertical([
            Constraint::Length(header_height),
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(if strip { 4 } else { 0 }),
            Constraint::Length(1),
        ])
        .areas(area);
        header::render(self, header_area, buf);
        render_tabs(self, tabs_area, buf);
        match self.panel {
            Panel::Functions => functions::render(self, main_area, buf),
            Panel::Workers => workers::render(self, main_area, buf),
            Panel::Jobs => jobs::render(self, main_area, buf),
            Panel::Servers => servers::render(self, main_area, buf),
            Panel::Charts => charts::render(self, main_area, buf),
        }
        if strip {
            charts::render_strip(self, strip_area, buf);
        }
        footer::render(self, footer_area, buf);
        if self.mode == Mode::Help {
            help::render(self, area, buf);
        }
    }
}

fn render_tabs(app: &App, area: Rect, buf: &mut Buffer) {
    let titles = Panel::ALL
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{} {}", i + 1, p.title()));
    Tabs::new(titles)
        .select(app.panel.index())
        .highlight_style(
            Style::new()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        )
        .divider("│")
        .render(area, buf);
}

/// The header row of a sortable table, the sorted column marked ▲ or ▼; `skip_server` drops
/// column 0.
pub fn header_row(columns: &[&str], sort: Sort, skip_server: bool) -> Row<'static> {
    let cells = columns
        .iter()
        .enumerate()
        .filter(|(i, _)| !(skip_server && *i == 0))
        .map(|(i, name)| {
            if i == sort.column {
                let arrow = if sort.descending { "▼" } else { "▲" };
                Line::from(vec![Span::raw(name.to_string()), Span::raw(arrow)])
            } else {
                Line::from(name.to_string())
            }
        });
    Row::new(cells).style(HEADER)
}

/// The block title of a table panel: name, row counts, sort and filter.
pub fn table_title(app: &App, name: &str, shown: usize, total: usize) -> Line<'static> {
    let mut parts = vec![Span::raw(format!(" {name} "))];
    parts.push(Span::styled(
        if shown == total {
            format!("{total} ")
        } else {
            format!("{shown} of {total} ")
        },
        DIM,
    ));
    if !app.filter.is_empty() {
        parts.push(Span::styled(
            format!("filter \"{}\" ", app.filter),
            Style::new().fg(Color::Cyan),
        ));
    }
    if app.hide_idle {
        parts.push(Span::styled("idle hidden ", DIM));
    }
    let down = app
        .servers
        .iter()
        .filter(|s| matches!(s.health, crate::app::Health::Down { .. }))
        .count();
    if down > 0 {
        parts.push(Span::styled(
            format!("{down} server{} not answering ", plural(down)),
            ALERT,
        ));
    }
    Line::from(parts)
}

/// A table panel's frame, titled with its counts. With no row to show it also draws
/// `why()`, the reason, and returns `None`: the panel is done.
pub fn panel_frame(
    app: &App,
    name: &str,
    shown: usize,
    total: usize,
    why: impl FnOnce() -> &'static str,
    area: Rect,
    buf: &mut Buffer,
) -> Option<ratatui::widgets::Block<'static>> {
    use ratatui::widgets::{Block, Borders, Paragraph};
    let block = Block::new()
        .borders(Borders::ALL)
        .title(table_title(app, name, shown, total));
    if shown > 0 {
        return Some(block);
    }
    Paragraph::new(Line::styled(why(), DIM))
        .block(block)
        .render(area, buf);
    None
}

/// A table's column widths, after the server column when several servers are shown.
pub fn panel_widths(app: &App, columns: &[Constraint]) -> Vec<Constraint> {
    let server = app.multi_server().then_some(Constraint::Length(21));
    server.into_iter().chain(columns.iter().copied()).collect()
}

/// The server column's cell of a row that came from server number `server`.
pub fn server_cell(app: &App, server: usize) -> String {
    app.servers
        .get(server)
        .map_or(String::new(), |s| s.addr.clone())
}

/// Draws a panel's table: the header with the sort marker, the rows, an optional footer,
/// scrolled so that the panel's selection shows.
#[allow(clippy::too_many_arguments)]
pub fn render_panel_table<'a>(
    app: &App,
    panel: Panel,
    body: Vec<Row<'a>>,
    widths: Vec<Constraint>,
    footer: Option<Row<'a>>,
    block: ratatui::widgets::Block<'a>,
    area: Rect,
    buf: &mut Buffer,
) {
    use ratatui::widgets::{StatefulWidget, Table, TableState};
    let selected = app.selection(panel);
    // Borders and header take three rows, a footer one more.
    let chrome = 3 + u16::from(footer.is_some());
    let mut state = TableState::new()
        .with_selected(selected)
        .with_offset(scroll_offset(selected, area.height.saturating_sub(chrome)));
    let mut table = Table::new(body, widths)
        .header(header_row(
            panel.columns(),
            app.sort(panel),
            !app.multi_server(),
        ))
        .block(block)
        .row_highlight_style(SELECTED);
    if let Some(footer) = footer {
        table = table.footer(footer);
    }
    StatefulWidget::render(table, area, buf, &mut state);
}

/// The first visible row so that `selected` shows in a table body of `height` rows.
pub fn scroll_offset(selected: Option<usize>, height: u16) -> usize {
    let height = usize::from(height.max(1));
    selected.map_or(0, |s| s.saturating_sub(height - 1))
}

/// `s` for counts other than one.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A short duration: `7s`, `1m05s`, `2h03m`, `3d04h`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A rate per second: `-` when unknown, else 0, 0.5, 12, 1.2k, 3.4M.
pub fn rate(r: Option<f64>) -> String {
    match r {
        None => "-".into(),
        Some(r) if r <= 0.0 => "0".into(),
        Some(r) if r < 10.0 => {
            let s = format!("{r:.1}");
            s.strip_suffix(".0").map_or(s.clone(), str::to_string)
        }
        Some(r) if r < 10_000.0 => format!("{r:.0}"),
        Some(r) if r < 10_000_000.0 => format!("{:.1}k", r / 1000.0),
        Some(r) => format!("{:.1}M", r / 1_000_000.0),
    }
}

/// An age as known: blank, `7s`, `≤11s` or `≥5s`.
pub fn age(a: Age) -> String {
    match a {
        Age::Unknown => String::new(),
        Age::Exact(d) => duration(d),
        Age::AtMost(d) => format!("≤{}", duration(d)),
        Age::AtLeast(d) => format!("≥{}", duration(d)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use std::time::Instant;

    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use crate::app::tests::{function, job, snapshot};
    use crate::event::Event;
    use crate::snapshot::{Snapshot, WorkerRow};

    /// Renders the whole screen at this size.
    pub(crate) fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| f.render_widget(app, f.area())).unwrap();
        terminal
    }

    /// Renders one part of the screen, filling the whole terminal.
    pub(crate) fn draw_part(
        width: u16,
        height: u16,
        render: impl FnOnce(Rect, &mut Buffer),
    ) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|f| {
                let area = f.area();
                render(area, f.buffer_mut());
            })
            .unwrap();
        terminal
    }

    fn worker(fd: i64, id: &str, functions: &[&str]) -> WorkerRow {
        WorkerRow {
            fd,
            address: "127.0.0.1".into(),
            client_id: id.into(),
            functions: functions.iter().map(|f| f.to_string()).collect(),
        }
    }

    fn busy_snapshot(at: Instant, total_resize: u64, jobs: Vec<u64>) -> Snapshot {
        let mut s = snapshot(
            at,
            vec![
                function("reverse", total_resize, 2, 3),
                function("resize_image", 4, 0, 0),
                function("old_report", 0, 0, 0),
            ],
        );
        s.workers = vec![
            worker(33, "worker-1", &["reverse"]),
            worker(34, "worker-2", &["reverse", "thumbnail"]),
            worker(35, "-", &[]),
        ];
        s.jobs = Some(jobs.into_iter().map(job).collect());
        s
    }

    /// A loaded server seen for 20 polls, then a tick 1.5 s after the last one.
    pub(crate) fn loaded_app(panel: Panel) -> App {
        let t0 = Instant::now();
        let mut app = App::new(
            vec!["127.0.0.1:4730".into()],
            Duration::from_secs(1),
            Duration::from_secs(300),
            t0,
        );
        for i in 0..20u64 {
            let t = t0 + Duration::from_secs(i);
            let depth = 10 + (i % 7) * 3;
            let jobs: Vec<u64> = (i * 5..i * 5 + depth + 4).collect();
            app.handle(
                Event::Snapshot {
                    server: 0,
                    snapshot: Box::new(busy_snapshot(t, depth, jobs)),
                },
                t,
            );
        }
        app.handle(Event::Tick, t0 + Duration::from_millis(19_500));
        app.panel = panel;
        app
    }

    #[test]
    fn whole_screen_loaded() {
        let app = loaded_app(Panel::Functions);
        insta::assert_snapshot!(draw(&app, 110, 28).backend());
    }

    #[test]
    fn whole_screen_server_down_with_alert() {
        let mut app = loaded_app(Panel::Functions);
        app.servers
            .push(crate::app::tests::down_server("10.1.2.3:4730", app.now));
        insta::assert_snapshot!(draw(&app, 110, 24).backend());
    }

    #[test]
    fn whole_screen_small_terminal() {
        let app = loaded_app(Panel::Functions);
        insta::assert_snapshot!(draw(&app, 60, 12).backend());
    }

    #[test]
    fn formats() {
        assert_eq!(duration(Duration::from_secs(65)), "1m05s");
        assert_eq!(duration(Duration::from_secs(7380)), "2h03m");
        assert_eq!(duration(Duration::from_secs(90_000)), "1d01h");
        assert_eq!(rate(Some(2.0)), "2");
        assert_eq!(rate(Some(0.25)), "0.2");
        assert_eq!(rate(Some(12_345.0)), "12.3k");
        assert_eq!(rate(None), "-");
        assert_eq!(age(Age::AtMost(Duration::from_secs(3))), "≤3s");
        assert_eq!(scroll_offset(Some(10), 5), 6);
        assert_eq!(scroll_offset(Some(2), 5), 0);
    }
}
