//! The command line, with the C gearmand's option names, short forms and defaults.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::Parser;

/// Verbosity names the C server accepts (case-sensitive), most to least severe.
pub const VERBOSE_LEVELS: [&str; 8] = [
    "FATAL", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG",
];

/// Gearman job server.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "gearmand",
    disable_help_flag = true,
    disable_version_flag = true,
    about = "Gearman job server (a drop-in replacement for the C gearmand)"
)]
pub struct Cli {
    /// Number of backlog connections for listen.
    #[arg(short = 'b', long, default_value_t = 32, value_name = "N")]
    pub backlog: i32,

    /// Enable protocol exceptions by default.
    #[arg(long)]
    pub exceptions: bool,

    /// Print this help menu.
    #[arg(short = 'h', long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// Number of attempts to run the job before the job server removes it; 0 = no limit.
    #[arg(short = 'j', long, default_value_t = 0, value_name = "N")]
    pub job_retries: u32,

    /// Prefix used to generate a job handle string. Default "H:<host_name>".
    #[arg(long, value_name = "PREFIX")]
    pub job_handle_prefix: Option<String>,

    /// Log file: a path, 'stderr', or 'none'.
    #[arg(
        short = 'l',
        long,
        default_value = "/var/log/gearmand.log",
        value_name = "FILE"
    )]
    pub log_file: String,

    /// Address the server should listen on. Default is all addresses.
    #[arg(short = 'L', long, value_name = "ADDRESS")]
    pub listen: Option<String>,

    /// Port the server should listen on (also read from GEARMAND_PORT).
    #[arg(
        short = 'p',
        long,
        env = "GEARMAND_PORT",
        default_value_t = 4730,
        value_name = "PORT"
    )]
    pub port: u16,

    /// File to write process ID out to.
    #[arg(short = 'P', long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Assign work in round-robin order per worker connection.
    #[arg(short = 'R', long)]
    pub round_robin: bool,

    /// Number of I/O threads; 0 runs everything in one thread.
    #[arg(short = 't', long, default_value_t = 4, value_name = "N")]
    pub threads: u32,

    /// Verbose level (FATAL, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG).
    #[arg(long, default_value = "ERROR", value_name = "LEVEL")]
    pub verbose: String,

    /// Display the version of gearmand and exit.
    #[arg(short = 'V', long)]
    pub version: bool,

    /// Number of workers to wake up for each job received; 0 = all.
    #[arg(short = 'w', long, default_value_t = 0, value_name = "N")]
    pub worker_wakeup: u32,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Run the server.
    Run(Box<Cli>),
    /// Print `text` on stdout (help, version) and exit 0.
    Print(String),
    /// Print `gearmand: <text>` on stderr and exit 1.
    Fail(String),
}

/// Parses the arguments, turning clap's errors into the C server's messages.
pub fn parse<I, T>(args: I) -> Parsed
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) if cli.version => Parsed::Print(format!(
            "\ngearmand {} - https://github.com/gearman/gearmand/issues (gearman-rs {})\n",
            crate::config::PROTOCOL_VERSION,
            env!("CARGO_PKG_VERSION")
        )),
        Ok(cli) => Parsed::Run(Box::new(cli)),
        Err(e) if e.kind() == ErrorKind::DisplayHelp => Parsed::Print(e.render().to_string()),
        Err(e) => Parsed::Fail(c_style_message(&e)),
    }
}

fn c_style_message(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(" "),
        _ => String::new(),
    };
    match e.kind() {
        ErrorKind::UnknownArgument => {
            format!("unrecognised option '{}'", context(ContextKind::InvalidArg))
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = context(ContextKind::InvalidArg);
            let option = arg
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            format!(
                "the argument ('{}') for option '{}' is invalid",
                context(ContextKind::InvalidValue),
                long_name(&option)
            )
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_string()
        }
    }
}

/// `-t <N>` / `--threads <N>` as clap names it → `--threads`, as boost names it.
fn long_name(option: &str) -> String {
    option
        .split(',')
        .map(str::trim)
        .find(|s| s.starts_with("--"))
        .unwrap_or(option)
        .split(['=', ' ', '<'])
        .next()
        .unwrap_or(option)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(args: &[&str]) -> String {
        match parse(std::iter::once("gearmand").chain(args.iter().copied())) {
            Parsed::Fail(m) => m,
            other => panic!("expected failure, got {other:?}"),
        }
    }

    #[test]
    fn c_style_errors() {
        assert_eq!(fail(&["--bogus"]), "unrecognised option '--bogus'");
        assert_eq!(
            fail(&["-t", "abc"]),
            "the argument ('abc') for option '--threads' is invalid"
        );
    }

    #[test]
    fn defaults_match_the_c_server() {
        let Parsed::Run(cli) = parse(["gearmand"]) else {
            panic!("no arguments must run");
        };
        assert_eq!(cli.threads, 4);
        assert_eq!(cli.backlog, 32);
        assert_eq!(cli.verbose, "ERROR");
        assert_eq!(cli.job_retries, 0);
    }

    #[test]
    fn help_and_version_print() {
        assert!(matches!(parse(["gearmand", "-h"]), Parsed::Print(_)));
        assert!(matches!(parse(["gearmand", "-V"]), Parsed::Print(t) if t.contains("1.1.20")));
    }
}
