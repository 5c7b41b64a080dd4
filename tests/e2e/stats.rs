//! Statistics (our extension): the per-function counters after a scripted workload, read
//! through the `stats` admin command, `GET /status` (JSON) and `GET /metrics` (Prometheus text,
//! checked with the reference parser of the Python `prometheus-client` package).

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gearman_shared::admin::{AdminClient, FunctionStats, StatsReport};
use gearman_shared::protocol::{ErrorCode, Priority, Request, Response};
use serde_json::Value;

use crate::harness::{b, bg_job, esc, job, wait_until, ChildGuard, Client, Server, TIMEOUT};
use crate::http::{get, post, spawn_send, start_http, url};

/// Per-function Prometheus metrics and the [`FunctionStats`] field each one shows.
const FUNCTION_METRICS: [(&str, &str, &str); 9] = [
    ("gearmand_jobs_submitted_total", "counter", "submitted"),
    ("gearmand_jobs_completed_total", "counter", "completed"),
    ("gearmand_jobs_failed_total", "counter", "failed"),
    ("gearmand_jobs_exceptions_total", "counter", "exceptions"),
    ("gearmand_jobs_retried_total", "counter", "retried"),
    ("gearmand_jobs_timed_out_total", "counter", "timed_out"),
    ("gearmand_jobs_cancelled_total", "counter", "cancelled"),
    ("gearmand_jobs_running", "gauge", "running"),
    ("gearmand_workers", "gauge", "workers"),
];

/// Server-wide Prometheus metrics and their types.
const SERVER_METRICS: [(&str, &str); 5] = [
    ("gearmand_uptime_seconds", "gauge"),
    ("gearmand_connections", "gauge"),
    ("gearmand_received_bytes_total", "counter"),
    ("gearmand_sent_bytes_total", "counter"),
    ("gearmand_jobs", "gauge"),
];

/// The `stats` reply, parsed by the shared reader.
fn stats(server: &Server) -> StatsReport {
    AdminClient::connect(server.addr(), Some(TIMEOUT))
        .expect("admin connects")
        .stats_report()
        .expect("stats reply")
}

/// One function's entry of the `stats` reply.
fn stats_of(server: &Server, function: &str) -> Option<FunctionStats> {
    stats(server)
        .functions
        .into_iter()
        .find(|f| f.name == function)
}

/// Checks the `stats` listing line by line: `server\tKEY\tN` lines, then
/// `function\tNAME\tkey=N...` lines, then `.`.
fn assert_stats_text(text: &str) {
    let mut lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.pop(), Some(""), "ends with a newline: {text:?}");
    assert_eq!(lines.pop(), Some("."), "ends with `.`: {text:?}");
    let number = |s: &str| s.parse::<u64>().is_ok();
    let mut seen_function = false;
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[0] {
            "server" => {
                assert!(!seen_function, "server lines come first: {text:?}");
                assert!(fields.len() == 3 && number(fields[2]), "bad line {line:?}");
            }
            "function" => {
                seen_function = true;
                assert!(fields.len() >= 3, "bad line {line:?}");
                for pair in &fields[2..] {
                    let (key, value) = pair.split_once('=').expect("key=value");
                    assert!(!key.is_empty() && number(value), "bad pair in {line:?}");
                }
            }
            _ => panic!("unexpected line {line:?} in {text:?}"),
        }
    }
}

/// A function's expected entry; `oldest_queued_ms` is checked apart (it grows).
fn expect_function(name: &str, set: &[(&str, u64)]) -> FunctionStats {
    let mut f = FunctionStats {
        name: b(name),
        ..FunctionStats::default()
    };
    for &(key, value) in set {
        let slot = match key {
            "submitted" => &mut f.submitted,
            "completed" => &mut f.completed,
            "failed" => &mut f.failed,
            "exceptions" => &mut f.exceptions,
            "retried" => &mut f.retried,
            "timed_out" => &mut f.timed_out,
            "cancelled" => &mut f.cancelled,
            "queued_high" => &mut f.queued_high,
            "queued_normal" => &mut f.queued_normal,
            "queued_low" => &mut f.queued_low,
            "running" => &mut f.running,
            "workers" => &mut f.workers,
            other => panic!("no field {other}"),
        };
        *slot = value;
    }
    f
}

/// The value of a named field of [`FunctionStats`].
fn field(f: &FunctionStats, key: &str) -> u64 {
    f.fields()
        .iter()
        .find(|(k, _)| *k == key)
        .unwrap_or_else(|| panic!("no field {key}"))
        .1
}

/// Compares the `stats` functions with `expected`; queued functions must show an age.
fn assert_functions(report: &StatsReport, expected: &[FunctionStats]) {
    let got: Vec<FunctionStats> = report
        .functions
        .iter()
        .map(|f| {
            assert_eq!(
                f.oldest_queued_ms.is_some(),
                f.queued() > 0,
                "an age exactly when jobs are queued: {f:?}"
            );
            FunctionStats {
                oldest_queued_ms: None,
                ..f.clone()
            }
        })
        .collect();
    assert_eq!(got, expected);
}

// --- /status ---

/// `GET /status`, checked to be JSON.
fn status_json(port: u16) -> Value {
    let r = get(port, "/status");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.header("Content-Type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{r:?}"
    );
    assert_eq!(r.header("Server"), Some("Gearman/1.1.20"), "{r:?}");
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("/status is not JSON: {e}: {r:?}"))
}

/// Checks the `/status` document against `expected` functions (in order) and its server part.
fn assert_status_json(doc: &Value, expected: &[FunctionStats]) {
    let server = &doc["server"];
    assert_eq!(server["version"], "1.1.20", "{doc}");
    for key in [
        "uptime_seconds",
        "connections",
        "workers",
        "clients",
        "admins",
        "bytes_in",
        "bytes_out",
        "jobs",
    ] {
        assert!(server[key].is_u64(), "server.{key} in {doc}");
    }
    let functions = doc["functions"].as_array().expect("functions is an array");
    assert_eq!(functions.len(), expected.len(), "{doc}");
    for (got, want) in functions.iter().zip(expected) {
        let name = String::from_utf8_lossy(&want.name);
        assert_eq!(got["name"], name.as_ref(), "{doc}");
        for (key, value) in want.fields() {
            assert_eq!(got[key], value, "{name}.{key} in {doc}");
        }
        let age = &got["oldest_queued_ms"];
        if want.queued() > 0 {
            assert!(age.is_u64(), "{name}.oldest_queued_ms in {doc}");
        } else {
            assert!(age.is_null(), "{name}.oldest_queued_ms in {doc}");
        }
        let keys = got.as_object().expect("function entry is an object").len();
        assert_eq!(keys, 14, "name, 12 counters and gauges, age: {got}");
    }
}

// --- /metrics ---

/// One sample as the Python parser reports it.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// `/metrics` as parsed by `prometheus_client.parser`.
struct Metrics {
    /// Family name (counters without `_total`, as the parser names them) → type.
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Metrics {
    /// The one sample with this name and exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == labels)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{name}{labels:?}: {found:?} in {:?}",
            self.samples
        );
        found[0].value
    }

    /// Samples with a `function` label.
    fn function_samples(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| s.labels.contains_key("function"))
            .count()
    }

    /// The type the parser read for a metric (`_total` stripped for counters).
    fn type_of(&self, metric: &str, kind: &str) -> Option<&str> {
        let family = match kind {
            "counter" => metric.strip_suffix("_total").unwrap_or(metric),
            _ => metric,
        };
        self.types.get(family).map(String::as_str)
    }
}

/// Parses the text with the reference parser; prints JSON for us to read back.
const PARSE_METRICS: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()
families, samples = {}, []
for family in text_string_to_metric_families(text):
    families[family.name] = family.type
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps({"families": families, "samples": samples}))
"#;

static METRICS_SEQ: AtomicUsize = AtomicUsize::new(0);

fn parse_metrics(text: &str) -> Metrics {
    let path = std::env::temp_dir().join(format!(
        "gearman-e2e-metrics-{}-{}.txt",
        std::process::id(),
        METRICS_SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    fs::write(&path, text).expect("write the metrics text");
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(PARSE_METRICS).arg(&path);
    let out = ChildGuard::spawn(cmd).wait_output(Duration::from_secs(20));
    let _ = fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the Python package prometheus-client is missing: `python3 -m pip install \
         prometheus-client` (tests/run.sh installs it)\n{stderr}"
    );
    assert!(
        out.status.success(),
        "prometheus_client could not parse /metrics: {stderr}\n--- text:\n{text}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("the parser's JSON");
    let types = doc["families"]
        .as_object()
        .expect("families")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("type").to_string()))
        .collect();
    let samples = doc["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| Sample {
            name: s["name"].as_str().expect("name").to_string(),
            labels: s["labels"]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("label value").to_string()))
                .collect(),
            value: s["value"].as_f64().expect("value"),
        })
        .collect();
    Metrics { types, samples }
}

/// `GET /metrics`, parsed.
fn metrics(port: u16) -> (String, Metrics) {
    let r = get(port, "/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    let content_type = r.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "{r:?}"
    );
    assert_eq!(r.header("Server"), Some("Gearman/1.1.20"), "{r:?}");
    let text = String::from_utf8(r.body).expect("UTF-8 metrics");
    let parsed = parse_metrics(&text);
    (text, parsed)
}

/// Checks every family is announced with its type and every function's samples equal
/// `expected`; returns nothing, panics on a difference.
fn assert_metrics(text: &str, m: &Metrics, expected: &[FunctionStats]) {
    for (metric, kind) in SERVER_METRICS.iter().copied().chain(
        FUNCTION_METRICS
            .iter()
            .map(|&(metric, kind, _)| (metric, kind)),
    ) {
        assert!(
            text.contains(&format!("# TYPE {metric} {kind}\n")),
            "no TYPE line for {metric}:\n{text}"
        );
        if let Some(read) = m.type_of(metric, kind) {
            assert_eq!(read, kind, "{metric}");
        }
    }
    for (family, kind) in [
        ("gearmand_jobs_queued", "gauge"),
        ("gearmand_oldest_queued_job_age_seconds", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "{text}"
        );
    }
    for f in expected {
        let name = String::from_utf8_lossy(&f.name).into_owned();
        let function = [("function", name.as_str())];
        for (metric, _, key) in FUNCTION_METRICS {
            assert_eq!(
                m.value(metric, &function),
                field(f, key) as f64,
                "{metric} of {name}"
            );
        }
        for (priority, n) in [
            ("high", f.queued_high),
            ("normal", f.queued_normal),
            ("low", f.queued_low),
        ] {
            let labels = [("function", name.as_str()), ("priority", priority)];
            assert_eq!(
                m.value("gearmand_jobs_queued", &labels),
                n as f64,
                "{name} {priority}"
            );
        }
        let age = m.value("gearmand_oldest_queued_job_age_seconds", &function);
        if f.queued() > 0 {
            assert!(age > 0.0, "{name}: age {age}");
        } else {
            assert_eq!(age, 0.0, "{name}");
        }
    }
    // 9 per-function metrics, 3 queue gauges and an age per function; nothing else labelled.
    assert_eq!(m.function_samples(), 13 * expected.len(), "{text}");
}

// --- tests ---

#[test]
fn ours_the_endpoints_answer_with_no_workers_and_no_jobs() {
    let (server, port) = start_http(&[]);

    let mut admin = server.connect();
    let text = admin.admin("stats");
    assert_stats_text(&text);
    let report = stats(&server);
    assert_eq!(report.functions, []);
    assert_eq!(
        (
            report.server.jobs,
            report.server.workers,
            report.server.clients
        ),
        (0, 0, 0)
    );

    let doc = status_json(port);
    assert_status_json(&doc, &[]);
    assert_eq!(doc["server"]["jobs"], 0, "{doc}");
    assert_eq!(doc["server"]["workers"], 0, "{doc}");

    let (text, m) = metrics(port);
    assert_metrics(&text, &m, &[]);
    assert_eq!(m.value("gearmand_jobs", &[]), 0.0);
    assert_eq!(m.value("gearmand_connections", &[("role", "worker")]), 0.0);
    assert_eq!(m.value("gearmand_connections", &[("role", "client")]), 0.0);

    // A function with a worker and no job yet: all zeros, no age.
    let mut w = server.connect();
    w.register(&["idle"]);
    let idle = [expect_function("idle", &[("workers", 1)])];
    assert_functions(&stats(&server), &idle);
    assert_status_json(&status_json(port), &idle);
    let (text, m) = metrics(port);
    assert_metrics(&text, &m, &idle);
    assert_eq!(m.value("gearmand_connections", &[("role", "worker")]), 1.0);
}

/// Waits until the server has requeued `handle` after its worker left (retries counted).
fn wait_requeued(admin: &mut Client, handle: &Bytes, retries: u64) {
    let handle = String::from_utf8_lossy(handle).into_owned();
    wait_until(TIMEOUT, "the job requeued", || {
        admin
            .show_jobs()
            .iter()
            .any(|row| row.0 == handle && row.1 == retries)
    });
}

#[test]
fn ours_counters_after_a_scripted_workload() {
    let (server, port) = start_http(&["-j", "2"]);
    let mut admin = server.connect();
    let mut c = server.connect();
    c.send(Request::Option {
        name: b("exceptions"),
    });
    c.expect(Response::Option {
        name: b("exceptions"),
    });

    // --- work: 8 jobs created (one over HTTP), 5 completed, 1 failed, 1 exception, 1 retried
    // (worker died), 1 cancelled; a coalesced submission creates nothing.
    let handles: Vec<Bytes> = (1..=5)
        .map(|i| c.submit_fg("work", "", &format!("d{i}")))
        .collect();
    let shared = c.submit_fg("work", "same", "c1");
    let mut c2 = server.connect();
    assert_eq!(c2.submit_fg("work", "same", "coalesced"), shared);
    let cancelled = c.submit_bg("work", "", "never runs");
    let line = format!("cancel job {}", esc(&cancelled));
    assert_eq!(admin.admin(&line), "OK\r\n");

    let mut w1 = server.connect();
    w1.register(&["work"]);
    for (i, handle) in handles.iter().enumerate() {
        let (got, _, data) = w1.grab();
        assert_eq!((&got, data), (handle, b(format!("d{}", i + 1))));
        match i {
            0 | 1 => {
                w1.complete(handle, b"r");
                c.expect(Response::WorkComplete {
                    handle: handle.clone(),
                    data: b("r"),
                });
            }
            2 => {
                w1.send(Request::WorkFail {
                    handle: handle.clone(),
                });
                c.expect(Response::WorkFail {
                    handle: handle.clone(),
                });
            }
            3 => {
                w1.send(Request::WorkException {
                    handle: handle.clone(),
                    data: b("boom"),
                });
                c.expect(Response::WorkException {
                    handle: handle.clone(),
                    data: b("boom"),
                });
            }
            _ => {}
        }
    }
    // The worker dies holding the fifth job: it goes back to the queue, behind the others.
    drop(w1);
    wait_requeued(&mut admin, &handles[4], 1);
    let mut w2 = server.connect();
    w2.register(&["work"]);
    assert_eq!(w2.grab().0, shared);
    w2.complete(&shared, b"for both");
    for client in [&mut c, &mut c2] {
        client.expect(Response::WorkComplete {
            handle: shared.clone(),
            data: b("for both"),
        });
    }
    // The cancelled job is skipped.
    assert_eq!(w2.grab().0, handles[4]);
    w2.complete(&handles[4], b"second try");
    c.expect(Response::WorkComplete {
        handle: handles[4].clone(),
        data: b("second try"),
    });
    let over_http = spawn_send(
        surf::post(url(port, "/work")).body(surf::Body::from_bytes(b"via http".to_vec())),
    );
    wait_until(TIMEOUT, "the HTTP job queued", || {
        admin.status_of("work") == Some((1, 0, 1))
    });
    let (handle, _, data) = w2.grab();
    assert_eq!(data, "via http");
    w2.complete(&handle, b"http done");
    let r = crate::http::finish(over_http);
    assert_eq!(
        (r.status, r.text()),
        (200, "http done".to_string()),
        "{r:?}"
    );
    w2.grab_none();

    // --- slow: CAN_DO_TIMEOUT expires once (timed out and retried), then completes.
    let mut w3 = server.connect();
    w3.send(Request::CanDoTimeout {
        function: b("slow"),
        timeout_ms: Some(1000),
    });
    w3.sync();
    let slow = c.submit_fg("slow", "", "s");
    assert_eq!(w3.grab().0, slow);
    wait_until(Duration::from_secs(4), "the CAN_DO_TIMEOUT expiry", || {
        stats_of(&server, "slow").is_some_and(|f| f.timed_out == 1)
    });
    assert_eq!(w3.grab().0, slow, "requeued, and grabbed again");
    w3.complete(&slow, b"in time");
    c.expect(Response::WorkComplete {
        handle: slow.clone(),
        data: b("in time"),
    });

    // --- doomed: two worker deaths use up `-j 2`: failed by the server, retried twice.
    let doomed = c.submit_fg("doomed", "", "x");
    for attempt in 1..=2 {
        let mut w = server.connect();
        w.register(&["doomed"]);
        assert_eq!(w.grab().0, doomed);
        drop(w);
        if attempt == 1 {
            wait_requeued(&mut admin, &doomed, 1);
        }
    }
    c.expect(Response::WorkFail {
        handle: doomed.clone(),
    });

    // --- limited: maxqueue refusals and a coalesced submission create nothing.
    let limited = c.submit(bg_job("limited", "lu", "first", Priority::Normal));
    assert_eq!(admin.admin("maxqueue limited 1"), "OK\r\n");
    c.send(Request::Submit(bg_job("limited", "", "x", Priority::Low)));
    c.expect_error(ErrorCode::QueueError, "Job queue is full");
    c.send(Request::Submit(job("limited", "", "x")));
    c.expect_error(ErrorCode::QueueError, "Job queue is full");
    let r = post(port, "/limited", b"x", &[("X-Gearman-Background", "true")]);
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(
        c.submit(bg_job("limited", "lu", "again", Priority::High)),
        limited
    );

    // --- the three views agree on the exact counts.
    let expected = [
        expect_function("doomed", &[("submitted", 1), ("failed", 1), ("retried", 2)]),
        expect_function("limited", &[("submitted", 1), ("queued_normal", 1)]),
        expect_function(
            "slow",
            &[
                ("submitted", 1),
                ("completed", 1),
                ("retried", 1),
                ("timed_out", 1),
                ("workers", 1),
            ],
        ),
        expect_function(
            "work",
            &[
                ("submitted", 8),
                ("completed", 5),
                ("failed", 1),
                ("exceptions", 1),
                ("retried", 1),
                ("cancelled", 1),
                ("workers", 1),
            ],
        ),
    ];
    let text = admin.admin("stats");
    assert_stats_text(&text);
    let report = stats(&server);
    assert_functions(&report, &expected);
    assert_eq!(
        report.server.jobs, 1,
        "only the limited job is left: {report:?}"
    );
    assert_eq!(report.server.workers, 2, "w2 and w3: {report:?}");

    let doc = status_json(port);
    assert_status_json(&doc, &expected);
    assert_eq!(doc["server"]["jobs"], 1, "{doc}");
    assert_eq!(doc["server"]["workers"], 2, "{doc}");

    let (text, m) = metrics(port);
    assert_metrics(&text, &m, &expected);
    assert_eq!(m.value("gearmand_jobs", &[]), 1.0);
    assert_eq!(m.value("gearmand_connections", &[("role", "worker")]), 2.0);
    assert!(m.value("gearmand_received_bytes_total", &[]) > 0.0);
    assert!(m.value("gearmand_sent_bytes_total", &[]) > 0.0);
    drop((w2, w3));
}

#[test]
fn ours_cancelling_a_job_twice_counts_it_once() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let handle = c.submit_bg("f", "", "x");
    let mut admin = server.connect();
    let line = format!("cancel job {}", esc(&handle));
    assert_eq!(admin.admin(&line), "OK\r\n");
    assert_eq!(admin.admin(&line), "OK\r\n");
    let f = stats_of(&server, "f").expect("f is listed");
    assert_eq!((f.submitted, f.cancelled), (1, 1), "{f:?}");
}
