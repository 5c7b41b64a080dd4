//! Admin reply lines: exact rendering (server side) and parsing (tool side) of every reply.
//!
//! Line endings follow gearmand 1.1.20 exactly (shared/docs/protocol.md §5.2): listing lines and
//! the `.\n` terminator end in `\n`, `OK <value>\n` ends in `\n`, while `OK\r\n` and every
//! `ERR …\r\n` end in `\r\n`. Tools rely on this, so renderers never choose the ending.

use bytes::{BufMut, Bytes};

/// `OK\r\n`: success without a value.
pub const OK: &[u8] = b"OK\r\n";
/// `.\n`: the line that ends every listing.
pub const LIST_END: &[u8] = b".\n";
/// `cancel job H` for a handle the server does not hold.
pub const ERR_UNKNOWN_JOB: &[u8] = b"ERR UNKNOWN_JOB\r\n";
/// A command that produced no reply, e.g. `cancel foo bar`.
pub const ERR_UNKNOWN_ERROR: &[u8] = b"ERR UNKNOWN_ERROR\r\n";
/// `show` followed by anything but `jobs` or `unique jobs`.
pub const ERR_UNKNOWN_SHOW_ARGUMENTS: &[u8] = b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n";
/// `drop function F` when no function matches F.
pub const ERR_FUNCTION_NOT_FOUND: &[u8] = b"ERR function not found\r\n";
/// `drop function F` for a matching function that still has workers or running jobs.
pub const ERR_FUNCTION_BUSY: &[u8] =
    b"ERR there are still connected workers or executing clients\r\n";
/// Prefix of the unknown-command error; the first token follows with no separator.
pub const ERR_UNKNOWN_COMMAND_PREFIX: &[u8] = b"ERR UNKNOWN_COMMAND Unknown+server+command";
/// Prefix of the wrong-argument-count error; the first token follows with no separator.
pub const ERR_INVALID_ARGUMENTS_PREFIX: &[u8] =
    b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+";
/// Prefix of the error for a function the server failed to create.
pub const ERR_CREATE_FUNCTION_PREFIX: &[u8] = b"ERR CREATE_FUNCTION ";

/// A reply line that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A listing line lacks a field or has a non-numeric count.
    #[error("malformed {what} line: {line:?}")]
    Malformed {
        /// Which kind of line was expected.
        what: &'static str,
        /// The offending line, lossily decoded.
        line: String,
    },
    /// A one-line reply that is neither `OK…` nor `ERR…`.
    #[error("unrecognised reply line: {0:?}")]
    Unrecognized(String),
}

/// How the reply to a command is delimited, which only the command can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyShape {
    /// Exactly one `OK…` or `ERR…` line.
    Line,
    /// Lines up to a line equal to `.`; or a single `ERR …\r\n` line from a server that
    /// does not know the command.
    Listing,
    /// One or more `OK\r\n` / `ERR …\r\n` lines, one per matching function (`drop function`
    /// matches names case-insensitively); the count cannot be known from the bytes alone.
    Lines,
}

/// Every fixed error line the server sends in reply to a text command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorReply {
    /// `ERR UNKNOWN_COMMAND Unknown+server+command<token>\r\n`.
    UnknownCommand {
        /// The first token as typed.
        token: Bytes,
    },
    /// `ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+<token>\r\n`.
    InvalidArguments {
        /// The first token as typed.
        token: Bytes,
    },
    /// `ERR UNKNOWN_SHOW_ARGUMENTS\r\n`.
    UnknownShowArguments,
    /// `ERR UNKNOWN_ERROR\r\n`.
    UnknownError,
    /// `ERR UNKNOWN_JOB\r\n`.
    UnknownJob,
    /// `ERR function not found\r\n`.
    FunctionNotFound,
    /// `ERR there are still connected workers or executing clients\r\n`.
    FunctionBusy,
    /// `ERR CREATE_FUNCTION <name>\r\n` (gearmand sends it only when allocation fails).
    CreateFunction {
        /// The requested function name.
        name: Bytes,
    },
}

impl ErrorReply {
    /// Appends the exact error line, `\r\n` included.
    pub fn render(&self, out: &mut impl BufMut) {
        match self {
            ErrorReply::UnknownCommand { token } => {
                out.put_slice(ERR_UNKNOWN_COMMAND_PREFIX);
                put_c_string(out, token);
                out.put_slice(b"\r\n");
            }
            ErrorReply::InvalidArguments { token } => {
                out.put_slice(ERR_INVALID_ARGUMENTS_PREFIX);
                put_c_string(out, token);
                out.put_slice(b"\r\n");
            }
            ErrorReply::CreateFunction { name } => {
                out.put_slice(ERR_CREATE_FUNCTION_PREFIX);
                put_c_string(out, name);
                out.put_slice(b"\r\n");
            }
            ErrorReply::UnknownShowArguments => out.put_slice(ERR_UNKNOWN_SHOW_ARGUMENTS),
            ErrorReply::UnknownError => out.put_slice(ERR_UNKNOWN_ERROR),
            ErrorReply::UnknownJob => out.put_slice(ERR_UNKNOWN_JOB),
            ErrorReply::FunctionNotFound => out.put_slice(ERR_FUNCTION_NOT_FOUND),
            ErrorReply::FunctionBusy => out.put_slice(ERR_FUNCTION_BUSY),
        }
    }

    /// The exact error line as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.render(&mut out);
        out
    }

    /// The same line as a client would parse it.
    pub fn to_reply(&self) -> Reply {
        let (code, text) = split_error(trim_line(&self.to_bytes()).get(4..).unwrap_or_default());
        Reply::Error { code, text }
    }
}

/// A whole reply as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `OK\r\n`.
    Ok,
    /// `OK <value>\n` (version, verbose level, pid).
    Value(String),
    /// `ERR <code> <text>\r\n`. `text` is kept as sent: `+` stands for a space in the
    /// C server's texts, see [`decode_error_text`]. Both are lossily decoded UTF-8.
    Error {
        /// The first word after `ERR`, e.g. `UNKNOWN_JOB` (or `function` for
        /// `ERR function not found`).
        code: String,
        /// The rest of the line without its `\r\n`, possibly empty.
        text: String,
    },
    /// A listing: every line without its `\n`, the `.` terminator excluded.
    List(Vec<Vec<u8>>),
    /// Several one-line replies to a single command (`drop function` matching several names).
    Multi(Vec<Reply>),
}

impl Reply {
    /// An error reply whose human-readable text is encoded the C server's way (spaces → `+`).
    pub fn error(code: &str, text: &str) -> Reply {
        Reply::Error {
            code: code.to_owned(),
            text: encode_error_text(text),
        }
    }

    /// Appends the exact wire bytes of this reply.
    pub fn render(&self, out: &mut impl BufMut) {
        match self {
            Reply::Ok => out.put_slice(OK),
            Reply::Value(value) => render_value(value.as_bytes(), out),
            Reply::Error { code, text } => {
                out.put_slice(b"ERR ");
                out.put_slice(code.as_bytes());
                if !text.is_empty() {
                    out.put_u8(b' ');
                    out.put_slice(text.as_bytes());
                }
                out.put_slice(b"\r\n");
            }
            Reply::List(lines) => {
                for line in lines {
                    out.put_slice(line);
                    out.put_u8(b'\n');
                }
                out.put_slice(LIST_END);
            }
            Reply::Multi(replies) => {
                for reply in replies {
                    reply.render(out);
                }
            }
        }
    }

    /// The exact wire bytes of this reply as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.render(&mut out);
        out
    }

    /// Parses one `OK…` or `ERR…` line, with or without its `\n` / `\r\n`.
    pub fn parse_line(line: &[u8]) -> Result<Reply, ReplyError> {
        let body = trim_line(line);
        if body == b"OK" {
            Ok(Reply::Ok)
        } else if let Some(value) = body.strip_prefix(b"OK ") {
            Ok(Reply::Value(String::from_utf8_lossy(value).into_owned()))
        } else if body == b"ERR" {
            Ok(Reply::Error {
                code: String::new(),
                text: String::new(),
            })
        } else if let Some(rest) = body.strip_prefix(b"ERR ") {
            let (code, text) = split_error(rest);
            Ok(Reply::Error { code, text })
        } else {
            Err(ReplyError::Unrecognized(lossy(line)))
        }
    }

    /// Parses one complete reply of the given shape from the start of `buf`.
    ///
    /// Returns `None` while `buf` holds only part of it, else the reply and the number of
    /// bytes it used. [`ReplyShape::Lines`] has no end marker, so it parses a single line
    /// here; a caller needs its own way to know how many follow (see `AdminClient`).
    pub fn parse(buf: &[u8], shape: ReplyShape) -> Result<Option<(Reply, usize)>, ReplyError> {
        let mut lines = LineIter { buf, pos: 0 };
        let Some(first) = lines.next() else {
            return Ok(None);
        };
        if shape != ReplyShape::Listing || is_error_line(first) {
            return Ok(Some((Reply::parse_line(first)?, lines.pos)));
        }
        let mut list = Vec::new();
        let mut line = first;
        loop {
            if is_list_end(line) {
                return Ok(Some((Reply::List(list), lines.pos)));
            }
            list.push(strip_lf(line).to_vec());
            match lines.next() {
                Some(next) => line = next,
                None => return Ok(None),
            }
        }
    }
}

/// Appends `OK <value>\n`.
pub fn render_value(value: &[u8], out: &mut impl BufMut) {
    out.put_slice(b"OK ");
    out.put_slice(value);
    out.put_u8(b'\n');
}

/// Whether `line` (with its `\n`) is the `.` that ends a listing.
pub fn is_list_end(line: &[u8]) -> bool {
    strip_lf(line) == b"."
}

/// Whether `line` (with its terminator) is an `ERR …\r\n` line rather than a listing line.
///
/// Listing lines end in a bare `\n`, so the `\r\n` ending tells the two apart even for a
/// function named `ERR x`. Only a unique ID ending in `\r` could still be mistaken.
pub fn is_error_line(line: &[u8]) -> bool {
    line.starts_with(b"ERR") && line.ends_with(b"\r\n")
}

/// Encodes an error text the C server's way: every space becomes `+`.
pub fn encode_error_text(text: &str) -> String {
    text.replace(' ', "+")
}

/// Decodes an error text: every `+` becomes a space (lossy if the text held a real `+`).
pub fn decode_error_text(text: &str) -> String {
    text.replace('+', " ")
}

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

/// Iterates over complete `\n`-terminated lines, each with its `\n`.
struct LineIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for LineIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.buf.get(self.pos..)?;
        let end = rest.iter().position(|&b| b == b'\n')? + 1;
        self.pos += end;
        Some(&rest[..end])
    }
}

/// Drops one trailing `\n`.
fn strip_lf(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Drops one trailing `\n`, then one trailing `\r`.
fn trim_line(line: &[u8]) -> &[u8] {
    let line = strip_lf(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits what follows `ERR ` into the code and the (possibly empty) text.
fn split_error(rest: &[u8]) -> (String, String) {
    let (code, text) = split_once(rest, b' ').unwrap_or((rest, b""));
    (lossy(code), lossy(text))
}

fn split_once(bytes: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|&b| b == sep)?;
    Some((&bytes[..i], &bytes[i + 1..]))
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

/// Strict decimal: one or more ASCII digits, nothing else.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn parse_i64(digits: &[u8]) -> Option<i64> {
    match digits {
        [b'-', rest @ ..] => parse_u64(rest).and_then(|n| 0i64.checked_sub_unsigned(n)),
        _ => parse_u64(digits).and_then(|n| i64::try_from(n).ok()),
    }
}

/// Writes `bytes` the way `printf("%s")` would: up to the first NUL.
fn put_c_string(out: &mut impl BufMut, bytes: &[u8]) {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    out.put_slice(&bytes[..end]);
}

fn put_u64(out: &mut impl BufMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // n % 10 is a single digit, so the narrowing is exact.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

fn put_i64(out: &mut impl BufMut, n: i64) {
    if n < 0 {
        out.put_u8(b'-');
    }
    put_u64(out, n.unsigned_abs());
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rendered(f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    #[test]
    fn fixed_error_lines() {
        let cases: &[(ErrorReply, &[u8])] = &[
            (
                ErrorReply::UnknownCommand {
                    token: "show".into(),
                },
                b"ERR UNKNOWN_COMMAND Unknown+server+commandshow\r\n",
            ),
            (
                ErrorReply::UnknownCommand { token: "".into() },
                b"ERR UNKNOWN_COMMAND Unknown+server+command\r\n",
            ),
            (
                ErrorReply::InvalidArguments {
                    token: "create".into(),
                },
                b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+create\r\n",
            ),
            (
                ErrorReply::UnknownShowArguments,
                b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n",
            ),
            (ErrorReply::UnknownError, b"ERR UNKNOWN_ERROR\r\n"),
            (ErrorReply::UnknownJob, b"ERR UNKNOWN_JOB\r\n"),
            (ErrorReply::FunctionNotFound, b"ERR function not found\r\n"),
            (
                ErrorReply::FunctionBusy,
                b"ERR there are still connected workers or executing clients\r\n",
            ),
            (
                ErrorReply::CreateFunction { name: "f".into() },
                b"ERR CREATE_FUNCTION f\r\n",
            ),
        ];
        for (reply, wire) in cases {
            assert_eq!(reply.to_bytes(), *wire, "{reply:?}");
            // The client-side view renders back to the same bytes.
            assert_eq!(reply.to_reply().to_bytes(), *wire, "{reply:?}");
            assert_eq!(Reply::parse_line(wire).unwrap(), reply.to_reply());
        }
    }

    #[test]
    fn echoed_tokens_stop_at_nul_like_printf() {
        let reply = ErrorReply::UnknownCommand {
            token: Bytes::from_static(b"bo\0gus"),
        };
        assert_eq!(
            reply.to_bytes(),
            b"ERR UNKNOWN_COMMAND Unknown+server+commandbo\r\n"
        );
    }

    #[test]
    fn error_codes_and_texts() {
        assert_eq!(
            Reply::parse_line(b"ERR UNKNOWN_JOB\r\n").unwrap(),
            Reply::Error {
                code: "UNKNOWN_JOB".into(),
                text: "".into()
            }
        );
        let err = Reply::parse_line(
            b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+drop\r\n",
        )
        .unwrap();
        let Reply::Error { code, text } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(code, "INVALID_ARGUMENTS");
        assert_eq!(
            decode_error_text(text),
            "An incomplete set of arguments was sent to this command drop"
        );
        assert_eq!(
            Reply::error(
                "INVALID_ARGUMENTS",
                "An incomplete set of arguments was sent to this command drop"
            ),
            err
        );
        assert_eq!(
            Reply::parse_line(b"ERR function not found\r\n").unwrap(),
            Reply::Error {
                code: "function".into(),
                text: "not found".into()
            }
        );
    }

    #[test]
    fn one_line_replies_round_trip() {
        let cases: &[(Reply, &[u8])] = &[
            (Reply::Ok, b"OK\r\n"),
            (Reply::Value("1.1.20+ds".into()), b"OK 1.1.20+ds\n"),
            (Reply::Value("ERROR".into()), b"OK ERROR\n"),
            (Reply::Value("27233".into()), b"OK 27233\n"),
            (
                Reply::Error {
                    code: "UNKNOWN_SHOW_ARGUMENTS".into(),
                    text: "".into(),
                },
                b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n",
            ),
        ];
        for (reply, wire) in cases {
            assert_eq!(reply.to_bytes(), *wire);
            assert_eq!(Reply::parse_line(wire).unwrap(), *reply);
            assert_eq!(
                Reply::parse(wire, ReplyShape::Line).unwrap(),
                Some((reply.clone(), wire.len()))
            );
        }
        assert_eq!(rendered(|o| render_value(b"42", o)), b"OK 42\n");
        assert!(matches!(
            Reply::parse_line(b"hello\n"),
            Err(ReplyError::Unrecognized(_))
        ));
    }

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

    #[test]
    fn listings_from_the_capture() {
        let wire = b"\n\nu-1\n-\n.\n";
        let (reply, used) = Reply::parse(wire, ReplyShape::Listing).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(
            reply,
            Reply::List(vec![
                b"".to_vec(),
                b"".to_vec(),
                b"u-1".to_vec(),
                b"-".to_vec()
            ])
        );
        assert_eq!(reply.to_bytes(), wire);

        let wire = b"upper\t1\t1\t1\nreverse\t3\t0\t2\n.\nOK\r\n";
        let (reply, used) = Reply::parse(wire, ReplyShape::Listing).unwrap().unwrap();
        assert_eq!(used, wire.len() - 4, "the next reply is left alone");
        let Reply::List(lines) = &reply else {
            panic!("{reply:?}")
        };
        let parsed: Vec<_> = lines
            .iter()
            .map(|l| FunctionStatus::parse(l).unwrap())
            .collect();
        assert_eq!(parsed[1].name, "reverse");
        assert_eq!(parsed[0].running, 1);

        // An empty listing, and an error instead of a listing.
        assert_eq!(
            Reply::parse(b".\n", ReplyShape::Listing).unwrap(),
            Some((Reply::List(vec![]), 2))
        );
        let wire = b"ERR UNKNOWN_COMMAND Unknown+server+commandstats\r\n";
        let (reply, _) = Reply::parse(wire, ReplyShape::Listing).unwrap().unwrap();
        assert!(matches!(reply, Reply::Error { code, .. } if code == "UNKNOWN_COMMAND"));
        // A function named "ERR x" is still a listing line: it ends in a bare \n.
        let wire = b"ERR x\t0\t0\t0\n.\n";
        let (reply, _) = Reply::parse(wire, ReplyShape::Listing).unwrap().unwrap();
        assert_eq!(reply, Reply::List(vec![b"ERR x\t0\t0\t0".to_vec()]));
    }

    #[test]
    fn partial_input_needs_more() {
        let wire = b"37 127.0.0.1 - :\n.\n";
        for cut in 0..wire.len() {
            assert_eq!(
                Reply::parse(&wire[..cut], ReplyShape::Listing).unwrap(),
                None,
                "cut at {cut}"
            );
        }
        for cut in 0..4 {
            assert_eq!(
                Reply::parse(&b"OK\r\n"[..cut], ReplyShape::Line).unwrap(),
                None
            );
        }
    }

    #[test]
    fn multi_renders_each_line() {
        let reply = Reply::Multi(vec![ErrorReply::FunctionBusy.to_reply(), Reply::Ok]);
        assert_eq!(
            reply.to_bytes(),
            b"ERR there are still connected workers or executing clients\r\nOK\r\n"
        );
    }

    #[test]
    fn renders_into_bytes_mut() {
        let mut out = bytes::BytesMut::new();
        Reply::Ok.render(&mut out);
        put_i64(&mut out, -12);
        put_u64(&mut out, u64::MAX);
        assert_eq!(&out[..], b"OK\r\n-1218446744073709551615");
    }
}
