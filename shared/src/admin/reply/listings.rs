//! The five listing line types (`status`, `prioritystatus`, `workers`, `show jobs`,
//! `show unique jobs`): exact rendering on the server side, parsing on the tool side.

use bytes::{BufMut, Bytes};

use super::bytes::{
    lossy, parse_i64, parse_u64, put_c_string, put_i64, put_u64, split_once, strip_lf,
};
use super::ReplyError;

/// One `status` line: `NAME\tTOTAL\tRUNNING\tWORKERS\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionStatus {
    /// The function name.
    pub name: Bytes,
    /// Queued plus running jobs.
    pub total: u64,
    /// Jobs a worker is running.
    pub running: u64,
    /// Worker registrations (CAN_DO) for the function.
    pub workers: u64,
}

impl FunctionStatus {
    /// Appends the line, `\n` included.
    pub fn render(&self, out: &mut impl BufMut) {
        out.put_slice(&self.name);
        for n in [self.total, self.running, self.workers] {
            out.put_u8(b'\t');
            put_u64(out, n);
        }
        out.put_u8(b'\n');
    }

    /// Parses a line, with or without its `\n`.
    pub fn parse(line: &[u8]) -> Result<Self, ReplyError> {
        // Split from the right: the counts are fixed, but a name may itself hold a tab.
        let (name, [total, running, workers]) = split_counts("status", line)?;
        Ok(FunctionStatus {
            name,
            total,
            running,
            workers,
        })
    }
}

/// One `prioritystatus` line: `NAME\tHIGH\tNORMAL\tLOW\tWORKERS\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionPriorityStatus {
    /// The function name.
    pub name: Bytes,
    /// Queued (not running) HIGH jobs.
    pub high: u64,
    /// Queued (not running) NORMAL jobs.
    pub normal: u64,
    /// Queued (not running) LOW jobs.
    pub low: u64,
    /// Worker registrations (CAN_DO) for the function.
    pub workers: u64,
}

impl FunctionPriorityStatus {
    /// Appends the line, `\n` included.
    pub fn render(&self, out: &mut impl BufMut) {
        out.put_slice(&self.name);
        for n in [self.high, self.normal, self.low, self.workers] {
            out.put_u8(b'\t');
            put_u64(out, n);
        }
        out.put_u8(b'\n');
    }

    /// Parses a line, with or without its `\n`.
    pub fn parse(line: &[u8]) -> Result<Self, ReplyError> {
        let (name, [high, normal, low, workers]) = split_counts("prioritystatus", line)?;
        Ok(FunctionPriorityStatus {
            name,
            high,
            normal,
            low,
            workers,
        })
    }
}

/// One `workers` line: `FD IP ID : fn1 fn2\n`, or `FD IP ID :\n` with no functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// The server's socket descriptor for the connection.
    pub fd: i64,
    /// The numeric peer address.
    pub address: String,
    /// The client ID set with SET_CLIENT_ID, `-` by default.
    pub client_id: Bytes,
    /// Registered functions, newest first, duplicates repeated.
    pub functions: Vec<Bytes>,
}

impl WorkerInfo {
    /// Appends the line, `\n` included.
    pub fn render(&self, out: &mut impl BufMut) {
        put_i64(out, self.fd);
        out.put_u8(b' ');
        out.put_slice(self.address.as_bytes());
        out.put_u8(b' ');
        put_c_string(out, &self.client_id);
        out.put_slice(b" :");
        for function in &self.functions {
            out.put_u8(b' ');
            out.put_slice(function);
        }
        out.put_u8(b'\n');
    }

    /// Parses a line, with or without its `\n`.
    ///
    /// The format is ambiguous when an ID contains ` :` or a function name contains a space;
    /// the first ` :` then ends the ID and names are split at every space.
    pub fn parse(line: &[u8]) -> Result<Self, ReplyError> {
        let body = strip_lf(line);
        let bad = || ReplyError::Malformed {
            what: "workers",
            line: lossy(line),
        };
        let (fd, rest) = split_once(body, b' ').ok_or_else(bad)?;
        let fd = parse_i64(fd).ok_or_else(bad)?;
        let (address, rest) = split_once(rest, b' ').ok_or_else(bad)?;
        // The ID ends at the first " :" that is followed by the end or by a space.
        let colon = (0..rest.len().saturating_sub(1))
            .find(|&i| {
                rest[i] == b' '
                    && rest[i + 1] == b':'
                    && matches!(rest.get(i + 2), None | Some(b' '))
            })
            .ok_or_else(bad)?;
        let client_id = Bytes::copy_from_slice(&rest[..colon]);
        let functions = match &rest[colon + 2..] {
            [] => Vec::new(),
            [b' ', names @ ..] => names
                .split(|&b| b == b' ')
                .map(Bytes::copy_from_slice)
                .collect(),
            _ => return Err(bad()),
        };
        Ok(WorkerInfo {
            fd,
            address: String::from_utf8_lossy(address).into_owned(),
            client_id,
            functions,
        })
    }
}

/// One `show jobs` line: `HANDLE\tRETRIES\tIGNORE\tQUEUED\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// The job handle.
    pub handle: Bytes,
    /// How many times the job was handed back after a worker was lost.
    pub retries: u32,
    /// The job was cancelled or abandoned and will not run.
    pub ignore: bool,
    /// The job is in the persistent queue (background jobs).
    pub queued: bool,
}

impl JobInfo {
    /// Appends the line, `\n` included.
    pub fn render(&self, out: &mut impl BufMut) {
        put_c_string(out, &self.handle);
        out.put_u8(b'\t');
        put_u64(out, u64::from(self.retries));
        out.put_slice(if self.ignore { b"\t1" } else { b"\t0" });
        out.put_slice(if self.queued { b"\t1\n" } else { b"\t0\n" });
    }

    /// Parses a line, with or without its `\n`. Any non-zero flag counts as set.
    pub fn parse(line: &[u8]) -> Result<Self, ReplyError> {
        let (handle, [retries, ignore, queued]) = split_counts("show jobs", line)?;
        let retries = u32::try_from(retries).map_err(|_| ReplyError::Malformed {
            what: "show jobs",
            line: lossy(line),
        })?;
        Ok(JobInfo {
            handle,
            retries,
            ignore: ignore != 0,
            queued: queued != 0,
        })
    }
}

/// One `show unique jobs` line: the unique ID (possibly empty), then `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueJob {
    /// The unique ID as submitted.
    pub unique: Bytes,
}

impl UniqueJob {
    /// Appends the line, `\n` included.
    pub fn render(&self, out: &mut impl BufMut) {
        out.put_slice(&self.unique);
        out.put_u8(b'\n');
    }

    /// Parses a line, with or without its `\n`.
    pub fn parse(line: &[u8]) -> Self {
        UniqueJob {
            unique: Bytes::copy_from_slice(strip_lf(line)),
        }
    }
}

/// Splits `NAME\tN1\t…\tNk` from the right into the name and k decimal counts.
fn split_counts<const K: usize>(
    what: &'static str,
    line: &[u8],
) -> Result<(Bytes, [u64; K]), ReplyError> {
    let bad = || ReplyError::Malformed {
        what,
        line: lossy(line),
    };
    let mut rest = strip_lf(line);
    let mut counts = [0u64; K];
    for slot in counts.iter_mut().rev() {
        let tab = rest.iter().rposition(|&b| b == b'\t').ok_or_else(bad)?;
        *slot = parse_u64(&rest[tab + 1..]).ok_or_else(bad)?;
        rest = &rest[..tab];
    }
    Ok((Bytes::copy_from_slice(rest), counts))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::rendered;
    use super::*;

    #[test]
    fn status_lines() {
        let s = FunctionStatus {
            name: "reverse".into(),
            total: 3,
            running: 0,
            workers: 2,
        };
        let wire = rendered(|o| s.render(o));
        assert_eq!(wire, b"reverse\t3\t0\t2\n");
        assert_eq!(FunctionStatus::parse(&wire).unwrap(), s);
        // Counts the C server printed after an underflow, and an empty name.
        let s = FunctionStatus::parse(b"to\t0\t4294967295\t0").unwrap();
        assert_eq!(s.running, 4_294_967_295);
        assert_eq!(FunctionStatus::parse(b"\t0\t0\t0\n").unwrap().name, "");
        // A tab inside the name stays in the name.
        assert_eq!(
            FunctionStatus::parse(b"a\tb\t1\t2\t3").unwrap().name,
            "a\tb"
        );
        assert!(FunctionStatus::parse(b"x\t1\t2").is_err());
        assert!(FunctionStatus::parse(b"x\t1\t2\tz").is_err());
        assert!(FunctionStatus::parse(b"x\t1\t-2\t3").is_err());
    }

    #[test]
    fn priority_status_lines() {
        let s = FunctionPriorityStatus {
            name: "mq".into(),
            high: 2,
            normal: 4,
            low: 1,
            workers: 0,
        };
        let wire = rendered(|o| s.render(o));
        assert_eq!(wire, b"mq\t2\t4\t1\t0\n");
        assert_eq!(FunctionPriorityStatus::parse(&wire).unwrap(), s);
        assert!(FunctionPriorityStatus::parse(b"mq\t2\t4\t1").is_err());
    }

    #[test]
    fn worker_lines() {
        let w = WorkerInfo {
            fd: 37,
            address: "127.0.0.1".into(),
            client_id: "worker-1".into(),
            functions: vec!["upper".into(), "reverse".into()],
        };
        let wire = rendered(|o| w.render(o));
        assert_eq!(wire, b"37 127.0.0.1 worker-1 : upper reverse\n");
        assert_eq!(WorkerInfo::parse(&wire).unwrap(), w);

        let w = WorkerInfo {
            fd: 39,
            address: "127.0.0.1".into(),
            client_id: "-".into(),
            functions: vec![],
        };
        let wire = rendered(|o| w.render(o));
        assert_eq!(wire, b"39 127.0.0.1 - :\n");
        assert_eq!(WorkerInfo::parse(&wire).unwrap(), w);

        // IPv6 addresses contain colons but no spaces; an empty function name and an
        // empty ID survive the round trip.
        let w = WorkerInfo {
            fd: 5,
            address: "::1".into(),
            client_id: "".into(),
            functions: vec!["".into(), "f".into()],
        };
        let wire = rendered(|o| w.render(o));
        assert_eq!(wire, b"5 ::1  :  f\n");
        assert_eq!(WorkerInfo::parse(&wire).unwrap(), w);

        // An ID containing ':' (but not " :") is fine.
        let w = WorkerInfo::parse(b"7 10.0.0.1 a:b : f").unwrap();
        assert_eq!(w.client_id, "a:b");
        assert_eq!(w.functions, vec![Bytes::from("f")]);

        assert!(WorkerInfo::parse(b"x 127.0.0.1 - :").is_err());
        assert!(WorkerInfo::parse(b"37 127.0.0.1 -").is_err());
        assert!(WorkerInfo::parse(b"37").is_err());
    }

    #[test]
    fn job_lines() {
        let j = JobInfo {
            handle: "H:host:1".into(),
            retries: 0,
            ignore: false,
            queued: true,
        };
        let wire = rendered(|o| j.render(o));
        assert_eq!(wire, b"H:host:1\t0\t0\t1\n");
        assert_eq!(JobInfo::parse(&wire).unwrap(), j);
        let j = JobInfo::parse(b"H:vm:22\t2\t1\t0\n").unwrap();
        assert_eq!((j.retries, j.ignore, j.queued), (2, true, false));
        assert_eq!(rendered(|o| j.render(o)), b"H:vm:22\t2\t1\t0\n");
        assert!(JobInfo::parse(b"H:vm:22\t99999999999\t1\t0").is_err());
    }

    #[test]
    fn unique_lines() {
        for u in ["", "u-1", "-"] {
            let line = UniqueJob {
                unique: Bytes::copy_from_slice(u.as_bytes()),
            };
            let wire = rendered(|o| line.render(o));
            assert_eq!(wire, format!("{u}\n").as_bytes());
            assert_eq!(UniqueJob::parse(&wire), line);
        }
    }
}
