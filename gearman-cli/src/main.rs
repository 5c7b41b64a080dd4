//! `gearman`: the Gearman command-line client and worker. All the work is in the library;
//! this maps its result to an exit code and prints a failure as one line on stderr.

use std::process::ExitCode;

fn main() -> ExitCode {
    let gearman_server = std::env::var_os("GEARMAN_SERVER");
    let result: anyhow::Result<gearman_cli::Outcome> =
        gearman_cli::run(std::env::args_os(), gearman_server.as_deref()).map_err(Into::into);
    match result {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            // `{e}` rather than `{e:#}`: our messages already include their cause.
            eprintln!("gearman: {e}");
            ExitCode::FAILURE
        }
    }
}
