//! The command line: servers to watch, refresh interval, `--once`, TLS (`-S` and the
//! `--ssl-*` options of `gearman`); `-h` is the host, as in the C tools, so help is
//! `-H`/`--help`.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Arg, ArgAction, CommandFactory, Parser};
use gearman_shared::cli::TlsArgs;
pub use gearman_shared::servers::{
    parse_list, ServerAddr, ServerListError, DEFAULT_HOST, DEFAULT_PORT,
};
use gearman_shared::tls::TlsOptions;

/// Live dashboard for Gearman job servers.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "gearman-tui",
    version,
    disable_help_flag = true,
    about = "Live dashboard for Gearman job servers (functions, workers, jobs, rates, alerts)",
    after_help = "Keys: q quit, Tab/1-5 switch panel, s/S sort column, r reverse, / filter, \
                  i hide idle rows, p pause, c cancel job, d drop function, X shutdown server, \
                  ? help.\n\n\
                  With -S, every server is polled over TLS; the --ssl-* files default to \
                  the files named by GEARMAND_CA_CERTIFICATE, GEARMAN_CLIENT_PEM and \
                  GEARMAN_CLIENT_KEY (read only with -S), as in libgearman.\n\n\
                  With --once, the exit status is 0 when every server answered, 1 when one \
                  did not, 2 on a usage error.",
    mut_args = tls_help
)]
pub struct Cli {
    /// Server to watch, HOST[:PORT] ([V6]:PORT for IPv6); repeat or separate with commas
    /// for several. Default: localhost.
    #[arg(
        short = 'h',
        long = "host",
        value_name = "HOST[:PORT]",
        env = "GEARMAN_SERVER",
        hide_env_values = true,
        value_delimiter = ',',
        action = ArgAction::Append
    )]
    pub hosts: Vec<String>,

    /// Port for servers given without one.
    #[arg(short = 'p', long, default_value_t = DEFAULT_PORT, value_name = "PORT")]
    pub port: u16,

    /// Time between refreshes: seconds (fractions allowed) or a number with `ms`/`s`.
    #[arg(short = 'i', long, default_value = "1", value_name = "SECONDS", value_parser = parse_duration)]
    pub interval: Duration,

    /// Bound on connecting to a server and on each of its replies, so that a dead server
    /// is shown as down instead of stalling its panel.
    #[arg(short = 't', long, default_value = "2", value_name = "SECONDS", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Print one snapshot of every server as plain text and exit (for scripts).
    #[arg(long, visible_alias = "batch")]
    pub once: bool,

    /// Do not ask for `show jobs` (no jobs panel, job rates or ages): for servers holding
    /// very many jobs.
    #[arg(long)]
    pub no_jobs: bool,

    /// Minutes of history kept for the charts.
    #[arg(long, default_value_t = 5, value_name = "MINUTES", value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub history: u32,

    /// Connect to every server over TLS (rustls, TLS 1.2/1.3), verifying its certificate
    /// against --ssl-ca-file, which is required (there is no built-in trust store).
    #[arg(short = 'S', long)]
    pub ssl: bool,

    /// With -S: the CA file, client certificate and key, and the servers' name (texts and
    /// the need for -S in [`tls_help`]).
    #[command(flatten)]
    pub tls: TlsArgs,

    /// Print help.
    #[arg(short = 'H', long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

impl Cli {
    /// The servers to watch, parsed, in the order given (`localhost` when none is).
    pub fn servers(&self) -> Result<Vec<ServerAddr>, ServerListError> {
        if self.hosts.iter().all(|h| h.trim().is_empty()) {
            return Ok(vec![ServerAddr::new(DEFAULT_HOST, self.port)]);
        }
        let mut servers = Vec::new();
        for list in self.hosts.iter().filter(|h| !h.trim().is_empty()) {
            servers.extend(parse_list(list, self.port)?);
        }
        Ok(servers)
    }

    /// The `-S` settings: `None` without `-S`. Each file comes from its `--ssl-*` option,
    /// else from its libgearman variable (looked up with `env`, empty meaning unset).
    pub fn tls_options(&self, env: impl Fn(&str) -> Option<OsString>) -> Option<TlsOptions> {
        self.tls.options(self.ssl, env)
    }
}

/// The help texts of the shared `--ssl-*` options ([`TlsArgs`]); here clap itself rejects
/// them without -S, and their values may not start with a dash.
fn tls_help(arg: Arg) -> Arg {
    let help = match arg.get_id().as_str() {
        "ssl_ca_file" => {
            "With -S: PEM file of the CA the servers' certificates must chain to (default: \
             GEARMAND_CA_CERTIFICATE)"
        }
        "ssl_certificate" => {
            "With -S: PEM file of the client certificate chain to present when a server asks \
             for one; needs --ssl-key (default: GEARMAN_CLIENT_PEM)"
        }
        "ssl_key" => {
            "With -S: PEM file of the client certificate's private key (default: \
             GEARMAN_CLIENT_KEY)"
        }
        "ssl_server_name" => {
            "With -S: the name every server's certificate must carry (default: each server's \
             host as given)"
        }
        _ => return arg,
    };
    arg.help(help).requires("ssl").allow_hyphen_values(false)
}

/// Parses `1`, `0.5`, `250ms` or `2s` into a duration of at least 10 ms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = t.strip_suffix('s') {
        (s, 1.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 1, 0.5, 250ms)"))?;
    let secs = value * scale;
    if !secs.is_finite() || !(0.01..=86_400.0).contains(&secs) {
        return Err(format!("{text:?} must be between 10ms and 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The clap command, for the man page and tests.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses the command line (clap prints help, version and usage errors itself).
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args)
}

/// The man page, rendered from [`command`].
pub fn man_page() -> std::io::Result<Vec<u8>> {
    gearman_shared::cli::man_page(command(), "1", "")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn parse(args: &[&str]) -> Cli {
        let mut all = vec!["gearman-tui"];
        all.extend_from_slice(args);
        parse_from(all).unwrap()
    }

    #[test]
    fn hosts_repeat_and_split_on_commas() {
        let cli = parse(&["-h", "a", "-h", "b:4731,[::1]:9", "-p", "7000"]);
        let servers = cli.servers().unwrap();
        let shown: Vec<String> = servers.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["a:7000", "b:4731", "[::1]:9"]);
    }

    #[test]
    fn default_is_localhost_and_one_second() {
        let cli = parse(&[]);
        if std::env::var_os("GEARMAN_SERVER").is_none() {
            assert_eq!(cli.servers().unwrap()[0].to_string(), "localhost:4730");
        }
        assert_eq!(cli.interval, Duration::from_secs(1));
        assert!(!cli.once);
    }

    #[test]
    fn addresses() {
        let p = |s| parse_list(s, 4730).unwrap()[0].clone();
        assert_eq!(p("::1").to_string(), "[::1]:4730");
        assert_eq!(p("[::1]").to_string(), "[::1]:4730");
        assert!(parse_list("h:x", 4730).is_err());
        assert!(parse_list("[::1", 4730).is_err());
        assert!(p("127.0.0.1:1").is_loopback());
        assert!(p("localhost").is_loopback());
        assert!(!p("10.0.0.1").is_loopback());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("NaN").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn dash_h_is_the_host_and_help_is_capital() {
        let cli = parse(&["-h", "example"]);
        assert_eq!(cli.hosts, ["example"]);
        let err = parse_from(["gearman-tui", "-H"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        let err = parse_from(["gearman-tui", "--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(parse_from(["gearman-tui", "--batch"]).unwrap().once);
    }

    #[test]
    fn tls_settings() {
        let env = [
            ("GEARMAND_CA_CERTIFICATE", "/env/ca.pem"),
            ("GEARMAN_CLIENT_PEM", "/env/c.pem"),
            ("GEARMAN_CLIENT_KEY", ""),
        ];
        let lookup = |var: &str| {
            env.iter()
                .find(|(name, _)| *name == var)
                .map(|(_, value)| OsString::from(value))
        };
        // Without -S the variables are not read, and the options are a usage error.
        assert_eq!(parse(&[]).tls_options(lookup), None);
        for option in [
            "--ssl-ca-file",
            "--ssl-certificate",
            "--ssl-key",
            "--ssl-server-name",
        ] {
            let err = parse_from(["gearman-tui", option, "x"]).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{option}"
            );
            assert!(err.to_string().contains("--ssl"), "{err}");
        }
        let o = parse(&["-S"]).tls_options(lookup).unwrap();
        assert_eq!(o.ca_file, Some(PathBuf::from("/env/ca.pem")));
        assert_eq!(o.certificate, Some(PathBuf::from("/env/c.pem")));
        assert_eq!(o.key, None, "an empty variable is unset");
        let o = parse(&[
            "--ssl",
            "--ssl-ca-file",
            "/ca.pem",
            "--ssl-key=/k.pem",
            "--ssl-server-name",
            "gearman.example",
        ])
        .tls_options(lookup)
        .unwrap();
        assert_eq!(o.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(o.certificate, Some(PathBuf::from("/env/c.pem")));
        assert_eq!(o.key, Some(PathBuf::from("/k.pem")));
        assert_eq!(o.server_name.as_deref(), Some("gearman.example"));
        assert_eq!(
            parse(&["-S"]).tls_options(|_| None),
            Some(TlsOptions::default())
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    /// `UPDATE_MAN=1 cargo test -p gearman-tui man_page` regenerates the file.
    #[test]
    fn man_page_matches_the_cli() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../man/gearman-tui.1");
        gearman_shared::cli::assert_man_page_fresh(&path, &man_page().unwrap(), "gearman-tui");
    }
}
