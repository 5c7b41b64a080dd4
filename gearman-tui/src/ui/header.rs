//! The header: one line per server (address, version, up/down, last refresh, uptime, rates)
//! and a totals line with the alerts.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use super::{age, duration, plural, rate, ALERT, DIM};
use crate::app::{App, Health, ServerState};

/// Server lines shown before the rest are summarised.
const MAX_SERVER_LINES: usize = 6;

/// Rows the header needs: borders, the server lines, the totals line.
pub fn height(app: &App) -> u16 {
    let lines = app.servers.len().min(MAX_SERVER_LINES + 1);
    u16::try_from(lines + 3).unwrap_or(u16::MAX)
}

/// Draws the header.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let mut title = vec![
        Span::styled(" gearman-tui ", Style::new().add_modifier(Modifier::BOLD)),
        Span::styled(format!("refresh {} ", duration_fine(app.interval)), DIM),
    ];
    if app.paused {
        title.push(Span::styled(
            " PAUSED ",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    let block = Block::new().borders(Borders::ALL).title(Line::from(title));

    let mut lines: Vec<Line<'_>> = Vec::new();
    let shown = if app.servers.len() > MAX_SERVER_LINES + 1 {
        MAX_SERVER_LINES
    } else {
        app.servers.len()
    };
    for s in app.servers.iter().take(shown) {
        lines.push(server_line(app, s));
    }
    if shown < app.servers.len() {
        let rest = &app.servers[shown..];
        let down = rest.iter().filter(|s| !s.is_up()).count();
        let style = if down > 0 { ALERT } else { DIM };
        lines.push(Line::styled(
            format!(
                "  … {} more server{} ({down} not answering): see the Servers panel",
                rest.len(),
                plural(rest.len())
            ),
            style,
        ));
    }
    lines.push(totals_line(app));
    Paragraph::new(lines).block(block).render(area, buf);
}

fn server_line<'a>(app: &App, s: &'a ServerState) -> Line<'a> {
    let now = app.now;
    match &s.health {
        Health::Connecting => Line::from(vec![
            Span::styled("… ", DIM),
            Span::raw(s.addr.as_str()),
            Span::styled("  connecting", DIM),
        ]),
        Health::Down { since, error } => {
            let mut spans = vec![
                Span::styled("✖ ", ALERT),
                Span::styled(s.addr.as_str(), ALERT),
                Span::styled(
                    format!(
                        "  DOWN for {}",
                        duration(now.saturating_duration_since(*since))
                    ),
                    ALERT,
                ),
                Span::raw(format!(": {error}")),
            ];
            if let Some(snap) = &s.snapshot {
                spans.push(Span::styled(
                    format!(
                        "  (last answer {} ago)",
                        duration(now.saturating_duration_since(snap.at))
                    ),
                    DIM,
                ));
            }
            spans.push(Span::styled("  retrying", DIM));
            Line::from(spans)
        }
        Health::Up => {
            let Some(snap) = &s.snapshot else {
                return Line::raw(s.addr.as_str());
            };
            let mut spans = vec![
                Span::styled("● ", Style::new().fg(Color::Green)),
                Span::styled(s.addr.as_str(), Style::new().add_modifier(Modifier::BOLD)),
                Span::styled("  up", Style::new().fg(Color::Green)),
            ];
            if let Some(v) = &snap.version {
                spans.push(Span::raw(format!("  v{v}")));
            }
            if let Some(pid) = snap.pid {
                spans.push(Span::styled(format!("  pid {pid}"), DIM));
            }
            if let Some(up) = s.uptime(now) {
                spans.push(Span::raw(format!("  uptime {}", duration(up))));
            }
            spans.push(Span::styled(
                format!(
                    "  refreshed {} ago",
                    duration_fine(now.saturating_duration_since(snap.at))
                ),
                DIM,
            ));
            spans.push(Span::raw(format!(
                "  in {}/s out {}/s",
                rate(s.rates.jobs_in),
                rate(s.rates.jobs_out)
            )));
            if let Some(jobs) = &snap.jobs {
                spans.push(Span::raw(format!("  jobs {}", jobs.len())));
            }
            let oldest = age(s.oldest_job(now));
            if !oldest.is_empty() {
                spans.push(Span::raw(format!("  oldest {oldest}")));
            }
            if snap.stats.is_some() {
                spans.push(Span::styled("  +stats", DIM));
            }
            Line::from(spans)
        }
    }
}

fn totals_line(app: &App) -> Line<'static> {
    let t = app.totals();
    // Alerts first, so that a narrow terminal cuts the sums, not the alerts.
    let mut spans = Vec::new();
    if t.starved > 0 {
        spans.push(Span::styled(
            format!(
                "⚠ {} function{} with jobs and no workers  ",
                t.starved,
                plural(t.starved)
            ),
            ALERT,
        ));
    }
    let down = t.down;
    if down > 0 {
        spans.push(Span::styled(
            format!("⚠ {down} server{} down  ", plural(down)),
            ALERT,
        ));
    }
    spans.push(Span::styled(
        format!(
            "Σ {}/{} up · {} fn · {} waiting · {} running · {} worker{} · in {}/s · out {}/s",
            t.up,
            t.servers,
            t.functions,
            t.waiting,
            t.running,
            t.workers,
            plural(usize::try_from(t.workers).unwrap_or(0)),
            rate(t.rates.jobs_in),
            rate(t.rates.jobs_out)
        ),
        Style::new().add_modifier(Modifier::BOLD),
    ));
    Line::from(spans)
}

/// Like [`duration`] but with tenths under ten seconds (`0.4s`).
fn duration_fine(d: std::time::Duration) -> String {
    if d.as_secs() < 10 {
        let s = format!("{:.1}s", d.as_secs_f64());
        s.replace(".0s", "s")
    } else {
        duration(d)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::app::tests::{function, snapshot};
    use crate::app::{App, Panel};
    use crate::event::Event;
    use crate::ui::tests::{draw_part, loaded_app};

    #[test]
    fn header_of_a_loaded_server() {
        let app = loaded_app(Panel::Functions);
        let t = draw_part(120, 4, |area, buf| super::render(&app, area, buf));
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn header_with_a_down_server_and_one_connecting() {
        let t0 = Instant::now();
        let mut app = App::new(
            vec![
                "10.0.0.1:4730".into(),
                "10.0.0.2:4730".into(),
                "gm3:4730".into(),
            ],
            Duration::from_millis(500),
            Duration::from_secs(60),
            t0,
        );
        app.handle(
            Event::Snapshot {
                server: 0,
                snapshot: Box::new(snapshot(t0, vec![function("f", 2, 0, 0)])),
            },
            t0,
        );
        app.handle(
            Event::Snapshot {
                server: 1,
                snapshot: Box::new(snapshot(t0, vec![])),
            },
            t0,
        );
        let t1 = t0 + Duration::from_secs(3);
        app.handle(
            Event::PollError {
                server: 1,
                at: t1,
                error: "cannot connect: Connection refused (os error 111)".into(),
            },
            t1,
        );
        app.handle(Event::Tick, t1 + Duration::from_secs(12));
        app.paused = true;
        let t = draw_part(130, 6, |area, buf| super::render(&app, area, buf));
        insta::assert_snapshot!(t.backend());
    }
}
