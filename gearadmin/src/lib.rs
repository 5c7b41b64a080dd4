//! `gearadmin`: administer a Gearman job server, a drop-in replacement for gearadmin 1.1.20.
//!
//! - [`cli`]: the options (clap), the C tool's options text and usage-error messages;
//! - [`ops`]: the admin command behind each option and the C tool's fixed execution order;
//! - [`output`]: the C tool's printing rules for each reply, and the `--json` report;
//! - [`run`]: resolving and connecting (one connection for all operations, over TLS with
//!   `-S`), running them;
//! - [`man`]: the man page rendered from the clap definition.
//!
//! The wire side (command lines, reply framing and parsing) is `gearman_shared::admin`.

pub mod cli;
pub mod man;
pub mod ops;
pub mod output;
pub mod run;

use std::ffi::OsString;
use std::io::Write;

use cli::Parsed;

/// Runs gearadmin with `args` (program name first), printing on `out` and `err`; returns the
/// exit status: 0 on success, 1 on a usage error, an unreachable server, a failed connection
/// or an `ERR` reply.
pub fn main_with<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match cli::parse(args) {
        Parsed::Help => match print(out, cli::options_text().as_bytes()) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Parsed::Usage(text) => {
            let _ = print(out, text.as_bytes());
            1
        }
        Parsed::Run(cli) => match run::execute(&cli, out, err) {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(e) => {
                let _ = out.flush();
                if !e.is_broken_pipe() {
                    let _ = writeln!(err, "Error: {e}");
                    let _ = err.flush();
                }
                1
            }
        },
    }
}

fn print(out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> (u8, String, String) {
        let mut all = vec!["gearadmin"];
        all.extend_from_slice(args);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = main_with(all, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn help_goes_to_stdout() {
        let (code, out, err) = run(&["--help"]);
        assert_eq!((code, err.as_str()), (0, ""));
        assert_eq!(out, cli::options_text());
    }

    #[test]
    fn usage_errors_go_to_stdout_like_the_c_tool() {
        let (code, out, err) = run(&["--shutdown-now"]);
        assert_eq!((code, err.as_str()), (1, ""));
        assert!(out.starts_with("gearadmin : unrecognised option '--shutdown-now'\n\nOptions:\n"));
        let (code, out, _) = run(&[]);
        assert_eq!(code, 1);
        assert!(out.starts_with("No option execution operation given.\n\nOptions:\n"));
    }

    #[test]
    fn tls_files_are_read_before_connecting() {
        // Port 1 on localhost: a connection attempt would fail with "Error connecting".
        let (code, out, err) = run(&[
            "-S",
            "--ssl-ca-file",
            "/nonexistent/ca.pem",
            "-p",
            "1",
            "--status",
        ]);
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(
            err.starts_with("Error: TLS (-S): cannot read /nonexistent/ca.pem: "),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn tls_options_need_dash_s() {
        let (code, out, err) = run(&["--ssl-key", "k.pem", "--status"]);
        assert_eq!((code, err.as_str()), (1, ""));
        assert!(
            out.starts_with("gearadmin : option '--ssl-key' requires option '--ssl'\n\nOptions:\n"),
            "{out}"
        );
    }

    #[test]
    fn unknown_service() {
        let (code, out, err) = run(&["-p", "no-such-service-x", "--status"]);
        assert_eq!((code, out.as_str()), (1, ""));
        assert_eq!(
            err,
            "Error: Failed to connect on localhost:no-such-service-x with Servname not supported for ai_socktype\n"
        );
    }
}
