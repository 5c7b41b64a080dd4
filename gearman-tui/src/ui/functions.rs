//! The functions panel: waiting, running, workers, queued per priority, rates and oldest job
//! per function, alerts highlighted, with a totals row.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Cell, Row};

use super::{age, panel_frame, panel_widths, rate, render_panel_table, server_cell, ALERT, DIM};
use crate::app::{App, FunctionView, Panel};

/// Draws the panel.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let rows = app.functions();
    let total: usize = app
        .servers
        .iter()
        .filter_map(|s| s.live())
        .map(|s| s.functions.len())
        .sum();
    let why = || {
        if app.servers.iter().all(|s| s.live().is_none()) {
            "No server is answering yet."
        } else if total == 0 {
            "No functions registered: no worker has connected and no job was submitted."
        } else {
            "No function matches the filter (Esc clears it; i shows idle rows)."
        }
    };
    let Some(block) = panel_frame(app, "Functions", rows.len(), total, why, area, buf) else {
        return;
    };
    let multi = app.multi_server();
    let widths = panel_widths(
        app,
        &[
            Constraint::Min(16),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(8),
        ],
    );
    let body: Vec<Row<'_>> = rows.iter().map(|v| row(app, v, multi)).collect();
    let footer = totals_row(&rows, multi);
    render_panel_table(
        app,
        Panel::Functions,
        body,
        widths,
        Some(footer),
        block,
        area,
        buf,
    );
}

fn row<'a>(app: &App, v: &FunctionView<'a>, multi: bool) -> Row<'a> {
    let f = v.row;
    let (name, style) = if f.is_starved() {
        (format!("⚠ {}", f.name), ALERT)
    } else if f.is_idle() {
        (f.name.clone(), DIM)
    } else {
        (f.name.clone(), Style::new())
    };
    let prio = |i: usize| f.priority.map_or("-".to_string(), |p| p[i].to_string());
    let mut cells = Vec::new();
    if multi {
        cells.push(Cell::from(server_cell(app, v.server)));
    }
    let workers = Cell::from(f.workers.to_string());
    cells.extend([
        Cell::from(name),
        Cell::from(f.waiting().to_string()),
        Cell::from(f.running.to_string()),
        workers,
        Cell::from(prio(0)),
        Cell::from(prio(1)),
        Cell::from(prio(2)),
        Cell::from(bounded_rate(v.rates.jobs_in, v.rates.exact)),
        Cell::from(bounded_rate(v.rates.jobs_out, v.rates.exact)),
        Cell::from(age(v.oldest)),
    ]);
    Row::new(cells).style(style)
}

/// A rate, marked `≥` when it is a lower bound (from queue changes, not counters).
fn bounded_rate(r: Option<f64>, exact: bool) -> String {
    match r {
        Some(_) if !exact => format!("≥{}", rate(r)),
        _ => rate(r),
    }
}

fn totals_row(rows: &[FunctionView<'_>], multi: bool) -> Row<'static> {
    let sum = |f: &dyn Fn(&FunctionView<'_>) -> u64| rows.iter().map(f).sum::<u64>().to_string();
    let exact = rows.iter().all(|v| v.rates.exact);
    let sum_rate = |f: &dyn Fn(&FunctionView<'_>) -> Option<f64>| {
        let known: Vec<f64> = rows.iter().filter_map(f).collect();
        bounded_rate((!known.is_empty()).then(|| known.iter().sum()), exact)
    };
    let prio = |i: usize| sum(&|v| v.row.priority.map_or(0, |p| p[i]));
    let mut cells = Vec::new();
    if multi {
        cells.push(String::new());
    }
    cells.extend([
        "TOTAL".to_string(),
        sum(&|v| v.row.waiting()),
        sum(&|v| v.row.running),
        sum(&|v| v.row.workers),
        prio(0),
        prio(1),
        prio(2),
        sum_rate(&|v| v.rates.jobs_in),
        sum_rate(&|v| v.rates.jobs_out),
        String::new(),
    ]);
    Row::new(cells).style(Style::new().add_modifier(Modifier::BOLD))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, Instant};

    use ratatui::style::Color;

    use crate::app::tests::{function, snapshot};
    use crate::app::{App, Panel};
    use crate::event::Event;
    use crate::ui::tests::{draw_part, loaded_app};

    fn render(app: &App, w: u16, h: u16) -> ratatui::Terminal<ratatui::backend::TestBackend> {
        draw_part(w, h, |area, buf| super::render(app, area, buf))
    }

    #[test]
    fn functions_loaded_with_an_alert() {
        let app = loaded_app(Panel::Functions);
        let t = render(&app, 100, 9);
        insta::assert_snapshot!(t.backend());
        // The starved function's row is red.
        let buf = t.backend().buffer();
        let y = (0..9)
            .find(|&y| {
                (0..100)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .contains("resize_image")
            })
            .unwrap();
        assert_eq!(buf[(5, y)].fg, Color::Red);
    }

    #[test]
    fn functions_empty() {
        let t0 = Instant::now();
        let mut app = App::new(
            vec!["127.0.0.1:4730".into()],
            Duration::from_secs(1),
            Duration::from_secs(60),
            t0,
        );
        insta::assert_snapshot!("functions_no_server_yet", render(&app, 80, 4).backend());
        app.handle(
            Event::Snapshot {
                server: 0,
                snapshot: Box::new(snapshot(t0, vec![])),
            },
            t0,
        );
        insta::assert_snapshot!("functions_none_registered", render(&app, 80, 4).backend());
    }

    #[test]
    fn functions_of_two_servers_filtered_one_down() {
        let t0 = Instant::now();
        let mut app = App::new(
            vec![
                "10.0.0.1:4730".into(),
                "10.0.0.2:4730".into(),
                "10.0.0.3:4730".into(),
            ],
            Duration::from_secs(1),
            Duration::from_secs(60),
            t0,
        );
        for server in 0..2 {
            let fs = vec![
                function("email", 5 + server as u64, 1, 2),
                function("resize", 1, 1, 1),
            ];
            app.handle(
                Event::Snapshot {
                    server,
                    snapshot: Box::new(snapshot(t0, fs)),
                },
                t0,
            );
        }
        app.handle(
            Event::PollError {
                server: 2,
                at: t0,
                error: "timed out".into(),
            },
            t0,
        );
        app.filter = "mail".into();
        insta::assert_snapshot!(render(&app, 110, 7).backend());
    }
}
