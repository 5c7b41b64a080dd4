//! `gearman-tui` binary: parse the command line, run the dashboard (or `--once`), map the
//! outcome to an exit code (0 ok, 1 a server is down in `--once` or an error, 2 usage).

use std::process::ExitCode;

use anyhow::Context;
use gearman_tui::{cli, Outcome};

fn main() -> ExitCode {
    let cli = match cli::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version on stdout (exit 0) and usage errors on stderr (2).
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match gearman_tui::run(&cli).context("gearman-tui") {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::ServerDown) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
