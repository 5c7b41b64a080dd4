//! What the command-line tools (`gearadmin`, `gearman`, `gearman-tui`, and `gearmand` for its
//! man page) share: the `--ssl-*` options and their `-S` rule, word-wrapping, and man-page
//! rendering with its freshness check. Behind the `cli` feature, so that the protocol crate
//! does not pull in clap by default.
//!
//! Each tool keeps its own `-S` flag (its place and text differ: `gearman` has only the
//! letter, among the C tool's common options) and its own help texts for the `--ssl-*`
//! options, set with [`clap::Command::mut_args`] on the flattened [`TlsArgs`].

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::tls::TlsOptions;

/// The `--ssl-*` options, flattened into each tool's clap definition after its `-S`.
///
/// Values may start with a dash (`--ssl-key -k.pem`), as the C tools' options do; a tool
/// that wants otherwise says so in its `mut_args`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
#[group(skip)]
pub struct TlsArgs {
    /// With `-S`: the CA file (else `GEARMAND_CA_CERTIFICATE`).
    #[arg(long, value_name = "FILE", allow_hyphen_values = true,
          value_parser = clap::value_parser!(PathBuf))]
    pub ssl_ca_file: Option<PathBuf>,
    /// With `-S`: the client certificate (else `GEARMAN_CLIENT_PEM`).
    #[arg(long, value_name = "FILE", allow_hyphen_values = true,
          value_parser = clap::value_parser!(PathBuf))]
    pub ssl_certificate: Option<PathBuf>,
    /// With `-S`: the client certificate's key (else `GEARMAN_CLIENT_KEY`).
    #[arg(long, value_name = "FILE", allow_hyphen_values = true,
          value_parser = clap::value_parser!(PathBuf))]
    pub ssl_key: Option<PathBuf>,
    /// With `-S`: the name the server's certificate must carry (else the host).
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub ssl_server_name: Option<String>,
}

/// The long names of the [`TlsArgs`] options, in order; each takes a value.
pub const TLS_LONG_OPTIONS: [&str; 4] = [
    "ssl-ca-file",
    "ssl-certificate",
    "ssl-key",
    "ssl-server-name",
];

impl TlsArgs {
    /// The first `--ssl-*` option given, as `--name`, if any (they need `-S`).
    pub fn first_given(&self) -> Option<&'static str> {
        [
            (self.ssl_ca_file.is_some(), "--ssl-ca-file"),
            (self.ssl_certificate.is_some(), "--ssl-certificate"),
            (self.ssl_key.is_some(), "--ssl-key"),
            (self.ssl_server_name.is_some(), "--ssl-server-name"),
        ]
        .into_iter()
        .find_map(|(given, option)| given.then_some(option))
    }

    /// The `-S` settings: `None` without `-S` (`ssl`), when the libgearman variables are not
    /// read either. Each file comes from its `--ssl-*` option, else from its variable
    /// (looked up with `env`, empty meaning unset). Whether `--ssl-*` without `-S` is an
    /// error is the tool's to say (see [`TlsArgs::first_given`]).
    pub fn options(&self, ssl: bool, env: impl Fn(&str) -> Option<OsString>) -> Option<TlsOptions> {
        if !ssl {
            return None;
        }
        Some(
            TlsOptions {
                ca_file: self.ssl_ca_file.clone(),
                certificate: self.ssl_certificate.clone(),
                key: self.ssl_key.clone(),
                server_name: self.ssl_server_name.clone(),
            }
            .or_from_env(env),
        )
    }
}

/// Word-wraps `text` to about `width` columns (a tab counts as 8): the first line starts
/// with `first`, the others with `rest`; every line ends with `\n`. A word longer than a
/// line gets a line of its own.
pub fn wrap(text: &str, first: &str, rest: &str, width: usize) -> String {
    let columns = |s: &str| {
        s.chars()
            .map(|c| if c == '\t' { 8 } else { 1 })
            .sum::<usize>()
    };
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && columns(&line) + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// Renders the man page of `command` in `section` (`"1"`, `"8"`), followed by `extra`
/// (sections clap does not know about, in roff; may be empty).
pub fn man_page(command: clap::Command, section: &str, extra: &str) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .section(section.to_string())
        .render(&mut out)?;
    out.extend_from_slice(extra.as_bytes());
    Ok(out)
}

/// For each tool's unit test: panics unless the committed man page `path` equals `rendered`.
/// With `UPDATE_MAN` set in the environment the file is rewritten first; `package` names
/// the crate in the hint (`UPDATE_MAN=1 cargo test -p <package> man_page`).
pub fn assert_man_page_fresh(path: &Path, rendered: &[u8], package: &str) {
    if std::env::var_os("UPDATE_MAN").is_some() {
        if let Err(e) = std::fs::write(path, rendered) {
            panic!("write {}: {e}", path.display());
        }
    }
    let committed = std::fs::read(path).unwrap_or_default();
    assert!(
        committed == rendered,
        "{} is stale: run UPDATE_MAN=1 cargo test -p {package} man_page",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a b c", "- ", "  ", 80), "- a b c\n");
        assert_eq!(wrap("aaa bbb ccc", "- ", "  ", 7), "- aaa\n  bbb\n  ccc\n");
        assert_eq!(wrap("toolongword x", "- ", "  ", 5), "- toolongword\n  x\n");
        assert_eq!(wrap("aa bb", "\t", "\t", 11), "\taa\n\tbb\n");
    }

    #[test]
    fn tls_args() {
        let none = TlsArgs::default();
        assert_eq!(none.first_given(), None);
        assert_eq!(none.options(false, |_| Some("x".into())), None);
        assert_eq!(none.options(true, |_| None), Some(TlsOptions::default()));
        let some = TlsArgs {
            ssl_key: Some("k".into()),
            ssl_server_name: Some("n".into()),
            ..TlsArgs::default()
        };
        assert_eq!(some.first_given(), Some("--ssl-key"));
        let o = some.options(true, |var| Some(format!("/env/{var}").into()));
        let o = o.unwrap_or_default();
        assert_eq!(o.key, Some(PathBuf::from("k")));
        assert_eq!(
            o.ca_file,
            Some(PathBuf::from("/env/GEARMAND_CA_CERTIFICATE"))
        );
        assert_eq!(o.server_name.as_deref(), Some("n"));
    }

    #[test]
    fn long_names() {
        use clap::{Args, Command};
        let cmd = TlsArgs::augment_args(Command::new("t"));
        let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
        assert_eq!(longs, TLS_LONG_OPTIONS);
    }
}
