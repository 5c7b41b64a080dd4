//! The `stats` admin command's reply (our extension): counters the C server never kept.
//!
//! A `.`-terminated listing of tab-separated lines:
//! - `server\t<key>\t<value>` for server-wide values;
//! - `function\t<name>\t<key>=<value>\t…` for each function.
//!
//! Keys a reader does not know are skipped, so new counters can be added later.

use bytes::{BufMut, Bytes};

use super::reply::{ReplyError, LIST_END};

/// Server-wide values, in the order they are listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Open connections.
    pub connections: u64,
    /// Connections that registered at least one function.
    pub workers: u64,
    /// Connections that submitted at least one job.
    pub clients: u64,
    /// Connections that sent at least one admin command.
    pub admins: u64,
    /// Bytes read from all connections.
    pub bytes_in: u64,
    /// Bytes written to all connections.
    pub bytes_out: u64,
    /// Jobs held, in any state.
    pub jobs: u64,
}

/// One function's counters and gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// Function name.
    pub name: Bytes,
    /// Jobs created (coalesced submissions not counted).
    pub submitted: u64,
    /// WORK_COMPLETE received.
    pub completed: u64,
    /// WORK_FAIL received, or failed by the server (retries used up).
    pub failed: u64,
    /// WORK_EXCEPTION received.
    pub exceptions: u64,
    /// Jobs put back in the queue (worker gone, CANT_DO, timeout).
    pub retried: u64,
    /// CAN_DO_TIMEOUT expiries.
    pub timed_out: u64,
    /// `cancel job`.
    pub cancelled: u64,
    /// Queued at HIGH priority.
    pub queued_high: u64,
    /// Queued at NORMAL priority (epoch jobs not yet due included).
    pub queued_normal: u64,
    /// Queued at LOW priority.
    pub queued_low: u64,
    /// Assigned to workers.
    pub running: u64,
    /// Registered workers.
    pub workers: u64,
    /// Age of the oldest queued job in milliseconds, if any is queued.
    pub oldest_queued_ms: Option<u64>,
}

/// The whole `stats` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsReport {
    /// Server-wide values.
    pub server: ServerStats,
    /// Per function, in the server's listing order.
    pub functions: Vec<FunctionStats>,
}

impl ServerStats {
    fn fields(&self) -> [(&'static str, u64); 8] {
        [
            ("uptime_seconds", self.uptime_seconds),
            ("connections", self.connections),
            ("workers", self.workers),
            ("clients", self.clients),
            ("admins", self.admins),
            ("bytes_in", self.bytes_in),
            ("bytes_out", self.bytes_out),
            ("jobs", self.jobs),
        ]
    }

    fn field_mut(&mut self, key: &[u8]) -> Option<&mut u64> {
        Some(match key {
            b"uptime_seconds" => &mut self.uptime_seconds,
            b"connections" => &mut self.connections,
            b"workers" => &mut self.workers,
            b"clients" => &mut self.clients,
            b"admins" => &mut self.admins,
            b"bytes_in" => &mut self.bytes_in,
            b"bytes_out" => &mut self.bytes_out,
            b"jobs" => &mut self.jobs,
            _ => return None,
        })
    }
}

impl FunctionStats {
    /// The counters and gauges with their names, in listing order (`oldest_queued_ms`
    /// apart, as it may be absent).
    pub fn fields(&self) -> [(&'static str, u64); 12] {
        [
            ("submitted", self.submitted),
            ("completed", self.completed),
            ("failed", self.failed),
            ("exceptions", self.exceptions),
            ("retried", self.retried),
            ("timed_out", self.timed_out),
            ("cancelled", self.cancelled),
            ("queued_high", self.queued_high),
            ("queued_normal", self.queued_normal),
            ("queued_low", self.queued_low),
            ("running", self.running),
            ("workers", self.workers),
        ]
    }

    fn field_mut(&mut self, key: &[u8]) -> Option<&mut u64> {
        Some(match key {
            b"submitted" => &mut self.submitted,
            b"completed" => &mut self.completed,
            b"failed" => &mut self.failed,
            b"exceptions" => &mut self.exceptions,
            b"retried" => &mut self.retried,
            b"timed_out" => &mut self.timed_out,
            b"cancelled" => &mut self.cancelled,
            b"queued_high" => &mut self.queued_high,
            b"queued_normal" => &mut self.queued_normal,
            b"queued_low" => &mut self.queued_low,
            b"running" => &mut self.running,
            b"workers" => &mut self.workers,
            _ => return None,
        })
    }

    /// Jobs waiting in the queues, all priorities.
    pub fn queued(&self) -> u64 {
        self.queued_high + self.queued_normal + self.queued_low
    }
}

impl StatsReport {
    /// Appends the listing, terminator included.
    pub fn render(&self, out: &mut impl BufMut) {
        for (key, value) in self.server.fields() {
            out.put_slice(format!("server\t{key}\t{value}\n").as_bytes());
        }
        for f in &self.functions {
            out.put_slice(b"function\t");
            out.put_slice(&f.name);
            for (key, value) in f.fields() {
                out.put_slice(format!("\t{key}={value}").as_bytes());
            }
            if let Some(age) = f.oldest_queued_ms {
                out.put_slice(format!("\toldest_queued_ms={age}").as_bytes());
            }
            out.put_u8(b'\n');
        }
        out.put_slice(LIST_END);
    }

    /// Parses the listing lines (without terminators and the final `.`).
    pub fn parse(lines: &[Vec<u8>]) -> Result<StatsReport, ReplyError> {
        let malformed = |line: &[u8]| ReplyError::Malformed {
            what: "stats line",
            line: String::from_utf8_lossy(line).into_owned(),
        };
        let number = |text: &[u8], line: &[u8]| -> Result<u64, ReplyError> {
            std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| malformed(line))
        };
        let mut report = StatsReport::default();
        for line in lines {
            let mut fields = line.split(|&b| b == b'\t');
            match fields.next() {
                Some(b"server") => {
                    let (Some(key), Some(value)) = (fields.next(), fields.next()) else {
                        return Err(malformed(line));
                    };
                    let value = number(value, line)?;
                    if let Some(slot) = report.server.field_mut(key) {
                        *slot = value;
                    }
                }
                Some(b"function") => {
                    let name = fields.next().ok_or_else(|| malformed(line))?;
                    let mut f = FunctionStats {
                        name: Bytes::copy_from_slice(name),
                        ..FunctionStats::default()
                    };
                    for pair in fields {
                        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                            return Err(malformed(line));
                        };
                        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
                        let value = number(value, line)?;
                        if key == b"oldest_queued_ms" {
                            f.oldest_queued_ms = Some(value);
                        } else if let Some(slot) = f.field_mut(key) {
                            *slot = value;
                        }
                    }
                    report.functions.push(f);
                }
                // Line kinds added later are skipped.
                _ => {}
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let report = StatsReport {
            server: ServerStats {
                uptime_seconds: 5,
                connections: 2,
                bytes_in: 100,
                ..ServerStats::default()
            },
            functions: vec![
                FunctionStats {
                    name: Bytes::from_static(b"rev erse"),
                    submitted: 3,
                    completed: 2,
                    queued_low: 1,
                    oldest_queued_ms: Some(1500),
                    ..FunctionStats::default()
                },
                FunctionStats {
                    name: Bytes::from_static(b"idle"),
                    ..FunctionStats::default()
                },
            ],
        };
        let mut out = Vec::new();
        report.render(&mut out);
        assert!(out.ends_with(b".\n"));
        let text = String::from_utf8(out.clone()).expect("ascii");
        assert!(text.starts_with("server\tuptime_seconds\t5\n"));
        let lines: Vec<Vec<u8>> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && *l != b".")
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(StatsReport::parse(&lines), Ok(report));
    }

    #[test]
    fn unknown_keys_and_lines_are_skipped() {
        let lines = vec![
            b"server\tnew_thing\t7".to_vec(),
            b"future\tx".to_vec(),
            b"function\tf\tsubmitted=1\tnovel=9".to_vec(),
        ];
        let report = StatsReport::parse(&lines).expect("parses");
        assert_eq!(report.functions[0].submitted, 1);
        assert!(StatsReport::parse(&[b"server\tjobs\tmany".to_vec()]).is_err());
    }
}
