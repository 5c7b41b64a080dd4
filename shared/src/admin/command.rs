//! Admin text commands: gearmand 1.1.20's tokenizer and command table, byte for byte.
//!
//! The server feeds every `Frame::Text` line to [`parse`] and either runs the command,
//! sends the fixed error line, or closes the connection. Clients use the same table to know
//! how a command's reply is delimited ([`AdminCommand::reply_shape`]).

use bytes::Bytes;

use super::reply::{ErrorReply, ReplyShape};
use crate::protocol::parse_i64_prefix;

/// The most tokens a line may have; with more, gearmand closes the connection.
pub const MAX_TOKENS: usize = 5;

/// A recognised admin command with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// `status`: one line per function, then `.`.
    Status,
    /// `prioritystatus`: queued jobs per priority for each function, then `.`.
    PriorityStatus,
    /// `workers`: one line per connection, then `.`.
    Workers,
    /// `show jobs`: one line per job, then `.`.
    ShowJobs,
    /// `show unique jobs`: one unique ID per line, then `.`.
    ShowUniqueJobs,
    /// `version`: `OK <version>`.
    Version,
    /// `verbose`: `OK <level>`.
    Verbose,
    /// `getpid`: `OK <pid>`.
    Getpid,
    /// `maxqueue FN [N | H N | H N L]`: queue limits, `OK\r\n` even for unknown functions.
    MaxQueue {
        /// The function, matched case-sensitively and exactly.
        function: Bytes,
        /// Limits for HIGH, NORMAL and LOW; 0 means unlimited.
        limits: [u32; 3],
    },
    /// `create function NAME`: creates the function if missing, `OK\r\n`.
    CreateFunction {
        /// The name to create (see [`parse`] for the bare-`\n` quirk).
        name: Bytes,
    },
    /// `drop function NAME`: drops every idle function whose name matches case-insensitively.
    DropFunction {
        /// The name to match.
        name: Bytes,
    },
    /// `cancel job HANDLE`: fails the job for its clients, `OK\r\n` or `ERR UNKNOWN_JOB`.
    CancelJob {
        /// The job handle.
        handle: Bytes,
    },
    /// `shutdown` / `shutdown graceful` (our extension; 1.1.20 does not have it).
    Shutdown {
        /// Wait for queued and running jobs before exiting.
        graceful: bool,
    },
    /// `stats` (our extension): server statistics as a `.`-terminated listing.
    Stats,
}

impl AdminCommand {
    /// How the reply to this command is delimited.
    pub fn reply_shape(&self) -> ReplyShape {
        match self {
            AdminCommand::Status
            | AdminCommand::PriorityStatus
            | AdminCommand::Workers
            | AdminCommand::ShowJobs
            | AdminCommand::ShowUniqueJobs
            | AdminCommand::Stats => ReplyShape::Listing,
            AdminCommand::DropFunction { .. } => ReplyShape::Lines,
            AdminCommand::Version
            | AdminCommand::Verbose
            | AdminCommand::Getpid
            | AdminCommand::MaxQueue { .. }
            | AdminCommand::CreateFunction { .. }
            | AdminCommand::CancelJob { .. }
            | AdminCommand::Shutdown { .. } => ReplyShape::Line,
        }
    }

    /// The canonical text line for this command, without a terminator.
    ///
    /// [`parse`] of this line with a `\r\n` terminator gives the command back as long as
    /// names and handles hold no space, NUL or newline, a `maxqueue` function is non-empty,
    /// and limits are at most `i32::MAX` (larger ones are sent as `i32::MAX`, because the
    /// server reads them with `atoi`).
    pub fn to_line(&self) -> Vec<u8> {
        let fixed: &[u8] = match self {
            AdminCommand::Status => b"status",
            AdminCommand::PriorityStatus => b"prioritystatus",
            AdminCommand::Workers => b"workers",
            AdminCommand::ShowJobs => b"show jobs",
            AdminCommand::ShowUniqueJobs => b"show unique jobs",
            AdminCommand::Version => b"version",
            AdminCommand::Verbose => b"verbose",
            AdminCommand::Getpid => b"getpid",
            AdminCommand::Stats => b"stats",
            AdminCommand::Shutdown { graceful: false } => b"shutdown",
            AdminCommand::Shutdown { graceful: true } => b"shutdown graceful",
            AdminCommand::CreateFunction { name } => {
                return [b"create function ", &name[..]].concat()
            }
            AdminCommand::DropFunction { name } => return [b"drop function ", &name[..]].concat(),
            AdminCommand::CancelJob { handle } => return [b"cancel job ", &handle[..]].concat(),
            AdminCommand::MaxQueue { function, limits } => {
                let mut line = [b"maxqueue ", &function[..]].concat();
                for &limit in limits {
                    let limit = limit.min(i32::MAX.unsigned_abs());
                    line.extend_from_slice(format!(" {limit}").as_bytes());
                }
                return line;
            }
        };
        fixed.to_vec()
    }
}

/// What the server does with one admin text line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Run this command and send its reply.
    Command(AdminCommand),
    /// Send this fixed error line.
    Reply(ErrorReply),
    /// More than [`MAX_TOKENS`] tokens: close the connection without a reply.
    Close,
}

/// Parses one admin line exactly as gearmand 1.1.20 does.
///
/// `line` is the text without its terminator, `terminator_len` how many bytes the terminator had (1
/// for `\n`, 2 for `\r\n`), both as `Frame::Text` carries them. The rules
/// (shared/docs/protocol.md §5.1):
/// - tokens are split at single spaces and the spaces after a split are skipped, so leading
///   spaces give an empty first token and trailing spaces an extra empty last token;
/// - more than [`MAX_TOKENS`] tokens closes the connection;
/// - command words are matched case-insensitively; like C strings, a token is read only up
///   to its first NUL byte (names for `create function` excepted, see below);
/// - `create function NAME` takes the name's length as the C server does, from a length that
///   counts the terminator, minus 2: with `\n` the last byte of the name is dropped. (Where the
///   C server underflows and crashes, on an empty name with `\n`, the name is simply empty.)
pub fn parse(line: &[u8], terminator_len: usize) -> Parsed {
    let tokens = tokenize(line);
    if tokens.len() > MAX_TOKENS {
        return Parsed::Close;
    }
    let word = |i: usize, expected: &str| {
        tokens
            .get(i)
            .is_some_and(|t| c_str(t).eq_ignore_ascii_case(expected.as_bytes()))
    };
    let arg = |i: usize| Bytes::copy_from_slice(tokens.get(i).map_or(&b""[..], |t| c_str(t)));
    let argc = tokens.len();
    let first = arg(0);
    let invalid_arguments = || {
        Parsed::Reply(ErrorReply::InvalidArguments {
            token: first.clone(),
        })
    };

    // Same order and guards as server_run_text(): "cancel" needs 3 tokens and "show" 2 before
    // they are recognised at all; with fewer they are unknown commands.
    let command = if word(0, "workers") {
        AdminCommand::Workers
    } else if word(0, "status") {
        AdminCommand::Status
    } else if word(0, "prioritystatus") {
        AdminCommand::PriorityStatus
    } else if argc >= 3 && word(0, "cancel") {
        if argc == 3 && word(1, "job") {
            AdminCommand::CancelJob { handle: arg(2) }
        } else {
            // gearmand leaves its reply empty here and falls back to UNKNOWN_ERROR.
            return Parsed::Reply(ErrorReply::UnknownError);
        }
    } else if argc >= 2 && word(0, "show") {
        if argc == 3 && word(1, "unique") && word(2, "jobs") {
            AdminCommand::ShowUniqueJobs
        } else if argc == 2 && word(1, "jobs") {
            AdminCommand::ShowJobs
        } else {
            return Parsed::Reply(ErrorReply::UnknownShowArguments);
        }
    } else if word(0, "create") {
        if argc == 3 && word(1, "function") {
            AdminCommand::CreateFunction {
                name: create_function_name(tokens[2], terminator_len),
            }
        } else {
            return invalid_arguments();
        }
    } else if word(0, "drop") {
        if argc == 3 && word(1, "function") {
            AdminCommand::DropFunction { name: arg(2) }
        } else {
            return invalid_arguments();
        }
    } else if word(0, "maxqueue") {
        if argc == 1 {
            return invalid_arguments();
        }
        AdminCommand::MaxQueue {
            function: arg(1),
            limits: maxqueue_limits(&tokens),
        }
    } else if word(0, "getpid") {
        AdminCommand::Getpid
    } else if word(0, "verbose") {
        AdminCommand::Verbose
    } else if word(0, "version") {
        AdminCommand::Version
    } else if word(0, "shutdown") {
        // Our extension, with the arguments check gearmand had before 1.1.15.
        match argc {
            1 => AdminCommand::Shutdown { graceful: false },
            2 if word(1, "graceful") => AdminCommand::Shutdown { graceful: true },
            _ => return invalid_arguments(),
        }
    } else if word(0, "stats") {
        AdminCommand::Stats
    } else {
        return Parsed::Reply(ErrorReply::UnknownCommand { token: first });
    };
    Parsed::Command(command)
}

/// Splits like gearmand: at each space, skipping the spaces that follow it.
fn tokenize(line: &[u8]) -> Vec<&[u8]> {
    let mut tokens = Vec::new();
    let mut rest = line;
    while let Some(space) = rest.iter().position(|&b| b == b' ') {
        tokens.push(&rest[..space]);
        let next = rest[space..]
            .iter()
            .position(|&b| b != b' ')
            .map_or(rest.len(), |skip| space + skip);
        rest = &rest[next..];
        // Stop early: the caller only needs to know there are too many.
        if tokens.len() > MAX_TOKENS {
            return tokens;
        }
    }
    tokens.push(rest);
    tokens
}

/// The token as C string functions see it: up to the first NUL.
fn c_str(token: &[u8]) -> &[u8] {
    token
        .iter()
        .position(|&b| b == 0)
        .map_or(token, |nul| &token[..nul])
}

/// gearmand passes `arg_size - 2` as the length, where `arg_size` of the last token counts
/// the NULs that replaced the terminator: right for `\r\n`, one byte short for `\n`.
fn create_function_name(token: &[u8], terminator_len: usize) -> Bytes {
    let len = (token.len() + terminator_len)
        .saturating_sub(2)
        .min(token.len());
    Bytes::copy_from_slice(&token[..len])
}

/// The four argument forms: `FN` → all 0, `FN N` → all N, `FN H N` → H, N, 0, `FN H N L`.
fn maxqueue_limits(tokens: &[&[u8]]) -> [u32; 3] {
    let mut limits = [0u32; 3];
    for (slot, token) in limits.iter_mut().zip(tokens.iter().skip(2)) {
        *slot = atoi_limit(token);
    }
    // gearmand applies a lone value to every priority.
    if tokens.len() <= 3 {
        limits = [limits[0]; 3];
    }
    limits
}

/// `atoi` as glibc does it (`(int) strtol(...)`, keeping the low 32 bits), then negative → 0.
fn atoi_limit(token: &[u8]) -> u32 {
    let (value, _) = parse_i64_prefix(c_str(token));
    // The truncation is deliberate: it is what the C cast does.
    let value = value as i32;
    u32::try_from(value).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Parses raw request bytes the way the codec would frame them.
    fn p(request: &[u8]) -> Parsed {
        let line = request.strip_suffix(b"\n").unwrap();
        match line.strip_suffix(b"\r") {
            Some(line) => parse(line, 2),
            None => parse(line, 1),
        }
    }

    fn cmd(request: &[u8]) -> AdminCommand {
        match p(request) {
            Parsed::Command(c) => c,
            other => panic!("{:?} => {other:?}", String::from_utf8_lossy(request)),
        }
    }

    /// The exact error bytes a request gets.
    fn err(request: &[u8]) -> Vec<u8> {
        match p(request) {
            Parsed::Reply(e) => e.to_bytes(),
            other => panic!("{:?} => {other:?}", String::from_utf8_lossy(request)),
        }
    }

    fn maxqueue(function: &str, limits: [u32; 3]) -> AdminCommand {
        AdminCommand::MaxQueue {
            function: Bytes::copy_from_slice(function.as_bytes()),
            limits,
        }
    }

    #[test]
    fn tokenizer() {
        let t = tokenize;
        assert_eq!(t(b"status"), vec![&b"status"[..]]);
        assert_eq!(t(b""), vec![&b""[..]]);
        assert_eq!(t(b"  status"), vec![&b""[..], b"status"]);
        assert_eq!(t(b"status   "), vec![&b"status"[..], b""]);
        assert_eq!(t(b"show  jobs"), vec![&b"show"[..], b"jobs"]);
        assert_eq!(t(b" "), vec![&b""[..], b""]);
        assert_eq!(t(b"a\tb c"), vec![&b"a\tb"[..], b"c"]);
    }

    /// Every line of a capture of the C server's admin port (shared/docs/protocol.md §5)
    /// whose reply parsing alone decides.
    #[test]
    fn capture_lines() {
        // Listings and values: the command is recognised (what it prints is server state).
        assert_eq!(cmd(b"status\n"), AdminCommand::Status);
        assert_eq!(cmd(b"status\r\n"), AdminCommand::Status);
        assert_eq!(cmd(b"STATUS\n"), AdminCommand::Status);
        assert_eq!(cmd(b"status   \n"), AdminCommand::Status);
        assert_eq!(cmd(b"prioritystatus\n"), AdminCommand::PriorityStatus);
        assert_eq!(cmd(b"workers\n"), AdminCommand::Workers);
        assert_eq!(cmd(b"show jobs\n"), AdminCommand::ShowJobs);
        assert_eq!(cmd(b"show unique jobs\n"), AdminCommand::ShowUniqueJobs);
        assert_eq!(cmd(b"version\n"), AdminCommand::Version);
        assert_eq!(cmd(b"verbose\n"), AdminCommand::Verbose);
        assert_eq!(cmd(b"getpid\n"), AdminCommand::Getpid);
        assert_eq!(cmd(b"maxqueue reverse 10\n"), maxqueue("reverse", [10; 3]));
        assert_eq!(
            cmd(b"maxqueue reverse 1 2 3\n"),
            maxqueue("reverse", [1, 2, 3])
        );
        assert_eq!(
            cmd(b"maxqueue nosuchfunction 5\n"),
            maxqueue("nosuchfunction", [5; 3])
        );
        assert_eq!(
            cmd(b"create function newfunc\r\n"),
            AdminCommand::CreateFunction {
                name: "newfunc".into()
            }
        );
        // The bare-\n quirk: "newfunc2" creates "newfunc".
        assert_eq!(
            cmd(b"create function newfunc2\n"),
            AdminCommand::CreateFunction {
                name: "newfunc".into()
            }
        );
        assert_eq!(
            cmd(b"drop function newfunc\r\n"),
            AdminCommand::DropFunction {
                name: "newfunc".into()
            }
        );
        assert_eq!(
            cmd(b"drop function reverse\r\n"),
            AdminCommand::DropFunction {
                name: "reverse".into()
            }
        );
        assert_eq!(
            cmd(b"cancel job H:host:3\n"),
            AdminCommand::CancelJob {
                handle: "H:host:3".into()
            }
        );

        // Errors decided by parsing.
        let maxqueue_args: &[u8] = b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n";
        let create_args: &[u8] = b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+create\r\n";
        let drop_args: &[u8] = b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+drop\r\n";
        let unknown =
            |t: &str| format!("ERR UNKNOWN_COMMAND Unknown+server+command{t}\r\n").into_bytes();
        let cases: &[(&[u8], Vec<u8>)] = &[
            (b"maxqueue\n", maxqueue_args.to_vec()),
            (b"create function\n", create_args.to_vec()),
            (b"create\n", create_args.to_vec()),
            (b"create foo bar\n", create_args.to_vec()),
            (b"drop function\n", drop_args.to_vec()),
            (b"drop\n", drop_args.to_vec()),
            (b"cancel job\n", unknown("cancel")),
            (b"cancel\n", unknown("cancel")),
            (b"cancel foo bar\n", b"ERR UNKNOWN_ERROR\r\n".to_vec()),
            (b"cancel job a b\n", b"ERR UNKNOWN_ERROR\r\n".to_vec()),
            (b"show\n", unknown("show")),
            (b"show foo\n", b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n".to_vec()),
            (b"show unique\n", b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n".to_vec()),
            (
                b"show jobs extra\n",
                b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n".to_vec(),
            ),
            (b"gladiator\n", unknown("gladiator")),
            (b"bogus\n", unknown("bogus")),
            (b"\n", unknown("")),
            (b"\r\n", unknown("")),
            (b"  status\n", unknown("")),
            (b"a b c d e\n", unknown("a")),
        ];
        for (request, reply) in cases {
            assert_eq!(
                err(request),
                *reply,
                "{:?}",
                String::from_utf8_lossy(request)
            );
        }
        assert_eq!(p(b"a b c d e f\n"), Parsed::Close);
    }

    /// The rows of shared/docs/protocol.md §5.3 and the trailing-space cases of §5.1.
    #[test]
    fn spec_rows() {
        assert_eq!(cmd(b"status extra args\n"), AdminCommand::Status);
        assert_eq!(cmd(b"maxqueue fn\n"), maxqueue("fn", [0; 3]));
        assert_eq!(cmd(b"maxqueue fn 7\n"), maxqueue("fn", [7; 3]));
        assert_eq!(cmd(b"maxqueue fn 7 8\n"), maxqueue("fn", [7, 8, 0]));
        assert_eq!(cmd(b"maxqueue fn 7 8 9\n"), maxqueue("fn", [7, 8, 9]));
        assert_eq!(cmd(b"maxqueue fn -5\n"), maxqueue("fn", [0; 3]));
        assert_eq!(cmd(b"maxqueue fn 3 -1 x\n"), maxqueue("fn", [3, 0, 0]));
        assert_eq!(cmd(b"maxqueue fn 12abc\n"), maxqueue("fn", [12; 3]));
        // atoi through a 64-bit strtol and an int cast.
        assert_eq!(
            cmd(b"maxqueue fn 2147483647\n"),
            maxqueue("fn", [i32::MAX as u32; 3])
        );
        assert_eq!(cmd(b"maxqueue fn 2147483648\n"), maxqueue("fn", [0; 3]));
        assert_eq!(cmd(b"maxqueue fn 4294967301\n"), maxqueue("fn", [5; 3]));
        assert_eq!(
            cmd(b"maxqueue fn 99999999999999999999\n"),
            maxqueue("fn", [0; 3])
        );
        // Function names are not case-folded for maxqueue; only command words are.
        assert_eq!(cmd(b"MAXQUEUE Fn 1\n"), maxqueue("Fn", [1; 3]));
        assert_eq!(cmd(b"maxqueue \n"), maxqueue("", [0; 3]));

        assert_eq!(
            cmd(b"create function x\n"),
            AdminCommand::CreateFunction { name: "".into() }
        );
        assert_eq!(
            cmd(b"create function foo\n"),
            AdminCommand::CreateFunction { name: "fo".into() }
        );
        assert_eq!(
            cmd(b"create function \r\n"),
            AdminCommand::CreateFunction { name: "".into() }
        );
        // gearmand 1.1.20 crashes on this one (size_t underflow); we create "".
        assert_eq!(
            cmd(b"create function \n"),
            AdminCommand::CreateFunction { name: "".into() }
        );
        assert_eq!(
            err(b"create function foo \n"),
            b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+create\r\n"
        );
        assert_eq!(
            cmd(b"drop function \n"),
            AdminCommand::DropFunction { name: "".into() }
        );
        assert_eq!(err(b"show jobs \n"), b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n");
        assert_eq!(
            err(b"show unique jobs \n"),
            b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n"
        );
        assert_eq!(err(b"show \n"), b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n");
        assert_eq!(
            err(b"cancel \n"),
            b"ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n"
        );
        assert_eq!(err(b"cancel job nosuch \n"), b"ERR UNKNOWN_ERROR\r\n");
        assert_eq!(
            cmd(b"cancel job  \n"),
            AdminCommand::CancelJob { handle: "".into() }
        );
        assert_eq!(
            cmd(b"cancel  job   H:x\n"),
            AdminCommand::CancelJob {
                handle: "H:x".into()
            }
        );
        assert_eq!(cmd(b"show  jobs\n"), AdminCommand::ShowJobs);
        assert_eq!(
            err(b" \n"),
            b"ERR UNKNOWN_COMMAND Unknown+server+command\r\n"
        );

        // Five tokens, counting an empty last one, are fine; six close.
        assert_eq!(cmd(b"status a b c d\n"), AdminCommand::Status);
        assert_eq!(cmd(b"status a b c \n"), AdminCommand::Status);
        assert_eq!(p(b"status a b c d \n"), Parsed::Close);
        assert_eq!(p(b"a b c d e f g h i j\n"), Parsed::Close);
    }

    #[test]
    fn case_and_echo() {
        assert_eq!(cmd(b"SHOW JOBS\n"), AdminCommand::ShowJobs);
        assert_eq!(cmd(b"Show Unique Jobs\n"), AdminCommand::ShowUniqueJobs);
        assert_eq!(
            cmd(b"Cancel Job H:x:1\n"),
            AdminCommand::CancelJob {
                handle: "H:x:1".into()
            }
        );
        assert_eq!(
            cmd(b"CREATE Function xy\r\n"),
            AdminCommand::CreateFunction { name: "xy".into() }
        );
        // The handle keeps its case.
        assert_eq!(
            cmd(b"cancel job h:X\n"),
            AdminCommand::CancelJob {
                handle: "h:X".into()
            }
        );
        // The first token is echoed as typed.
        assert_eq!(
            err(b"Create\n"),
            b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+Create\r\n"
        );
        assert_eq!(
            err(b"DROP\n"),
            b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+DROP\r\n"
        );
        assert_eq!(
            err(b"MAXQUEUE\n"),
            b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+MAXQUEUE\r\n"
        );
        assert_eq!(
            err(b"\tstatus\n"),
            b"ERR UNKNOWN_COMMAND Unknown+server+command\tstatus\r\n"
        );
        assert_eq!(
            err(b"status\tx\n"),
            b"ERR UNKNOWN_COMMAND Unknown+server+commandstatus\tx\r\n"
        );
        // Only one \r is a terminator; the other stays in the token.
        assert_eq!(
            err(b"status\r\r\n"),
            b"ERR UNKNOWN_COMMAND Unknown+server+commandstatus\r\r\n"
        );
        // Tokens are C strings: they end at a NUL.
        assert_eq!(
            err(b"bo\0gus\n"),
            b"ERR UNKNOWN_COMMAND Unknown+server+commandbo\r\n"
        );
        assert_eq!(
            err(b"sta\0tus\n"),
            b"ERR UNKNOWN_COMMAND Unknown+server+commandsta\r\n"
        );
        assert_eq!(cmd(b"version\0junk\n"), AdminCommand::Version);
        assert_eq!(
            cmd(b"cancel job a\0b\n"),
            AdminCommand::CancelJob { handle: "a".into() }
        );
        // ...except the create name, whose length gearmand takes from the token size.
        assert_eq!(
            cmd(b"create function a\0b\r\n"),
            AdminCommand::CreateFunction {
                name: Bytes::from_static(b"a\0b")
            }
        );
    }

    #[test]
    fn extensions() {
        assert_eq!(
            cmd(b"shutdown\n"),
            AdminCommand::Shutdown { graceful: false }
        );
        assert_eq!(
            cmd(b"SHUTDOWN Graceful\r\n"),
            AdminCommand::Shutdown { graceful: true }
        );
        let bad = b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+shutdown\r\n";
        assert_eq!(err(b"shutdown now\n"), bad);
        assert_eq!(err(b"shutdown graceful x\n"), bad);
        assert_eq!(err(b"shutdown \n"), bad);
        assert_eq!(cmd(b"stats\n"), AdminCommand::Stats);
        assert_eq!(cmd(b"STATS extra\n"), AdminCommand::Stats);
    }

    #[test]
    fn canonical_lines_round_trip() {
        let all = [
            AdminCommand::Status,
            AdminCommand::PriorityStatus,
            AdminCommand::Workers,
            AdminCommand::ShowJobs,
            AdminCommand::ShowUniqueJobs,
            AdminCommand::Version,
            AdminCommand::Verbose,
            AdminCommand::Getpid,
            maxqueue("f", [1, 2, 3]),
            maxqueue("f", [0, 0, 0]),
            AdminCommand::CreateFunction { name: "f".into() },
            AdminCommand::CreateFunction { name: "".into() },
            AdminCommand::DropFunction { name: "f".into() },
            AdminCommand::CancelJob {
                handle: "H:host:1".into(),
            },
            AdminCommand::Shutdown { graceful: false },
            AdminCommand::Shutdown { graceful: true },
            AdminCommand::Stats,
        ];
        for c in all {
            assert_eq!(parse(&c.to_line(), 2), Parsed::Command(c.clone()), "{c:?}");
        }
        assert_eq!(
            maxqueue("f", [u32::MAX, 5, 0]).to_line(),
            b"maxqueue f 2147483647 5 0"
        );
    }

    #[test]
    fn reply_shapes() {
        assert_eq!(AdminCommand::Status.reply_shape(), ReplyShape::Listing);
        assert_eq!(AdminCommand::Stats.reply_shape(), ReplyShape::Listing);
        assert_eq!(AdminCommand::Version.reply_shape(), ReplyShape::Line);
        assert_eq!(
            AdminCommand::DropFunction { name: "f".into() }.reply_shape(),
            ReplyShape::Lines
        );
    }
}
