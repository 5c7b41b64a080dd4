//! `gearman-tui`: placeholder until its issue is implemented.

fn main() -> std::process::ExitCode {
    eprintln!("gearman-tui: not yet implemented");
    std::process::ExitCode::FAILURE
}
