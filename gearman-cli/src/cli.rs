//! The command line: the C tool's single-letter flags (`getopt` spec
//! `bc:f:h:HILnNp:Pst:u:vwi:dS`) plus our long TLS options (`--ssl-ca-file` and friends),
//! its usage text, and the clap definition used for parsing and for generating the man page.
//!
//! `-h` is the host and `-H` the help, so clap's own `-h/--help` and `-V` are disabled. The usage
//! text, its stream and its exit code copy the C tool (shared/docs/protocol.md §9.1); deciding them
//! needs a `getopt`-style scan because clap stops at the first bad option while `getopt` goes on
//! and still reports the flags it saw.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::{ArgAction, CommandFactory, Parser};
use gearman_shared::cli::{wrap, TlsArgs};

/// What `gearman` 1.1.20 gets wrong and this one does differently; shown after the `-H` text
/// and in the man page.
pub const DIFFERENCES: &[&str] = &[
    "-d runs gearman as a daemon (1.1.20 accepts -d but does not list it).",
    "Exits 1 with a one-line message on stderr when no job server can be reached, on a -t \
     timeout, when the connection is lost, or when the server answers with an ERROR packet \
     (e.g. QUEUE_ERROR Job queue is full); 1.1.20 exits 0.",
    "Asks the server for WORK_EXCEPTION packets (OPTION_REQ exceptions): the exception text \
     goes to stderr, then 'Job failed', exit 1; 1.1.20 hangs.",
    "A WORK_STATUS with a zero denominator prints '0% Complete' (1.1.20 dies of SIGFPE); \
     status lines are printed in the order they arrive.",
    "-N removes only a trailing newline (1.1.20 removes the last byte even when it is not a \
     newline), and an empty line becomes a job with empty data (1.1.20 skips it with an \
     'invalid workload' error); lines longer than 8 KiB are not split.",
    "Worker -n/-N sends each output line once as WORK_DATA (1.1.20 resends everything \
     received so far with every line).",
    "Worker: a command that cannot be started fails the job (WORK_FAIL) and prints why; \
     1.1.20 completes it with empty output.",
    "-h and GEARMAN_SERVER take a list, host[:port],...: a client fails over to the next \
     server when one is down, a worker takes jobs from all of them.",
    "Worker -t: exits 1 after that many milliseconds without a job (1.1.20 prints an error \
     and goes on).",
    "-S connects over TLS (rustls, TLS 1.2/1.3) and verifies the server's certificate \
     against --ssl-ca-file FILE, which is required (there is no built-in trust store); \
     --ssl-certificate FILE with --ssl-key FILE present a client certificate, and \
     --ssl-server-name NAME is the name the server's certificate must carry (default: the \
     host connected to). Without these options the files come from GEARMAND_CA_CERTIFICATE, \
     GEARMAN_CLIENT_PEM and GEARMAN_CLIENT_KEY, as in libgearman. 1.1.20 has only -S.",
    "Non-numeric -p, -t or -c values are errors instead of being read as 0.",
];

/// The `gearman` command line. Every flag is the C tool's letter with the same meaning.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "gearman",
    version,
    about = "Gearman command-line client and worker",
    long_about = "Run Gearman jobs from the command line (client mode, the default), or serve \
                  them with a shell command (worker mode, -w).\n\n\
                  Client: each DATA word is one job per function; without DATA the job data \
                  is read from standard input (all of it, or one job per line with -n/-N). \
                  Results go to stdout, warnings and failures to stderr.\n\n\
                  Worker: each job's data is written to COMMAND's standard input and its \
                  standard output is the result; without COMMAND the data is printed and the \
                  job completes empty. Put -- before a COMMAND that has options of its own.",
    override_usage = "gearman [options] [<data> ...]\n       \
                      gearman -w [options] [--] [<command> [<args> ...]]",
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true,
    mut_args = tls_help
)]
pub struct Args {
    /// Function name to use for jobs (can give many)
    #[arg(short = 'f', value_name = "function", action = ArgAction::Append,
          allow_hyphen_values = true, value_parser = clap::value_parser!(OsString),
          help_heading = "Common options")]
    pub functions: Vec<OsString>,
    /// Job server host, or a list host[:port],... (GEARMAN_SERVER replaces -h and -p)
    #[arg(
        short = 'h',
        value_name = "host",
        allow_hyphen_values = true,
        help_heading = "Common options"
    )]
    pub host: Option<String>,
    /// Print the usage text
    #[arg(short = 'H', help_heading = "Common options")]
    pub help: bool,
    /// Print diagnostic information to stdout (client: "Task created: <handle>")
    #[arg(short = 'v', help_heading = "Common options")]
    pub verbose: bool,
    /// Job server port (default 4730)
    #[arg(
        short = 'p',
        value_name = "port",
        allow_hyphen_values = true,
        help_heading = "Common options"
    )]
    pub port: Option<String>,
    /// Timeout in milliseconds: give up (exit 1) when the server sends nothing for this long
    #[arg(
        short = 't',
        value_name = "timeout",
        allow_hyphen_values = true,
        help_heading = "Common options"
    )]
    pub timeout: Option<String>,
    /// Create a pidfile for the process
    #[arg(short = 'i', value_name = "pidfile", allow_hyphen_values = true,
          value_parser = clap::value_parser!(PathBuf), help_heading = "Common options")]
    pub pidfile: Option<PathBuf>,
    /// Enable SSL connections: TLS, verified against --ssl-ca-file (required)
    #[arg(short = 'S', help_heading = "Common options")]
    pub ssl: bool,
    /// Run as a daemon: fork, start a new session, stdin/stdout/stderr to /dev/null
    #[arg(short = 'd', help_heading = "Common options")]
    pub daemon: bool,

    /// Run jobs in the background
    #[arg(short = 'b', help_heading = "Client options")]
    pub background: bool,
    /// Run jobs as high priority (the last of -I/-L wins)
    #[arg(short = 'I', overrides_with = "low", help_heading = "Client options")]
    pub high: bool,
    /// Run jobs as low priority (the last of -I/-L wins)
    #[arg(short = 'L', overrides_with = "high", help_heading = "Client options")]
    pub low: bool,
    /// Client: run one job per line. Worker: send a data packet for each output line
    #[arg(short = 'n', help_heading = "Client options")]
    pub per_line: bool,
    /// Same as -n, but strip off the newline
    #[arg(short = 'N', help_heading = "Client options")]
    pub strip: bool,
    /// Prefix all output lines with functions names
    #[arg(short = 'P', help_heading = "Client options")]
    pub prefix: bool,
    /// Send one job with empty data, without reading from standard input
    #[arg(short = 's', help_heading = "Client options")]
    pub no_stdin: bool,
    /// Unique key to use for jobs (default: a new UUID per job)
    #[arg(short = 'u', value_name = "unique", allow_hyphen_values = true,
          value_parser = clap::value_parser!(OsString), help_heading = "Client options")]
    pub unique: Option<OsString>,

    /// Number of jobs for worker to run before exiting (0: no limit)
    #[arg(
        short = 'c',
        value_name = "count",
        allow_hyphen_values = true,
        help_heading = "Worker options"
    )]
    pub count: Option<String>,
    /// Run in worker mode
    #[arg(short = 'w', help_heading = "Worker options")]
    pub worker: bool,

    /// With -S: the CA file, client certificate and key, and the server's name (our long
    /// options; texts in [`tls_help`]).
    #[command(flatten)]
    pub tls: TlsArgs,

    /// Client: job data, one job per word and function. Worker: the command to run per job
    #[arg(value_name = "data | command", value_parser = clap::value_parser!(OsString))]
    pub rest: Vec<OsString>,
}

/// The help texts of the shared `--ssl-*` options ([`TlsArgs`]), under their own heading.
fn tls_help(arg: clap::Arg) -> clap::Arg {
    let help = match arg.get_id().as_str() {
        "ssl_ca_file" => {
            "With -S: PEM file of the CA the server's certificate must chain to (required; \
             default GEARMAND_CA_CERTIFICATE)"
        }
        "ssl_certificate" => {
            "With -S: PEM file of the client certificate chain to present (default \
             GEARMAN_CLIENT_PEM); needs --ssl-key"
        }
        "ssl_key" => {
            "With -S: PEM file of the client certificate's private key (default \
             GEARMAN_CLIENT_KEY)"
        }
        "ssl_server_name" => {
            "With -S: the name the server's certificate must carry (default: the host \
             connected to)"
        }
        _ => return arg,
    };
    arg.help(help).help_heading("TLS options")
}

/// The clap definition, with the list of differences from the C tool as the footer
/// (for man page generation).
pub fn command() -> clap::Command {
    let mut footer = String::from("Differences from gearman 1.1.20:\n");
    for item in DIFFERENCES {
        footer.push_str("  - ");
        footer.push_str(item);
        footer.push('\n');
    }
    footer.push_str(
        "\nEnvironment: GEARMAN_SERVER=host[:port],... replaces -h and -p. With -S, \
         GEARMAND_CA_CERTIFICATE, GEARMAN_CLIENT_PEM and GEARMAN_CLIENT_KEY name the CA, \
         client certificate and key files unless --ssl-ca-file, --ssl-certificate and \
         --ssl-key do.\n\
         Exit status: 0 on success; 1 when a job failed, on a usage error, or when the \
         job server cannot be used.",
    );
    Args::command().after_help(footer)
}

/// The result of reading the command line.
#[derive(Debug)]
pub enum Parsed {
    /// Go ahead with these options.
    Run(Box<Args>),
    /// Print the usage text instead (help or a usage error).
    Usage(Usage),
}

/// The usage text to print, where, and how to exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The full text.
    pub text: String,
    /// stdout (only for `-H` with a function and no error) rather than stderr.
    pub to_stdout: bool,
    /// Exit 0 (`-H` was given) rather than 1.
    pub success: bool,
}

/// What a `getopt` pass over the arguments saw; decides the usage text and its `(true)`
/// markers the way the C tool does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    /// At least one `-f` with its argument.
    pub has_function: bool,
    /// `-H`.
    pub help: bool,
    /// An unknown option or a missing option argument.
    pub error: bool,
    /// `-v`.
    pub verbose: bool,
    /// `-b`.
    pub background: bool,
    /// `-n` or `-N`.
    pub per_line: bool,
    /// `-N`.
    pub strip: bool,
    /// `-w`.
    pub worker: bool,
}

/// Which options take an argument, read from the clap definition ([`Args`]) so that the
/// `getopt` scan and clap cannot disagree: the C tool's letters (`getopt` spec
/// `bc:f:h:HILnNp:Pst:u:vwi:dS`, checked by a test) and our long options, each of which
/// takes an argument, attached with `=` or next.
struct Getopt {
    /// Letters with an argument.
    with_argument: Vec<u8>,
    /// Letters without one.
    flags: Vec<u8>,
    /// Long options (all take an argument).
    long_with_argument: Vec<String>,
}

fn getopt() -> &'static Getopt {
    static GETOPT: OnceLock<Getopt> = OnceLock::new();
    GETOPT.get_or_init(|| {
        let mut cmd = Args::command();
        cmd.build();
        let mut g = Getopt {
            with_argument: Vec::new(),
            flags: Vec::new(),
            long_with_argument: Vec::new(),
        };
        for arg in cmd.get_arguments() {
            let takes_value = arg.get_action().takes_values();
            if let Some(short) = arg.get_short() {
                let letter = u8::try_from(short).unwrap_or(b'?');
                match takes_value {
                    true => g.with_argument.push(letter),
                    false => g.flags.push(letter),
                }
            }
            if let Some(long) = arg.get_long().filter(|_| takes_value) {
                g.long_with_argument.push(long.to_string());
            }
        }
        g
    })
}

/// Scans like GNU `getopt` (options may follow data words; `--` ends the options).
pub fn scan(args: &[OsString]) -> Scan {
    let g = getopt();
    let mut s = Scan::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_encoded_bytes();
        i += 1;
        if arg == b"--" {
            break;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            continue;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, attached) = match long.iter().position(|&b| b == b'=') {
                Some(eq) => (&long[..eq], true),
                None => (long, false),
            };
            let known = g.long_with_argument.iter().any(|l| l.as_bytes() == name);
            if !known || (!attached && i >= args.len()) {
                s.error = true;
            } else if !attached {
                i += 1;
            }
            continue;
        }
        let cluster = &arg[1..];
        for (pos, &c) in cluster.iter().enumerate() {
            if g.with_argument.contains(&c) {
                let attached = pos + 1 < cluster.len();
                let has_value = attached || i < args.len();
                if !attached && has_value {
                    i += 1;
                }
                if !has_value {
                    s.error = true;
                } else if c == b'f' {
                    s.has_function = true;
                }
                break;
            }
            if !g.flags.contains(&c) {
                s.error = true;
                continue;
            }
            match c {
                b'H' => s.help = true,
                b'v' => s.verbose = true,
                b'b' => s.background = true,
                b'n' => s.per_line = true,
                b'N' => {
                    s.per_line = true;
                    s.strip = true;
                }
                b'w' => s.worker = true,
                _ => {}
            }
        }
    }
    s
}

/// Reads the command line (`argv[0]` first).
pub fn parse<I, T>(argv: I) -> Parsed
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let argv0 = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gearman".to_string());
    let rest = argv.get(1..).unwrap_or_default();
    let mut s = scan(rest);
    if s.has_function && !s.help && !s.error {
        match Args::try_parse_from(&argv) {
            Ok(args) => return Parsed::Run(Box::new(args)),
            // clap and getopt disagree only on odd spellings such as `-f=x`: report it
            // as getopt would report a bad option.
            Err(_) => s.error = true,
        }
    }
    Parsed::Usage(usage_for(&argv0, &s))
}

/// The usage text the C tool prints for this scan.
pub fn usage_for(argv0: &str, s: &Scan) -> Usage {
    let reason = if !s.has_function {
        "No Functions were provided"
    } else if s.error {
        "-?"
    } else {
        "(null)"
    };
    let mut text = usage_text(argv0, reason, s);
    if s.help {
        text.push_str("\nDifferences from gearman 1.1.20:\n");
        for item in DIFFERENCES {
            text.push_str(&wrap(item, "\t- ", "\t  ", 80));
        }
    }
    Usage {
        text,
        to_stdout: s.help && s.has_function && !s.error,
        success: s.help,
    }
}

/// The C tool's usage text, byte for byte; `(true)`/`(false)` show the flags given.
pub fn usage_text(argv0: &str, reason: &str, s: &Scan) -> String {
    let b = |v: bool| if v { "true" } else { "false" };
    format!(
        "\n{argv0}\tError in usage({reason}).\n\
         \n\
         Client mode: {argv0} [options] [<data>]\n\
         Worker mode: {argv0} -w [options] [<command> [<args> ...]]\n\
         \n\
         Common options to both client and worker modes.\n\
         \t-f <function> - Function name to use for jobs (can give many)\n\
         \t-h <host>     - Job server host\n\
         \t-H            - Print this help menu\n\
         \t-v            - Print diagnostic information to stdout({v})\n\
         \t-p <port>     - Job server port\n\
         \t-t <timeout>  - Timeout in milliseconds\n\
         \t-i <pidfile>  - Create a pidfile for the process\n\
         \t-S            - Enable SSL connections\n\
         \n\
         Client options:\n\
         \t-b            - Run jobs in the background({bg})\n\
         \t-I            - Run jobs as high priority\n\
         \t-L            - Run jobs as low priority\n\
         \t-n            - Run one job per line({n})\n\
         \t-N            - Same as -n, but strip off the newline({nn})\n\
         \t-P            - Prefix all output lines with functions names\n\
         \t-s            - Send job without reading from standard input\n\
         \t-u <unique>   - Unique key to use for job\n\
         \n\
         Worker options:\n\
         \t-c <count>    - Number of jobs for worker to run before exiting\n\
         \t-n            - Send data packet for each line({n})\n\
         \t-N            - Same as -n, but strip off the newline({nn})\n\
         \t-w            - Run in worker mode({w})\n",
        v = b(s.verbose),
        bg = b(s.background),
        n = b(s.per_line),
        nn = b(s.strip),
        w = b(s.worker),
    )
}

/// `OsStr` as bytes (Unix: exactly the bytes of the argument).
pub fn os_bytes(s: &OsStr) -> &[u8] {
    s.as_encoded_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gearman_shared::cli::TLS_LONG_OPTIONS;

    const HELP: &str = include_str!("../testdata/gearman-help.txt");
    const HELP_WITH_F: &str = include_str!("../testdata/gearman-help-with-f.txt");

    fn usage(args: &[&str]) -> Usage {
        let mut argv = vec!["gearman"];
        argv.extend_from_slice(args);
        match parse(argv) {
            Parsed::Usage(u) => u,
            Parsed::Run(a) => panic!("{args:?} parsed as {a:?}"),
        }
    }

    fn run(args: &[&str]) -> Args {
        let mut argv = vec!["gearman"];
        argv.extend_from_slice(args);
        match parse(argv) {
            Parsed::Run(a) => *a,
            Parsed::Usage(u) => panic!("{args:?} gave usage:\n{}", u.text),
        }
    }

    /// The C text, without our differences footer.
    fn c_part(u: &Usage) -> &str {
        u.text
            .split("\nDifferences from")
            .next()
            .unwrap_or_default()
    }

    #[test]
    fn help_without_function_matches_the_capture() {
        let u = usage(&["-H"]);
        assert_eq!(c_part(&u), HELP);
        assert!(!u.to_stdout);
        assert!(u.success);
        assert!(u.text.contains("Differences from gearman 1.1.20"));
    }

    #[test]
    fn help_with_function_goes_to_stdout() {
        let u = usage(&["-H", "-f", "x"]);
        assert_eq!(c_part(&u), HELP_WITH_F);
        assert!(u.to_stdout);
        assert!(u.success);
    }

    #[test]
    fn usage_errors() {
        let u = usage(&[]);
        assert_eq!(u.text, HELP);
        assert!(!u.to_stdout && !u.success);

        let u = usage(&["-Z", "-f", "x"]);
        assert!(u.text.starts_with("\ngearman\tError in usage(-?).\n"));
        assert!(!u.to_stdout && !u.success);

        // No -f wins over every other reason; -V and --help are not options.
        for args in [&["-V"][..], &["--help"], &["-f"], &["-Z", "-H"]] {
            let u = usage(args);
            assert!(
                u.text
                    .starts_with("\ngearman\tError in usage(No Functions were provided)."),
                "{args:?}"
            );
            assert!(!u.to_stdout, "{args:?}");
        }
        assert!(usage(&["-Z", "-H"]).success);
        assert!(!usage(&["-V"]).success);

        // -H with an error: exit 0, but the error reason on stderr.
        let u = usage(&["-H", "-f", "x", "-Z"]);
        assert!(u.text.starts_with("\ngearman\tError in usage(-?)."));
        assert!(!u.to_stdout && u.success);

        // A missing option argument.
        let u = usage(&["-f", "x", "-p"]);
        assert!(u.text.starts_with("\ngearman\tError in usage(-?)."));
    }

    #[test]
    fn usage_shows_the_flags_given() {
        let u = usage(&["-H", "-f", "x", "-v", "-b", "-N", "-w"]);
        for line in [
            "stdout(true)",
            "background(true)",
            "Run one job per line(true)",
            "strip off the newline(true)",
            "Send data packet for each line(true)",
            "worker mode(true)",
        ] {
            assert!(u.text.contains(line), "{line}");
        }
        let u = usage(&["-f", "x", "-Z", "-n"]);
        assert!(u.text.contains("Run one job per line(true)"));
        assert!(u.text.contains("strip off the newline(false)"));
    }

    #[test]
    fn argv0_is_echoed() {
        let mut argv = vec!["/usr/bin/gearman", "-H", "-f", "x"];
        let Parsed::Usage(u) = parse(argv.drain(..)) else {
            panic!("expected usage");
        };
        assert!(u
            .text
            .contains("\nClient mode: /usr/bin/gearman [options] [<data>]\n"));
    }

    #[test]
    fn flags_and_values() {
        let a = run(&[
            "-f", "a", "-fb", "-h", "h1:1,h2", "-p", "9", "-t", "50", "x", "y",
        ]);
        assert_eq!(a.functions, ["a", "b"]);
        assert_eq!(a.host.as_deref(), Some("h1:1,h2"));
        assert_eq!(a.port.as_deref(), Some("9"));
        assert_eq!(a.timeout.as_deref(), Some("50"));
        assert_eq!(a.rest, ["x", "y"]);

        let a = run(&[
            "-f", "x", "-bvPs", "-u", "-dash-", "-c", "3", "-w", "-i", "/p",
        ]);
        assert!(a.background && a.verbose && a.prefix && a.no_stdin && a.worker);
        assert_eq!(a.unique.as_deref(), Some(OsStr::new("-dash-")));
        assert_eq!(a.count.as_deref(), Some("3"));
        assert_eq!(a.pidfile, Some(PathBuf::from("/p")));
    }

    #[test]
    fn repeats_and_last_priority_wins() {
        let a = run(&["-f", "x", "-v", "-v", "-u", "a", "-u", "b"]);
        assert_eq!(a.unique.as_deref(), Some(OsStr::new("b")));
        let a = run(&["-f", "x", "-I", "-L"]);
        assert!(a.low && !a.high);
        let a = run(&["-f", "x", "-L", "-I"]);
        assert!(a.high && !a.low);
    }

    #[test]
    fn options_after_data_and_double_dash() {
        // getopt permutes: options may follow data words.
        let a = run(&["-w", "-f", "x", "cat", "-n"]);
        assert_eq!(a.rest, ["cat"]);
        assert!(a.per_line);
        let a = run(&["-w", "-f", "x", "--", "sh", "-c", "exit 1"]);
        assert_eq!(a.rest, ["sh", "-c", "exit 1"]);
        assert!(a.count.is_none());
    }

    #[test]
    fn scan_matches_getopt() {
        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(scan(&os(&["-fx"])).has_function);
        assert!(scan(&os(&["-wf", "x"])).has_function);
        assert!(
            !scan(&os(&["-h", "-f"])).has_function,
            "-f is -h's argument"
        );
        assert!(!scan(&os(&["-h", "-f"])).error);
        assert!(scan(&os(&["-f"])).error);
        assert!(!scan(&os(&["--", "-f", "x"])).has_function);
        assert!(scan(&os(&["data", "-f", "x"])).has_function);
        assert!(scan(&os(&["-e"])).error);
        assert!(scan(&os(&["-"])) == Scan::default());
    }

    /// `man/gearman.1` is rendered from [`command`]; `UPDATE_MAN=1 cargo test -p gearman-cli
    /// man_page` regenerates it.
    #[test]
    fn man_page_matches_the_cli() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../man/gearman.1");
        let page = gearman_shared::cli::man_page(command(), "1", "")
            .unwrap_or_else(|e| panic!("render the man page: {e}"));
        gearman_shared::cli::assert_man_page_fresh(&path, &page, "gearman-cli");
    }

    /// The scan's tables, read from clap, are the C tool's `getopt` spec plus our long
    /// options.
    #[test]
    fn getopt_tables_match_the_c_spec() {
        let sorted = |letters: &[u8]| {
            let mut v = letters.to_vec();
            v.sort_unstable();
            String::from_utf8(v).unwrap_or_default()
        };
        let g = getopt();
        assert_eq!(sorted(&g.with_argument), sorted(b"cfhptui"));
        assert_eq!(sorted(&g.flags), sorted(b"bHILnNPsvwdS"));
        assert_eq!(g.long_with_argument, TLS_LONG_OPTIONS);
    }

    #[test]
    fn tls_long_options() {
        let a = run(&[
            "-S",
            "--ssl-ca-file",
            "/ca.pem",
            "--ssl-certificate=/c.pem",
            "-f",
            "x",
            "--ssl-key",
            "-k.pem",
            "--ssl-server-name=gearman.example",
            "data",
        ]);
        assert!(a.ssl);
        assert_eq!(a.tls.ssl_ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(a.tls.ssl_certificate, Some(PathBuf::from("/c.pem")));
        assert_eq!(a.tls.ssl_key, Some(PathBuf::from("-k.pem")));
        assert_eq!(a.tls.ssl_server_name.as_deref(), Some("gearman.example"));
        assert_eq!(a.rest, ["data"]);

        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        // The value of a long option is not a -f.
        assert!(!scan(&os(&["--ssl-key", "-f"])).has_function);
        assert!(scan(&os(&["-f", "x", "--ssl-key"])).error, "missing value");
        assert!(scan(&os(&["-f", "x", "--ssl"])).error, "no prefixes");
        assert!(scan(&os(&["-f", "x", "--help"])).error);
        assert!(!scan(&os(&["-f", "x", "--ssl-key="])).error);
        let u = usage(&["-f", "x", "--bogus"]);
        assert!(u.text.starts_with("\ngearman\tError in usage(-?)."));
    }

    #[test]
    fn wrapping() {
        for line in usage(&["-H"]).text.lines() {
            let cols: usize = line.chars().map(|c| if c == '\t' { 8 } else { 1 }).sum();
            assert!(cols <= 80, "{line:?}");
        }
    }

    #[test]
    fn command_has_the_c_letters() {
        let cmd = command();
        cmd.clone().debug_assert();
        let shorts: String = cmd.get_arguments().filter_map(|a| a.get_short()).collect();
        for c in "bcfhHILnNpPstuvwidS".chars() {
            assert!(shorts.contains(c), "missing -{c}");
        }
        let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
        assert_eq!(longs, TLS_LONG_OPTIONS);
        let footer = cmd
            .get_after_help()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(footer.contains("WORK_EXCEPTION"));
    }
}
