//! Server statistics: traffic counters shared with the I/O threads, and the renderings
//! of a [`StatsReport`] for Prometheus (`/metrics`) and JSON (`/status`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use gearman_shared::admin::{FunctionStats, StatsReport};
use serde_json::{json, Value};

/// Bytes read and written over every connection, counted by the I/O threads.
#[derive(Debug, Default)]
pub struct Traffic {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Traffic {
    /// Counts bytes read.
    pub fn read(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts bytes written.
    pub fn written(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `(bytes in, bytes out)` so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        )
    }
}

/// Escapes a Prometheus label value.
fn label(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes one metric family: its help, its type, then `name{labels} value` samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// A per-function counter or gauge: name, type, help, and how to read it.
struct PerFunction {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&FunctionStats) -> u64,
}

const PER_FUNCTION: [PerFunction; 9] = [
    PerFunction {
        name: "gearmand_jobs_submitted_total",
        kind: "counter",
        help: "Jobs created (coalesced submissions not counted).",
        value: |f| f.submitted,
    },
    PerFunction {
        name: "gearmand_jobs_completed_total",
        kind: "counter",
        help: "Jobs that ended with WORK_COMPLETE.",
        value: |f| f.completed,
    },
    PerFunction {
        name: "gearmand_jobs_failed_total",
        kind: "counter",
        help: "Jobs that ended with WORK_FAIL or ran out of retries.",
        value: |f| f.failed,
    },
    PerFunction {
        name: "gearmand_jobs_exceptions_total",
        kind: "counter",
        help: "Jobs that ended with WORK_EXCEPTION.",
        value: |f| f.exceptions,
    },
    PerFunction {
        name: "gearmand_jobs_retried_total",
        kind: "counter",
        help: "Jobs put back in the queue by a lost worker, CANT_DO or a timeout.",
        value: |f| f.retried,
    },
    PerFunction {
        name: "gearmand_jobs_timed_out_total",
        kind: "counter",
        help: "CAN_DO_TIMEOUT expiries.",
        value: |f| f.timed_out,
    },
    PerFunction {
        name: "gearmand_jobs_cancelled_total",
        kind: "counter",
        help: "Jobs cancelled with the cancel job admin command.",
        value: |f| f.cancelled,
    },
    PerFunction {
        name: "gearmand_jobs_running",
        kind: "gauge",
        help: "Jobs assigned to workers.",
        value: |f| f.running,
    },
    PerFunction {
        name: "gearmand_workers",
        kind: "gauge",
        help: "Registered workers (CAN_DO registrations).",
        value: |f| f.workers,
    },
];

/// The report in the Prometheus text exposition format (version 0.0.4).
pub fn prometheus(report: &StatsReport) -> String {
    let s = &report.server;
    let plain = |value: u64| vec![(String::new(), value.to_string())];
    let mut out = String::new();
    family(
        &mut out,
        "gearmand_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &plain(s.uptime_seconds),
    );
    let roles = [
        ("any", s.connections),
        ("worker", s.workers),
        ("client", s.clients),
        ("admin", s.admins),
    ];
    let roles: Vec<_> = roles
        .iter()
        .map(|(role, n)| (format!("role=\"{role}\""), n.to_string()))
        .collect();
    family(
        &mut out,
        "gearmand_connections",
        "gauge",
        "Open connections by role (a connection may have several roles).",
        &roles,
    );
    family(
        &mut out,
        "gearmand_received_bytes_total",
        "counter",
        "Bytes read from all connections.",
        &plain(s.bytes_in),
    );
    family(
        &mut out,
        "gearmand_sent_bytes_total",
        "counter",
        "Bytes written to all connections.",
        &plain(s.bytes_out),
    );
    family(
        &mut out,
        "gearmand_jobs",
        "gauge",
        "Jobs held by the server, in any state.",
        &plain(s.jobs),
    );
    let function = |f: &FunctionStats| format!("function=\"{}\"", label(&f.name));
    for metric in &PER_FUNCTION {
        let samples: Vec<_> = report
            .functions
            .iter()
            .map(|f| (function(f), (metric.value)(f).to_string()))
            .collect();
        family(&mut out, metric.name, metric.kind, metric.help, &samples);
    }
    let queued: Vec<_> = report
        .functions
        .iter()
        .flat_map(|f| {
            [
                ("high", f.queued_high),
                ("normal", f.queued_normal),
                ("low", f.queued_low),
            ]
            .map(|(priority, n)| {
                (
                    format!("{},priority=\"{priority}\"", function(f)),
                    n.to_string(),
                )
            })
        })
        .collect();
    family(
        &mut out,
        "gearmand_jobs_queued",
        "gauge",
        "Jobs waiting in the queues.",
        &queued,
    );
    let ages: Vec<_> = report
        .functions
        .iter()
        .map(|f| {
            (
                function(f),
                (f.oldest_queued_ms.unwrap_or(0) as f64 / 1000.0).to_string(),
            )
        })
        .collect();
    family(
        &mut out,
        "gearmand_oldest_queued_job_age_seconds",
        "gauge",
        "Age of the oldest queued job (0 when none is queued).",
        &ages,
    );
    out
}

/// The report as the JSON document of `/status`.
pub fn json(report: &StatsReport) -> Value {
    let s = &report.server;
    let functions: Vec<Value> = report
        .functions
        .iter()
        .map(|f| {
            let mut entry = serde_json::Map::new();
            entry.insert(
                "name".into(),
                Value::from(String::from_utf8_lossy(&f.name).into_owned()),
            );
            for (key, value) in f.fields() {
                entry.insert(key.into(), Value::from(value));
            }
            entry.insert(
                "oldest_queued_ms".into(),
                f.oldest_queued_ms.map_or(Value::Null, Value::from),
            );
            Value::Object(entry)
        })
        .collect();
    json!({
        "server": {
            "version": crate::PROTOCOL_VERSION,
            "uptime_seconds": s.uptime_seconds,
            "connections": s.connections,
            "workers": s.workers,
            "clients": s.clients,
            "admins": s.admins,
            "bytes_in": s.bytes_in,
            "bytes_out": s.bytes_out,
            "jobs": s.jobs,
        },
        "functions": functions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn report() -> StatsReport {
        StatsReport {
            functions: vec![FunctionStats {
                name: Bytes::from_static(b"re\"v"),
                submitted: 4,
                queued_low: 2,
                oldest_queued_ms: Some(2500),
                ..FunctionStats::default()
            }],
            ..StatsReport::default()
        }
    }

    #[test]
    fn prometheus_text_has_types_labels_and_escapes() {
        let text = prometheus(&report());
        assert!(text.contains("# TYPE gearmand_jobs_submitted_total counter\n"));
        assert!(text.contains("gearmand_jobs_submitted_total{function=\"re\\\"v\"} 4\n"));
        assert!(text.contains("gearmand_jobs_queued{function=\"re\\\"v\",priority=\"low\"} 2\n"));
        assert!(text.contains("gearmand_oldest_queued_job_age_seconds{function=\"re\\\"v\"} 2.5\n"));
    }

    #[test]
    fn json_lists_functions() {
        let value = json(&report());
        assert_eq!(value["functions"][0]["submitted"], 4);
        assert_eq!(value["functions"][0]["name"], "re\"v");
        assert_eq!(value["server"]["jobs"], 0);
    }
}
