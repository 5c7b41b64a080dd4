//! Queue depth and throughput over the last minutes: full charts in the charts panel and a
//! two-sparkline strip under the other panels.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Sparkline, Widget,
};

use super::{duration, rate, DIM};
use crate::app::App;

/// Colours of successive servers' lines.
const PALETTE: [Color; 6] = [
    Color::Cyan,
    Color::Magenta,
    Color::Yellow,
    Color::Blue,
    Color::LightGreen,
    Color::LightRed,
];

/// Draws the charts panel.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let history = app.total_history();
    if history.len() < 2 {
        Paragraph::new(Line::styled(
            "Collecting history: the charts start after two polls.",
            DIM,
        ))
        .block(Block::new().borders(Borders::ALL).title(" Charts "))
        .render(area, buf);
        return;
    }
    let [depth_area, rate_area] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let step = app.interval.as_secs_f64();
    let x = |k: usize, len: usize| -((len - 1 - k) as f64) * step;

    // Queue depth: one line per server, and the total when there are several.
    let mut depth: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for s in &app.servers {
        let len = s.history.len();
        let points = s
            .history
            .iter()
            .enumerate()
            .map(|(k, p)| (x(k, len), p.waiting as f64))
            .collect();
        depth.push((s.addr.clone(), points));
    }
    if app.multi_server() {
        let len = history.len();
        let total = history
            .iter()
            .enumerate()
            .map(|(k, p)| (x(k, len), p.0 as f64))
            .collect();
        depth.push(("total".into(), total));
    }
    let len = history.len();
    let jobs_in: Vec<(f64, f64)> = history
        .iter()
        .enumerate()
        .map(|(k, p)| (x(k, len), p.1))
        .collect();
    let jobs_out: Vec<(f64, f64)> = history
        .iter()
        .enumerate()
        .map(|(k, p)| (x(k, len), p.2))
        .collect();

    let span = app
        .history
        .as_secs_f64()
        .min((len - 1) as f64 * step)
        .max(step);
    let depth_sets: Vec<Dataset<'_>> = depth
        .iter()
        .enumerate()
        .map(|(i, (name, points))| {
            let color = if name == "total" {
                Color::White
            } else {
                PALETTE[i % PALETTE.len()]
            };
            dataset(name.clone(), points, color)
        })
        .collect();
    let depth_max = depth
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.0, f64::max);
    chart(
        depth_sets,
        " Queue depth (jobs waiting) ",
        span,
        depth_max,
        |v| format!("{v:.0}"),
    )
    .render(depth_area, buf);

    let rate_max = jobs_in
        .iter()
        .chain(&jobs_out)
        .map(|(_, y)| *y)
        .fold(0.0, f64::max);
    chart(
        vec![
            dataset("in/s".into(), &jobs_in, Color::Cyan),
            dataset("out/s".into(), &jobs_out, Color::Green),
        ],
        " Throughput (jobs per second, all servers) ",
        span,
        rate_max,
        |v| rate(Some(v)),
    )
    .render(rate_area, buf);
}

fn dataset(name: String, points: &[(f64, f64)], color: Color) -> Dataset<'_> {
    Dataset::default()
        .name(name)
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(color))
        .data(points)
}

fn chart<'a>(
    sets: Vec<Dataset<'a>>,
    title: &'a str,
    span: f64,
    max: f64,
    label: impl Fn(f64) -> String,
) -> Chart<'a> {
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let ago = |s: f64| format!("-{}", duration(std::time::Duration::from_secs_f64(s)));
    Chart::new(sets)
        .block(Block::new().borders(Borders::ALL).title(title))
        .x_axis(Axis::default().style(DIM).bounds([-span, 0.0]).labels([
            ago(span),
            ago(span / 2.0),
            "now".to_string(),
        ]))
        .y_axis(Axis::default().style(DIM).bounds([0.0, top]).labels([
            "0".to_string(),
            label(top / 2.0),
            label(top),
        ]))
}

/// Draws the strip of two sparklines: total jobs waiting and total jobs out per second.
pub fn render_strip(app: &App, area: Rect, buf: &mut Buffer) {
    let history = app.total_history();
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let width = usize::from(left.width.saturating_sub(2));
    let recent = &history[history.len().saturating_sub(width)..];

    let waiting: Vec<u64> = recent.iter().map(|p| p.0).collect();
    let now_waiting = waiting.last().copied().unwrap_or(0);
    let max_waiting = waiting.iter().copied().max().unwrap_or(0);
    Sparkline::default()
        .block(Block::new().borders(Borders::ALL).title(Line::from(vec![
            Span::raw(" waiting "),
            Span::styled(format!("now {now_waiting} max {max_waiting} "), DIM),
        ])))
        .style(Style::new().fg(Color::Yellow))
        .data(&waiting)
        .render(left, buf);

    // Tenths, so that rates under one job per second still show.
    let out: Vec<u64> = recent.iter().map(|p| (p.2 * 10.0).round() as u64).collect();
    let now_out = recent.last().map(|p| p.2);
    let max_out = recent.iter().map(|p| p.2).fold(0.0, f64::max);
    Sparkline::default()
        .block(Block::new().borders(Borders::ALL).title(Line::from(vec![
            Span::raw(" jobs out/s "),
            Span::styled(
                format!("now {} max {} ", rate(now_out), rate(Some(max_out))),
                DIM,
            ),
        ])))
        .style(Style::new().fg(Color::Green))
        .data(&out)
        .render(right, buf);
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::app::{App, Panel};
    use crate::ui::tests::{draw_part, loaded_app};

    #[test]
    fn charts_panel() {
        let app = loaded_app(Panel::Charts);
        let t = draw_part(80, 20, |area, buf| super::render(&app, area, buf));
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn charts_panel_without_history() {
        let app = App::new(
            vec!["a:1".into()],
            Duration::from_secs(1),
            Duration::from_secs(60),
            Instant::now(),
        );
        let t = draw_part(60, 3, |area, buf| super::render(&app, area, buf));
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn sparkline_strip() {
        let app = loaded_app(Panel::Functions);
        let t = draw_part(80, 4, |area, buf| super::render_strip(&app, area, buf));
        insta::assert_snapshot!(t.backend());
    }
}
