//! Admin reply lines: exact rendering (server side) and parsing (tool side) of every reply.
//!
//! Line endings follow gearmand 1.1.20 exactly (shared/docs/protocol.md §5.2): listing lines and
//! the `.\n` terminator end in `\n`, `OK <value>\n` ends in `\n`, while `OK\r\n` and every
//! `ERR …\r\n` end in `\r\n`. Tools rely on this, so renderers never choose the ending.

use ::bytes::{BufMut, Bytes};

// The listing line types and the byte helpers live in submodules; the envelope (whole replies,
// fixed lines, errors) stays here. The listing types are re-exported so their paths stay
// `admin::reply::*`; the helpers are private to this module.
mod bytes;
mod listings;

pub use listings::{FunctionPriorityStatus, FunctionStatus, JobInfo, UniqueJob, WorkerInfo};

use self::bytes::{lossy, put_c_string, split_error, strip_lf, trim_line, LineIter};

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// What a renderer writes (the listings' tests use it too).
    pub(super) fn rendered(f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
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
}
