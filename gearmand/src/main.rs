//! `gearmand` binary: parse the command line, run the server, map errors to exit codes.

use std::process::ExitCode;

use gearmand::cli::{self, Parsed};
use gearmand::config::Config;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Parsed::Run(cli) => cli,
        Parsed::Print(text) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Parsed::Fail(message) => {
            eprintln!("gearmand: {message}");
            return ExitCode::FAILURE;
        }
    };
    let result = Config::from_cli(&cli)
        .map_err(anyhow::Error::from)
        .and_then(gearmand::server::run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gearmand: {e:#}");
            ExitCode::FAILURE
        }
    }
}
