//! `--once`: poll every server once (in parallel, each bounded by the timeout) and print the
//! snapshot as plain, column-aligned text for scripts. Empty values are `-`, so every line
//! splits on whitespace into the same number of fields (but for the servers table's last
//! column, the error text).

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::app::{Age, App, Health};
use crate::cli::ServerAddr;
use crate::event::Event;
use crate::poller::{poll_once, PollOptions};
use crate::ui::duration;

/// Polls `servers` once and builds the state, as the dashboard would hold it.
pub fn collect(servers: &[ServerAddr], options: &PollOptions) -> App {
    let results: Vec<Result<_, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = servers
            .iter()
            .map(|addr| scope.spawn(move || poll_once(addr, options)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("the poll thread panicked".into()))
            })
            .collect()
    });
    let now = Instant::now();
    let mut app = App::new(
        servers.iter().map(ToString::to_string).collect(),
        Duration::from_secs(1),
        Duration::from_secs(60),
        now,
    );
    for (server, result) in results.into_iter().enumerate() {
        let event = match result {
            Ok(snapshot) => Event::Snapshot {
                server,
                snapshot: Box::new(snapshot),
            },
            Err(error) => Event::PollError {
                server,
                at: now,
                error,
            },
        };
        app.handle(event, now);
    }
    app
}

/// Writes the servers, functions and connections tables; `Ok(false)` if a server is down.
pub fn print(app: &App, out: &mut impl Write) -> io::Result<bool> {
    out.write_all(render(app).as_bytes())?;
    out.flush()?;
    Ok(app.servers.iter().all(|s| s.is_up()))
}

/// The text of [`print`].
pub fn render(app: &App) -> String {
    let dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
    let mut servers = vec![cols(&[
        "SERVER",
        "STATE",
        "VERSION",
        "PID",
        "UPTIME",
        "FUNCTIONS",
        "WAITING",
        "RUNNING",
        "WORKERS",
        "JOBS",
        "ERROR",
    ])];
    for s in &app.servers {
        let mut row = vec![s.addr.clone()];
        match (&s.health, s.live()) {
            (Health::Up, Some(snap)) => {
                let waiting: u64 = snap.functions.iter().map(|f| f.waiting()).sum();
                let running: u64 = snap.functions.iter().map(|f| f.running).sum();
                let workers = snap
                    .workers
                    .iter()
                    .filter(|w| !w.functions.is_empty())
                    .count();
                row.extend([
                    "up".to_string(),
                    dash(snap.version.clone().unwrap_or_default()),
                    snap.pid.map_or("-".into(), |p| p.to_string()),
                    s.uptime(app.now).map_or("-".into(), duration),
                    snap.functions.len().to_string(),
                    waiting.to_string(),
                    running.to_string(),
                    workers.to_string(),
                    snap.jobs
                        .as_ref()
                        .map_or("-".into(), |j| j.len().to_string()),
                    "-".to_string(),
                ]);
            }
            (health, _) => {
                let error = match health {
                    Health::Down { error, .. } => error.clone(),
                    _ => "not polled".into(),
                };
                row.push("down".into());
                row.extend(std::iter::repeat_n("-".to_string(), 8));
                row.push(error);
            }
        }
        servers.push(row);
    }

    let mut functions = vec![cols(&[
        "SERVER", "FUNCTION", "WAITING", "RUNNING", "WORKERS", "HIGH", "NORMAL", "LOW", "OLDEST",
        "ALERT",
    ])];
    let mut rows = app.functions();
    rows.sort_by(|a, b| a.server.cmp(&b.server).then(a.row.name.cmp(&b.row.name)));
    let mut sums = [0u64; 6];
    for v in &rows {
        let f = v.row;
        let prio = f.priority.unwrap_or_default();
        let values = [f.waiting(), f.running, f.workers, prio[0], prio[1], prio[2]];
        for (s, n) in sums.iter_mut().zip(values) {
            *s += n;
        }
        let mut row = vec![app.servers[v.server].addr.clone(), dash(f.name.clone())];
        row.extend(values[..3].iter().map(ToString::to_string));
        match f.priority {
            Some(_) => row.extend(values[3..].iter().map(ToString::to_string)),
            None => row.extend(std::iter::repeat_n("-".to_string(), 3)),
        }
        // Seconds, only when the server says (`stats`): one poll gives no bound.
        row.push(match v.oldest {
            Age::Exact(d) => d.as_secs().to_string(),
            _ => "-".into(),
        });
        row.push(if f.is_starved() { "no-workers" } else { "-" }.into());
        functions.push(row);
    }
    let mut total = vec!["TOTAL".to_string(), "-".to_string()];
    total.extend(sums.iter().map(ToString::to_string));
    total.extend(["-".to_string(), "-".to_string()]);
    functions.push(total);

    let mut workers = vec![cols(&["SERVER", "FD", "ADDRESS", "CLIENT-ID", "FUNCTIONS"])];
    let mut conns = app.workers();
    conns.sort_by(|a, b| a.server.cmp(&b.server).then(a.row.fd.cmp(&b.row.fd)));
    for v in conns {
        workers.push(vec![
            app.servers[v.server].addr.clone(),
            v.row.fd.to_string(),
            dash(v.row.address.clone()),
            dash(v.row.client_id.clone()),
            dash(v.row.functions.join(",")),
        ]);
    }

    [table(&servers), table(&functions), table(&workers)].join("\n")
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(ToString::to_string).collect()
}

/// Left-aligned columns two spaces apart, no trailing spaces.
fn table(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::tests::{function, snapshot};
    use crate::snapshot::WorkerRow;

    #[test]
    fn plain_text_snapshot() {
        let t0 = Instant::now();
        let mut app = App::new(
            vec!["127.0.0.1:4730".into(), "127.0.0.1:4731".into()],
            Duration::from_secs(1),
            Duration::from_secs(60),
            t0,
        );
        let mut s = snapshot(
            t0,
            vec![function("reverse", 3, 1, 2), function("orphan", 2, 0, 0)],
        );
        s.workers = vec![
            WorkerRow {
                fd: 7,
                address: "127.0.0.1".into(),
                client_id: "w1".into(),
                functions: vec!["reverse".into(), "upper".into()],
            },
            WorkerRow {
                fd: 8,
                address: "127.0.0.1".into(),
                client_id: "-".into(),
                functions: vec![],
            },
        ];
        app.handle(
            Event::Snapshot {
                server: 0,
                snapshot: Box::new(s),
            },
            t0,
        );
        app.handle(
            Event::PollError {
                server: 1,
                at: t0,
                error: "cannot connect: Connection refused (os error 111)".into(),
            },
            t0,
        );
        let text = render(&app);
        insta::assert_snapshot!(text);
        let mut out = Vec::new();
        assert!(!print(&app, &mut out).unwrap());
        // Every function line has the same number of fields.
        let section = text.split("\n\n").nth(1).unwrap();
        assert!(section.lines().all(|l| l.split_whitespace().count() == 10));
    }
}
