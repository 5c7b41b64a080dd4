//! How replies are printed: the C tool's text rules, and the `--json` report.
//!
//! Text (shared/docs/protocol.md §9.2), byte for byte what gearadmin 1.1.20 prints for the same
//! reply:
//! - `OK\r\n` → `OK\n` on stdout;
//! - `OK <value>\n` → `<value>\n` on stdout;
//! - `ERR <rest>\r\n` → `Error: <rest>\r\n` on stderr (the `\r\n` kept); unlike the C tool,
//!   this makes the exit status non-zero;
//! - a listing → its lines and the final `.` line on stdout, as sent.
//!
//! `drop function` can get several lines (one per function matching case-insensitively). The
//! C tool reads them as one reply and looks only at its start: `OK…` prints a single `OK`,
//! `ERR…` prints everything after `ERR ` as the error. We print the same, and in addition
//! report an `ERR` line that follows an `OK` line on stderr, where the C tool drops it.
//!
//! JSON: one object keyed by operation (in execution order), see [`JsonReport`].

use gearman_shared::admin::{FunctionPriorityStatus, FunctionStatus, JobInfo, Reply, WorkerInfo};
use serde::Serialize;

use crate::ops::Operation;

/// What one reply prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Printed {
    /// Bytes for standard output.
    pub stdout: Vec<u8>,
    /// Bytes for standard error.
    pub stderr: Vec<u8>,
    /// The server refused the operation (an `ERR` reply) or the reply was unusable.
    pub failed: bool,
}

/// The C tool's rendering of one reply.
pub fn text(reply: &Reply) -> Printed {
    let mut printed = Printed::default();
    match reply {
        Reply::Ok => printed.stdout.extend_from_slice(b"OK\n"),
        Reply::Value(value) => {
            printed.stdout.extend_from_slice(value.as_bytes());
            printed.stdout.push(b'\n');
        }
        Reply::List(_) => printed.stdout = reply.to_bytes(),
        Reply::Error { .. } => {
            printed.failed = true;
            push_error(&mut printed.stderr, &reply.to_bytes());
        }
        Reply::Multi(replies) => {
            let wire = reply.to_bytes();
            match replies.first() {
                Some(Reply::Error { .. }) => {
                    // Everything after the first "ERR ", later lines included, as the C tool.
                    printed.failed = true;
                    push_error(&mut printed.stderr, &wire);
                }
                Some(_) => {
                    printed.stdout.extend_from_slice(b"OK\n");
                    for later in replies.iter().filter(|r| is_error(r)) {
                        printed.failed = true;
                        push_error(&mut printed.stderr, &later.to_bytes());
                    }
                }
                None => printed.stdout.extend_from_slice(b"OK\n"),
            }
        }
    }
    printed
}

/// `Error: ` and the wire bytes after `ERR `.
fn push_error(out: &mut Vec<u8>, wire: &[u8]) {
    out.extend_from_slice(b"Error: ");
    out.extend_from_slice(wire.strip_prefix(b"ERR ").unwrap_or(wire));
}

fn is_error(reply: &Reply) -> bool {
    matches!(reply, Reply::Error { .. })
}

/// The error replies inside `reply`, each as the text after `ERR ` without its `\r\n`.
fn error_texts(reply: &Reply) -> Vec<String> {
    let one = |r: &Reply| match r {
        Reply::Error { code, text } if text.is_empty() => Some(code.clone()),
        Reply::Error { code, text } => Some(format!("{code} {text}")),
        _ => None,
    };
    match reply {
        Reply::Multi(replies) => replies.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

/// The `--json` output: one object, a key per operation that succeeded, in execution order,
/// and `errors` (always present) listing the operations that failed.
///
/// ```json
/// {
///   "getpid": 16779,
///   "create_function": "OK",
///   "show_jobs": [{"handle": "H:host:1", "retries": 0, "ignore": false, "queued": true}],
///   "show_unique_jobs": ["u1", ""],
///   "server_verbose": "INFO",
///   "server_version": "1.1.20+ds",
///   "workers": [{"fd": 38, "address": "127.0.0.1", "client_id": "-", "functions": ["f"]}],
///   "priority_status": [{"function": "f", "high": 0, "normal": 1, "low": 0, "workers": 1}],
///   "status": [{"function": "f", "total": 1, "running": 0, "workers": 1}],
///   "errors": [{"operation": "drop_function", "error": "function not found"}]
/// }
/// ```
///
/// Names, IDs and handles that are not valid UTF-8 are converted lossily.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JsonReport {
    /// `getpid`: a number (a string if the server sent something else).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub getpid: Option<serde_json::Value>,
    /// `create function`: `"OK"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_function: Option<String>,
    /// `drop function`: `"OK"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_function: Option<String>,
    /// `show jobs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_jobs: Option<Vec<JsonJob>>,
    /// `show unique jobs`: the unique IDs (possibly empty strings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_unique_jobs: Option<Vec<String>>,
    /// `cancel job`: `"OK"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_job: Option<String>,
    /// `verbose`: the log level name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_verbose: Option<String>,
    /// `version`: the server's version string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// `workers`: one entry per connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<Vec<JsonWorker>>,
    /// `prioritystatus`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_status: Option<Vec<JsonPriorityStatus>>,
    /// `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<JsonStatus>>,
    /// `shutdown`: `"OK"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<String>,
    /// `shutdown graceful`: `"OK"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_graceful: Option<String>,
    /// Operations the server refused, or whose reply could not be understood.
    pub errors: Vec<JsonError>,
}

/// One `status` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonStatus {
    /// Function name.
    pub function: String,
    /// Queued plus running jobs.
    pub total: u64,
    /// Running jobs.
    pub running: u64,
    /// Registered workers.
    pub workers: u64,
}

/// One `prioritystatus` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonPriorityStatus {
    /// Function name.
    pub function: String,
    /// Queued HIGH jobs.
    pub high: u64,
    /// Queued NORMAL jobs.
    pub normal: u64,
    /// Queued LOW jobs.
    pub low: u64,
    /// Registered workers.
    pub workers: u64,
}

/// One `workers` entry (a connection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonWorker {
    /// The server's descriptor for the connection.
    pub fd: i64,
    /// Peer address.
    pub address: String,
    /// Client ID, `-` when none was set.
    pub client_id: String,
    /// Registered functions, as listed by the server.
    pub functions: Vec<String>,
}

/// One `show jobs` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonJob {
    /// Job handle.
    pub handle: String,
    /// Times the job was handed back after a lost worker.
    pub retries: u32,
    /// Cancelled or abandoned: will not run.
    pub ignore: bool,
    /// In the persistent queue (background jobs).
    pub queued: bool,
}

/// A failed operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonError {
    /// The operation's key, e.g. `drop_function`.
    pub operation: String,
    /// The server's error after `ERR ` (e.g. `function not found`), or what went wrong
    /// with the reply.
    pub error: String,
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl JsonReport {
    /// Adds the reply to `op`. Errors are recorded in `errors` and also returned for stderr,
    /// as `Error: …` lines like the text output.
    pub fn record(&mut self, op: &Operation, reply: &Reply) -> Printed {
        let mut printed = Printed::default();
        let errors = error_texts(reply);
        if !errors.is_empty() {
            printed = text(reply);
            printed.stdout.clear();
            printed.failed = true;
            for error in errors {
                self.errors.push(JsonError {
                    operation: op.name().to_owned(),
                    error,
                });
            }
            return printed;
        }
        if let Err(error) = self.store(op, reply) {
            printed.failed = true;
            printed.stderr = format!("Error: {}: {error}\n", op.option()).into_bytes();
            self.errors.push(JsonError {
                operation: op.name().to_owned(),
                error,
            });
        }
        printed
    }

    fn store(&mut self, op: &Operation, reply: &Reply) -> Result<(), String> {
        let ok = || Some("OK".to_owned());
        match (op, reply) {
            (Operation::Getpid, Reply::Value(v)) => {
                self.getpid = Some(match v.parse::<u64>() {
                    Ok(pid) => serde_json::Value::from(pid),
                    Err(_) => serde_json::Value::from(v.as_str()),
                });
            }
            (Operation::ServerVerbose, Reply::Value(v)) => self.server_verbose = Some(v.clone()),
            (Operation::ServerVersion, Reply::Value(v)) => self.server_version = Some(v.clone()),
            (_, Reply::Ok | Reply::Multi(_)) => match op {
                Operation::CreateFunction(_) => self.create_function = ok(),
                Operation::DropFunction(_) => self.drop_function = ok(),
                Operation::CancelJob(_) => self.cancel_job = ok(),
                Operation::Shutdown => self.shutdown = ok(),
                Operation::ShutdownGraceful => self.shutdown_graceful = ok(),
                _ => return Err(unexpected(reply)),
            },
            (Operation::Status, Reply::List(lines)) => {
                self.status = Some(parse_lines(lines, |l| {
                    let s = FunctionStatus::parse(l)?;
                    Ok(JsonStatus {
                        function: lossy(&s.name),
                        total: s.total,
                        running: s.running,
                        workers: s.workers,
                    })
                })?);
            }
            (Operation::PriorityStatus, Reply::List(lines)) => {
                self.priority_status = Some(parse_lines(lines, |l| {
                    let s = FunctionPriorityStatus::parse(l)?;
                    Ok(JsonPriorityStatus {
                        function: lossy(&s.name),
                        high: s.high,
                        normal: s.normal,
                        low: s.low,
                        workers: s.workers,
                    })
                })?);
            }
            (Operation::Workers, Reply::List(lines)) => {
                self.workers = Some(parse_lines(lines, |l| {
                    let w = WorkerInfo::parse(l)?;
                    Ok(JsonWorker {
                        fd: w.fd,
                        address: w.address,
                        client_id: lossy(&w.client_id),
                        functions: w.functions.iter().map(|f| lossy(f)).collect(),
                    })
                })?);
            }
            (Operation::ShowJobs, Reply::List(lines)) => {
                self.show_jobs = Some(parse_lines(lines, |l| {
                    let j = JobInfo::parse(l)?;
                    Ok(JsonJob {
                        handle: lossy(&j.handle),
                        retries: j.retries,
                        ignore: j.ignore,
                        queued: j.queued,
                    })
                })?);
            }
            (Operation::ShowUniqueJobs, Reply::List(lines)) => {
                self.show_unique_jobs = Some(lines.iter().map(|l| lossy(l)).collect());
            }
            _ => return Err(unexpected(reply)),
        }
        Ok(())
    }

    /// The report as pretty-printed JSON with a final newline.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut out = serde_json::to_string_pretty(self)?;
        out.push('\n');
        Ok(out)
    }
}

fn parse_lines<T>(
    lines: &[Vec<u8>],
    parse: impl Fn(&[u8]) -> Result<T, gearman_shared::admin::ReplyError>,
) -> Result<Vec<T>, String> {
    lines
        .iter()
        .map(|l| parse(l).map_err(|e| e.to_string()))
        .collect()
}

fn unexpected(reply: &Reply) -> String {
    format!(
        "unexpected reply {:?}",
        String::from_utf8_lossy(&reply.to_bytes())
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn list(lines: &[&str]) -> Reply {
        Reply::List(lines.iter().map(|l| l.as_bytes().to_vec()).collect())
    }

    fn err(code: &str, text: &str) -> Reply {
        Reply::Error {
            code: code.into(),
            text: text.into(),
        }
    }

    fn out(stdout: &str) -> Printed {
        Printed {
            stdout: stdout.as_bytes().to_vec(),
            ..Printed::default()
        }
    }

    fn error(stderr: &str) -> Printed {
        Printed {
            stderr: stderr.as_bytes().to_vec(),
            failed: true,
            ..Printed::default()
        }
    }

    /// The cases of captures of the C gearadmin (shared/docs/protocol.md §9.2).
    #[test]
    fn text_matches_the_c_tool() {
        assert_eq!(text(&Reply::Ok), out("OK\n"));
        assert_eq!(text(&Reply::Value("1.1.20+ds".into())), out("1.1.20+ds\n"));
        assert_eq!(text(&Reply::Value("INFO".into())), out("INFO\n"));
        assert_eq!(text(&Reply::Value("16779".into())), out("16779\n"));
        assert_eq!(
            text(&list(&["\t0\t0\t0", "ba\t0\t0\t0", "to\t0\t4294967295\t0"])),
            out("\t0\t0\t0\nba\t0\t0\t0\nto\t0\t4294967295\t0\n.\n")
        );
        assert_eq!(
            text(&list(&["38 127.0.0.1 - :"])),
            out("38 127.0.0.1 - :\n.\n")
        );
        assert_eq!(text(&list(&["", "", "u1"])), out("\n\nu1\n.\n"));
        assert_eq!(text(&list(&[])), out(".\n"));
        assert_eq!(
            text(&err("function", "not found")),
            error("Error: function not found\r\n")
        );
        assert_eq!(
            text(&err("UNKNOWN_JOB", "")),
            error("Error: UNKNOWN_JOB\r\n")
        );
        assert_eq!(
            text(&err("UNKNOWN_COMMAND", "Unknown+server+commandshutdown")),
            error("Error: UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n")
        );
    }

    #[test]
    fn several_drop_lines() {
        // All dropped: the C tool prints one OK.
        assert_eq!(
            text(&Reply::Multi(vec![Reply::Ok, Reply::Ok, Reply::Ok])),
            out("OK\n")
        );
        let busy = err("there", "are still connected workers or executing clients");
        // ERR first: everything after "ERR " goes to stderr, as in the C tool.
        assert_eq!(
            text(&Reply::Multi(vec![busy.clone(), Reply::Ok])),
            error("Error: there are still connected workers or executing clients\r\nOK\r\n")
        );
        // OK first: the C tool prints OK and loses the error; we report it too.
        assert_eq!(
            text(&Reply::Multi(vec![Reply::Ok, busy])),
            Printed {
                stdout: b"OK\n".to_vec(),
                stderr: b"Error: there are still connected workers or executing clients\r\n"
                    .to_vec(),
                failed: true,
            }
        );
    }

    #[test]
    fn json_report() {
        let mut report = JsonReport::default();
        let ops_and_replies = [
            (Operation::Getpid, Reply::Value("16779".into())),
            (Operation::CreateFunction(b"f".to_vec()), Reply::Ok),
            (
                Operation::DropFunction(b"nope".to_vec()),
                err("function", "not found"),
            ),
            (
                Operation::ShowJobs,
                list(&["H:host:1\t0\t0\t1", "H:host:2\t2\t1\t0"]),
            ),
            (Operation::ShowUniqueJobs, list(&["u1", ""])),
            (
                Operation::CancelJob(b"H:host:9".to_vec()),
                err("UNKNOWN_JOB", ""),
            ),
            (Operation::ServerVerbose, Reply::Value("INFO".into())),
            (Operation::ServerVersion, Reply::Value("1.1.20+ds".into())),
            (
                Operation::Workers,
                list(&["38 127.0.0.1 w1 : b a", "39 ::1 - :"]),
            ),
            (Operation::PriorityStatus, list(&["f\t1\t2\t3\t4"])),
            (Operation::Status, list(&["f\t6\t0\t4", "\t0\t0\t0"])),
            (Operation::Shutdown, Reply::Ok),
        ];
        let mut stderr = Vec::new();
        let mut failed = false;
        for (op, reply) in &ops_and_replies {
            let printed = report.record(op, reply);
            assert!(printed.stdout.is_empty());
            stderr.extend_from_slice(&printed.stderr);
            failed |= printed.failed;
        }
        assert!(failed);
        assert_eq!(
            String::from_utf8(stderr).unwrap(),
            "Error: function not found\r\nError: UNKNOWN_JOB\r\n"
        );
        let value: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        let expected = serde_json::json!({
            "getpid": 16779,
            "create_function": "OK",
            "show_jobs": [
                {"handle": "H:host:1", "retries": 0, "ignore": false, "queued": true},
                {"handle": "H:host:2", "retries": 2, "ignore": true, "queued": false}
            ],
            "show_unique_jobs": ["u1", ""],
            "server_verbose": "INFO",
            "server_version": "1.1.20+ds",
            "workers": [
                {"fd": 38, "address": "127.0.0.1", "client_id": "w1", "functions": ["b", "a"]},
                {"fd": 39, "address": "::1", "client_id": "-", "functions": []}
            ],
            "priority_status": [
                {"function": "f", "high": 1, "normal": 2, "low": 3, "workers": 4}
            ],
            "status": [
                {"function": "f", "total": 6, "running": 0, "workers": 4},
                {"function": "", "total": 0, "running": 0, "workers": 0}
            ],
            "shutdown": "OK",
            "errors": [
                {"operation": "drop_function", "error": "function not found"},
                {"operation": "cancel_job", "error": "UNKNOWN_JOB"}
            ]
        });
        assert_eq!(value, expected);
        // Keys come in execution order.
        let json = report.to_json().unwrap();
        let pos = |key: &str| json.find(&format!("\"{key}\":")).unwrap();
        assert!(pos("getpid") < pos("create_function"));
        assert!(pos("workers") < pos("priority_status"));
        assert!(pos("status") > pos("priority_status"));
        assert!(pos("errors") > pos("shutdown"));
        assert!(json.ends_with("}\n"));
    }

    #[test]
    fn json_empty_report_and_odd_replies() {
        let report = JsonReport::default();
        assert_eq!(report.to_json().unwrap(), "{\n  \"errors\": []\n}\n");

        let mut report = JsonReport::default();
        let printed = report.record(&Operation::Status, &list(&["no tabs here"]));
        assert!(printed.failed);
        assert!(String::from_utf8_lossy(&printed.stderr).starts_with("Error: --status: "));
        assert_eq!(report.errors[0].operation, "status");
        assert!(report.status.is_none());

        let printed = report.record(&Operation::Getpid, &Reply::Value("abc".into()));
        assert!(!printed.failed);
        assert_eq!(report.getpid, Some(serde_json::Value::from("abc")));

        let printed = report.record(
            &Operation::DropFunction(b"x".to_vec()),
            &Reply::Multi(vec![Reply::Ok, Reply::Ok]),
        );
        assert!(!printed.failed);
        assert_eq!(report.drop_function.as_deref(), Some("OK"));
    }
}
