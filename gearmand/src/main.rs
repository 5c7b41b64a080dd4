//! `gearmand` binary: parse the command line, run the server, map errors to exit codes.

use std::process::ExitCode;

use gearmand::cli::{self, Parsed};
use gearmand::config::Config;

/// mimalloc rather than glibc's malloc: freed job records go back to the system once
/// a deep queue drains (glibc keeps them in its arenas). Built without transparent
/// huge pages (`no_thp`), which would triple the idle footprint.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    gearmand::fatal::install();
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
