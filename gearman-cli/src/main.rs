//! `gearman`: placeholder until its issue is implemented.

fn main() -> std::process::ExitCode {
    eprintln!("gearman: not yet implemented");
    std::process::ExitCode::FAILURE
}
