//! The command line: the clap definition, the C tool's options text, and its error messages.
//!
//! gearadmin 1.1.20 parses its options with boost::program_options. This module keeps what a
//! user or a script sees from that: the option names and help texts, `-h` as the host (clap's
//! own `-h` help is disabled), unambiguous long-option prefixes (`--stat`), positional
//! arguments silently ignored, and boost's wording for parse errors, printed on stdout as
//! `<argv0> : <what>` followed by the options text (shared/docs/protocol.md §9.2).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser};
use gearman_shared::cli::{wrap, TlsArgs};
use std::ffi::OsString;

/// Printed when no operation was asked for (the C tool's exact wording).
pub const NO_OPERATION: &str = "No option execution operation given.";

/// The description column of the options text starts here (boost's computed width for the
/// C tool's options, kept so the common lines stay byte-identical).
const DESCRIPTION_COLUMN: usize = 33;

/// boost's default line length for the options text.
const LINE_LENGTH: usize = 80;

/// The options, in the order of the C tool's `--help`, followed by our additions.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "gearadmin",
    about = "Administer a Gearman job server (a drop-in replacement for the C gearadmin)",
    long_about = "Administer a Gearman job server (a drop-in replacement for the C gearadmin).\n\n\
        Each operation sends one admin text command over a single connection. Whatever the \
        order on the command line, operations run in this fixed order, as in the C tool: \
        --getpid, --create-function, --drop-function, --show-jobs, --show-unique-jobs, \
        --cancel-job, --server-verbose, --server-version, --workers, --priority-status, \
        --status, then --shutdown and --shutdown-graceful.\n\n\
        Replies are printed as the C tool prints them: OK becomes \"OK\", \"OK <value>\" \
        prints the value, listings are printed as sent (ending with a line \".\"), and an \
        ERR reply goes to standard error as \"Error: <rest of the line>\".",
    disable_help_flag = true,
    disable_version_flag = true,
    infer_long_args = true,
    mut_args = tls_help
)]
pub struct Cli {
    /// Print the options text and exit.
    #[arg(long, action = ArgAction::SetTrue, help = "Options related to the program.")]
    pub help: bool,

    /// Server host name or address.
    #[arg(
        short = 'h',
        long,
        value_name = "HOST",
        default_value = "localhost",
        allow_hyphen_values = true,
        help = "Connect to the host"
    )]
    pub host: String,

    /// Server port: a number or a TCP service name from /etc/services.
    #[arg(
        short = 'p',
        long,
        value_name = "PORT",
        default_value = "4730",
        allow_hyphen_values = true,
        help = "Port number or service to use for connection"
    )]
    pub port: String,

    /// `version`.
    #[arg(long, help = "Fetch the version number for the server.")]
    pub server_version: bool,

    /// `verbose`.
    #[arg(long, help = "Fetch the verbose setting for the server.")]
    pub server_verbose: bool,

    /// `create function NAME`.
    #[arg(
        long,
        value_name = "FUNCTION",
        allow_hyphen_values = true,
        help = "Create the function from the server."
    )]
    pub create_function: Option<OsString>,

    /// `cancel job HANDLE`.
    #[arg(
        long,
        value_name = "HANDLE",
        allow_hyphen_values = true,
        help = "Remove a given job from the server's queue"
    )]
    pub cancel_job: Option<OsString>,

    /// `drop function NAME`.
    #[arg(
        long,
        value_name = "FUNCTION",
        allow_hyphen_values = true,
        help = "Drop the function from the server."
    )]
    pub drop_function: Option<OsString>,

    /// `show unique jobs`.
    #[arg(long, help = "Show unique IDs of jobs on the server.")]
    pub show_unique_jobs: bool,

    /// `show jobs`.
    #[arg(long, help = "Show all jobs on the server.")]
    pub show_jobs: bool,

    /// `getpid`.
    #[arg(long, help = "Get Process ID for the server.")]
    pub getpid: bool,

    /// `status`.
    #[arg(long, help = "Status for the server.")]
    pub status: bool,

    /// `prioritystatus`.
    #[arg(long, help = "Queued jobs status by priority.")]
    pub priority_status: bool,

    /// `workers`.
    #[arg(long, help = "Workers for the server.")]
    pub workers: bool,

    /// TLS, verified against [`Cli::ssl_ca_file`].
    #[arg(
        short = 'S',
        long,
        help = "Enable SSL connections.",
        long_help = "Enable SSL connections: TLS 1.2 or 1.3 (rustls), verifying the server's \
                     certificate against the CA of --ssl-ca-file, which is required (there is \
                     no built-in trust store)."
    )]
    pub ssl: bool,

    /// With `-S`: the CA file, client certificate and key, and the server's name.
    #[command(flatten)]
    pub tls: TlsArgs,

    /// `shutdown` (our server's extension).
    #[arg(long, help = "Shut the server down immediately.")]
    pub shutdown: bool,

    /// `shutdown graceful` (our server's extension).
    #[arg(long, help = "Shut the server down once no job is left.")]
    pub shutdown_graceful: bool,

    /// Print the results as one JSON object.
    #[arg(long, help = "Print listings and values as JSON.")]
    pub json: bool,
}

impl Cli {
    /// Whether any operation (something sent to the server) was asked for.
    pub fn has_operation(&self) -> bool {
        self.server_version
            || self.server_verbose
            || self.create_function.is_some()
            || self.cancel_job.is_some()
            || self.drop_function.is_some()
            || self.show_unique_jobs
            || self.show_jobs
            || self.getpid
            || self.status
            || self.priority_status
            || self.workers
            || self.shutdown
            || self.shutdown_graceful
    }

    /// The first `--ssl-*` option given, if any (they need `-S`).
    pub fn tls_option_given(&self) -> Option<&'static str> {
        self.tls.first_given()
    }
}

/// The boost-style help texts of the shared `--ssl-*` options ([`TlsArgs`]): a short line for
/// the options text, a longer one for the man page.
fn tls_help(arg: Arg) -> Arg {
    let (help, long_help) = match arg.get_id().as_str() {
        "ssl_ca_file" => (
            "CA file (PEM) to verify the server with.",
            "With -S: PEM file of the CA the server's certificate must chain to \
             (default: the file named by GEARMAND_CA_CERTIFICATE).",
        ),
        "ssl_certificate" => (
            "Client certificate file (PEM).",
            "With -S: PEM file of the client certificate chain to present when the \
             server asks for one; needs --ssl-key (default: the file named by \
             GEARMAN_CLIENT_PEM).",
        ),
        "ssl_key" => (
            "Client certificate's private key (PEM).",
            "With -S: PEM file of the client certificate's private key (default: the \
             file named by GEARMAN_CLIENT_KEY).",
        ),
        "ssl_server_name" => (
            "Name the server's certificate must carry.",
            "With -S: the DNS name or address the server's certificate must carry \
             (default: the host as given with --host).",
        ),
        _ => return arg,
    };
    arg.help(help).long_help(long_help)
}

/// The clap definition, for man-page generation.
pub fn command() -> clap::Command {
    Cli::command()
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Run the operations.
    Run(Box<Cli>),
    /// `--help`: print [`options_text`] on stdout, exit 0.
    Help,
    /// A usage error: print `text` on stdout (C tool style: the message, a blank line and the
    /// options text), exit 1.
    Usage(String),
}

/// Parses `args` (program name first) the way the C tool does.
pub fn parse<I, T>(args: I) -> Parsed
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let argv0 = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gearadmin".to_owned());
    if let Some(what) = empty_after_equals(&args) {
        return Parsed::Usage(usage_error(&argv0, &what));
    }
    // The C tool ignores positional arguments; they are accepted by a hidden argument that
    // exists only here, so that the man page does not show it.
    let parser = command().arg(
        Arg::new("ignored")
            .hide(true)
            .num_args(0..)
            .action(ArgAction::Append)
            .value_parser(clap::value_parser!(OsString)),
    );
    let parsed = parser
        .try_get_matches_from(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    match parsed {
        Ok(cli) if cli.help => Parsed::Help,
        // boost's wording for a dependency between options, checked before the operations.
        Ok(cli) => match cli.tls_option_given().filter(|_| !cli.ssl) {
            Some(option) => Parsed::Usage(usage_error(
                &argv0,
                &format!("option '{option}' requires option '--ssl'"),
            )),
            None if !cli.has_operation() => {
                Parsed::Usage(format!("{NO_OPERATION}\n\n{}", options_text()))
            }
            None => Parsed::Run(Box::new(cli)),
        },
        Err(e) => Parsed::Usage(usage_error(&argv0, &boost_message(&e, &args))),
    }
}

/// `<argv0> : <what>`, a blank line, and the options text.
fn usage_error(argv0: &str, what: &str) -> String {
    format!("{argv0} : {what}\n\n{}", options_text())
}

/// The options text exactly as boost prints it for the C tool (`Options:`, one line per
/// option with the description at a fixed column, then an empty line), followed by our own
/// options in the same layout.
pub fn options_text() -> String {
    let mut out = String::from("Options:\n");
    for arg in command().get_arguments() {
        if arg.is_hide_set() || arg.is_positional() {
            continue;
        }
        let mut left = String::from("  ");
        match (arg.get_short(), arg.get_long()) {
            (Some(short), Some(long)) => left.push_str(&format!("-{short} [ --{long} ]")),
            (Some(short), None) => left.push_str(&format!("-{short}")),
            (None, Some(long)) => left.push_str(&format!("--{long}")),
            (None, None) => continue,
        }
        left.push(' ');
        if arg.get_action().takes_values() {
            left.push_str("arg");
            if let Some(default) = arg.get_default_values().first() {
                left.push_str(&format!(" (={})", default.to_string_lossy()));
            }
        }
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        out.push_str(&left);
        if !help.is_empty() {
            if left.len() >= DESCRIPTION_COLUMN {
                out.push('\n');
                out.push_str(&" ".repeat(DESCRIPTION_COLUMN));
            } else {
                out.push_str(&" ".repeat(DESCRIPTION_COLUMN - left.len()));
            }
            // Continuation lines are indented to the description column.
            let indent = " ".repeat(DESCRIPTION_COLUMN);
            let wrapped = wrap(&help, &indent, &indent, LINE_LENGTH);
            out.push_str(wrapped.trim_start_matches(' ').trim_end_matches('\n'));
        }
        out.push('\n');
    }
    out.push('\n');
    out
}

/// boost rejects `--opt=` (nothing after the equal sign) for every option; clap would take
/// an empty value or report something else, so this is checked first.
fn empty_after_equals(args: &[OsString]) -> Option<String> {
    let cmd = command();
    for arg in args.iter().skip(1) {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            return None;
        }
        let Some(name) = arg.strip_prefix("--").and_then(|a| a.strip_suffix('=')) else {
            continue;
        };
        if name.contains('=') {
            continue;
        }
        let matches: Vec<&str> = long_names(&cmd)
            .into_iter()
            .filter(|long| long.starts_with(name))
            .collect();
        let canonical = match matches.as_slice() {
            [only] => *only,
            _ if matches.contains(&name) => name,
            _ => continue,
        };
        return Some(format!(
            "the argument for option '--{canonical}' should follow immediately after the equal sign"
        ));
    }
    None
}

/// Every visible long option name.
fn long_names(cmd: &clap::Command) -> Vec<&str> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long())
        .collect()
}

/// Turns a clap error into boost::program_options' message for the same mistake.
fn boost_message(e: &clap::Error, args: &[OsString]) -> String {
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.first().cloned().unwrap_or_default(),
        _ => String::new(),
    };
    // clap shows an option as `--name <VALUE>`; boost names it `--name`.
    let option = canonical_option(invalid.split(' ').next().unwrap_or_default());
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let typed = original_token(&invalid, args);
            if let Some(prefix) = typed.strip_prefix("--") {
                let prefix = prefix.split('=').next().unwrap_or_default();
                let cmd = command();
                let mut matches: Vec<&str> = long_names(&cmd)
                    .into_iter()
                    .filter(|long| long.starts_with(prefix))
                    .collect();
                if matches.len() > 1 && !prefix.is_empty() {
                    matches.sort_unstable();
                    let (last, rest) = matches.split_last().unwrap_or((&"", &[]));
                    let mut alternatives = String::new();
                    for m in rest {
                        alternatives.push_str(&format!("'--{m}', "));
                    }
                    alternatives.push_str(&format!("and '--{last}'"));
                    return format!("option '--{prefix}' is ambiguous and matches {alternatives}");
                }
            }
            format!("unrecognised option '{typed}'")
        }
        ErrorKind::InvalidValue if is_missing_value(e) => {
            format!("the required argument for option '{option}' is missing")
        }
        ErrorKind::ArgumentConflict => {
            format!("option '{option}' cannot be specified more than once")
        }
        ErrorKind::TooManyValues | ErrorKind::NoEquals => {
            format!("option '{option}' does not take any arguments")
        }
        ErrorKind::InvalidUtf8 => "the option's argument is not valid UTF-8".to_owned(),
        _ => {
            // Anything else: clap's own first line, without its "error: " prefix.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_owned()
        }
    }
}

/// Whether an `InvalidValue` error means the value is missing altogether.
fn is_missing_value(e: &clap::Error) -> bool {
    match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(s)) => s.is_empty(),
        None => true,
        _ => false,
    }
}

/// `-h` → `--host`: boost names options by their long form in most messages.
fn canonical_option(name: &str) -> String {
    if let Some(short) = name.strip_prefix('-').filter(|s| !s.starts_with('-')) {
        let cmd = command();
        let long = cmd
            .get_arguments()
            .find(|a| a.get_short().map(String::from).as_deref() == Some(short))
            .and_then(|a| a.get_long())
            .map(|long| format!("--{long}"));
        if let Some(long) = long {
            return long;
        }
    }
    name.to_owned()
}

/// The command-line token clap complained about, as the user typed it (boost quotes it whole,
/// `--bogus=1`, `-xyz`).
fn original_token(reported: &str, args: &[OsString]) -> String {
    let tokens = args.iter().skip(1).map(|a| a.to_string_lossy());
    for token in tokens {
        if token == reported {
            return token.into_owned();
        }
        let matches = match reported.strip_prefix("--") {
            Some(_) => token.split('=').next() == Some(reported),
            // clap names one letter of a cluster (`-x` for `-Sx`, `-=` for `-S=1`).
            None => match (reported.strip_prefix('-'), token.strip_prefix('-')) {
                (Some(letter), Some(cluster)) => {
                    !letter.is_empty() && !cluster.starts_with('-') && cluster.contains(letter)
                }
                _ => false,
            },
        };
        if matches {
            return token.into_owned();
        }
    }
    reported.to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The C tool's `--help` output (captured; shared/docs/protocol.md §9.2).
    const C_OPTIONS: &str = "Options:
  --help                         Options related to the program.
  -h [ --host ] arg (=localhost) Connect to the host
  -p [ --port ] arg (=4730)      Port number or service to use for connection
  --server-version               Fetch the version number for the server.
  --server-verbose               Fetch the verbose setting for the server.
  --create-function arg          Create the function from the server.
  --cancel-job arg               Remove a given job from the server's queue
  --drop-function arg            Drop the function from the server.
  --show-unique-jobs             Show unique IDs of jobs on the server.
  --show-jobs                    Show all jobs on the server.
  --getpid                       Get Process ID for the server.
  --status                       Status for the server.
  --priority-status              Queued jobs status by priority.
  --workers                      Workers for the server.
  -S [ --ssl ]                   Enable SSL connections.
";

    fn usage(args: &[&str]) -> String {
        let mut all = vec!["gearadmin"];
        all.extend_from_slice(args);
        match parse(all) {
            Parsed::Usage(text) => text,
            other => panic!("expected a usage error for {args:?}, got {other:?}"),
        }
    }

    fn first_line(args: &[&str]) -> String {
        usage(args).lines().next().unwrap_or_default().to_owned()
    }

    fn run(args: &[&str]) -> Cli {
        let mut all = vec!["gearadmin"];
        all.extend_from_slice(args);
        match parse(all) {
            Parsed::Run(cli) => *cli,
            other => panic!("expected options for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn options_text_starts_with_the_c_tools_text() {
        let text = options_text();
        assert!(text.starts_with(C_OPTIONS), "{text}");
        let ours = &text[C_OPTIONS.len()..];
        assert_eq!(
            ours,
            "  --ssl-ca-file arg              CA file (PEM) to verify the server with.\n\
             \x20 --ssl-certificate arg          Client certificate file (PEM).\n\
             \x20 --ssl-key arg                  Client certificate's private key (PEM).\n\
             \x20 --ssl-server-name arg          Name the server's certificate must carry.\n\
             \x20 --shutdown                     Shut the server down immediately.\n\
             \x20 --shutdown-graceful            Shut the server down once no job is left.\n\
             \x20 --json                         Print listings and values as JSON.\n\
             \n"
        );
        for line in text.lines() {
            assert!(line.len() <= LINE_LENGTH, "{line:?}");
        }
    }

    #[test]
    fn help_and_defaults() {
        assert!(matches!(parse(["gearadmin", "--help"]), Parsed::Help));
        assert!(matches!(parse(["gearadmin", "--he"]), Parsed::Help));
        // --help wins over an operation, as in the C tool.
        assert!(matches!(
            parse(["gearadmin", "--status", "--help"]),
            Parsed::Help
        ));
        let cli = run(&["--status"]);
        assert_eq!(cli.host, "localhost");
        assert_eq!(cli.port, "4730");
        let cli = run(&["-h", "10.0.0.1", "-p", "4731", "--status"]);
        assert_eq!((cli.host.as_str(), cli.port.as_str()), ("10.0.0.1", "4731"));
        let cli = run(&["-h10.0.0.2", "-p4732", "--getpid"]);
        assert_eq!((cli.host.as_str(), cli.port.as_str()), ("10.0.0.2", "4732"));
        let cli = run(&["--host=h", "--port=gearman", "--workers"]);
        assert_eq!((cli.host.as_str(), cli.port.as_str()), ("h", "gearman"));
    }

    #[test]
    fn no_operation() {
        let expected = format!("{NO_OPERATION}\n\n{}", options_text());
        assert_eq!(usage(&[]), expected);
        assert_eq!(usage(&["-h", "x", "-p", "1"]), expected);
        assert_eq!(usage(&["--json"]), expected);
        assert_eq!(usage(&["-S"]), expected);
        // Positional arguments are ignored, so they are not an operation either.
        assert_eq!(usage(&["status"]), expected);
    }

    #[test]
    fn positional_arguments_are_ignored() {
        let cli = run(&["foo", "--getpid"]);
        assert!(cli.getpid);
        let cli = run(&["--create-function", "a", "b", "--getpid"]);
        assert_eq!(cli.create_function.as_deref(), Some("a".as_ref()));
        assert!(cli.getpid);
        let cli = run(&["--getpid", "--", "--status"]);
        assert!(cli.getpid && !cli.status);
    }

    #[test]
    fn values_may_start_with_a_dash_like_boost() {
        let cli = run(&["--create-function", "--getpid"]);
        assert_eq!(cli.create_function.as_deref(), Some("--getpid".as_ref()));
        assert!(!cli.getpid);
    }

    #[test]
    fn long_option_prefixes() {
        assert!(run(&["--stat"]).status);
        assert!(run(&["--work"]).workers);
        assert!(run(&["--shutdown"]).shutdown);
        assert!(!run(&["--shutdown"]).shutdown_graceful);
        assert!(run(&["--shutdown-g"]).shutdown_graceful);
    }

    #[test]
    fn boost_error_messages() {
        let cases: &[(&[&str], &str)] = &[
            (&["--bogus"], "gearadmin : unrecognised option '--bogus'"),
            (&["--bogus=1"], "gearadmin : unrecognised option '--bogus=1'"),
            (&["-x"], "gearadmin : unrecognised option '-x'"),
            (&["-xyz"], "gearadmin : unrecognised option '-xyz'"),
            (&["-Sx"], "gearadmin : unrecognised option '-Sx'"),
            (&["-S=1"], "gearadmin : unrecognised option '-S=1'"),
            (
                &["--s"],
                "gearadmin : option '--s' is ambiguous and matches '--server-verbose', \
                 '--server-version', '--show-jobs', '--show-unique-jobs', '--shutdown', \
                 '--shutdown-graceful', '--ssl', '--ssl-ca-file', '--ssl-certificate', \
                 '--ssl-key', '--ssl-server-name', and '--status'",
            ),
            (
                &["--ssl-c"],
                "gearadmin : option '--ssl-c' is ambiguous and matches '--ssl-ca-file', and \
                 '--ssl-certificate'",
            ),
            (
                &["--ssl-key"],
                "gearadmin : the required argument for option '--ssl-key' is missing",
            ),
            (
                &["--ssl-ca-file="],
                "gearadmin : the argument for option '--ssl-ca-file' should follow immediately after the equal sign",
            ),
            (
                &["--ssl-server-name", "x", "--status"],
                "gearadmin : option '--ssl-server-name' requires option '--ssl'",
            ),
            (
                // Checked before the operations.
                &["--ssl-ca-file", "ca.pem"],
                "gearadmin : option '--ssl-ca-file' requires option '--ssl'",
            ),
            (&["--version"], "gearadmin : unrecognised option '--version'"),
            (
                &["--create-function"],
                "gearadmin : the required argument for option '--create-function' is missing",
            ),
            (
                &["--cancel-job"],
                "gearadmin : the required argument for option '--cancel-job' is missing",
            ),
            (
                &["-p"],
                "gearadmin : the required argument for option '--port' is missing",
            ),
            (
                &["--getpid", "-h"],
                "gearadmin : the required argument for option '--host' is missing",
            ),
            (
                &["--status", "--status"],
                "gearadmin : option '--status' cannot be specified more than once",
            ),
            (
                &["-h", "a", "-h", "b", "--status"],
                "gearadmin : option '--host' cannot be specified more than once",
            ),
            (
                &["--create-function=a", "--create-function=b"],
                "gearadmin : option '--create-function' cannot be specified more than once",
            ),
            (
                &["--status=1"],
                "gearadmin : option '--status' does not take any arguments",
            ),
            (
                &["--status="],
                "gearadmin : the argument for option '--status' should follow immediately after the equal sign",
            ),
            (
                &["--host="],
                "gearadmin : the argument for option '--host' should follow immediately after the equal sign",
            ),
            (
                &["--show"],
                "gearadmin : option '--show' is ambiguous and matches '--show-jobs', and '--show-unique-jobs'",
            ),
            (
                &["--server"],
                "gearadmin : option '--server' is ambiguous and matches '--server-verbose', and '--server-version'",
            ),
        ];
        for (args, expected) in cases {
            let text = usage(args);
            assert_eq!(first_line(args), *expected, "{args:?}");
            assert!(
                text.ends_with(&format!("\n\n{}", options_text())),
                "{args:?}: {text}"
            );
        }
    }

    #[test]
    fn tls_options() {
        let cli = run(&["--status"]);
        assert!(!cli.ssl);
        assert_eq!(cli.tls_option_given(), None);
        let cli = run(&[
            "-S",
            "--ssl-ca-file",
            "/ca.pem",
            "--ssl-certificate=/c.pem",
            "--ssl-key",
            "-k.pem",
            "--ssl-server-name=gearman.example",
            "--status",
        ]);
        assert!(cli.ssl);
        assert_eq!(cli.tls.ssl_ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(cli.tls.ssl_certificate, Some(PathBuf::from("/c.pem")));
        assert_eq!(cli.tls.ssl_key, Some(PathBuf::from("-k.pem")));
        assert_eq!(cli.tls.ssl_server_name.as_deref(), Some("gearman.example"));
        assert_eq!(cli.tls_option_given(), Some("--ssl-ca-file"));
        // --ssl is a whole option name, not a prefix of --ssl-*; prefixes of those work.
        assert!(run(&["--ssl", "--status"]).ssl);
        let cli = run(&["--ssl", "--ssl-ca", "ca.pem", "--ssl-se", "h", "--status"]);
        assert_eq!(cli.tls.ssl_ca_file, Some(PathBuf::from("ca.pem")));
        assert_eq!(cli.tls.ssl_server_name.as_deref(), Some("h"));
        // -S alone is no operation.
        assert!(matches!(
            parse(["gearadmin", "-S", "--ssl-ca-file", "ca.pem"]),
            Parsed::Usage(text) if text.starts_with(NO_OPERATION)
        ));
    }

    #[test]
    fn argv0_prefixes_the_message() {
        match parse(["/usr/bin/gearadmin", "--nope"]) {
            Parsed::Usage(text) => {
                assert!(text.starts_with("/usr/bin/gearadmin : unrecognised option '--nope'\n\n"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }
}
