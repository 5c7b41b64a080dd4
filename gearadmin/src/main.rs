//! `gearadmin`: placeholder until its issue is implemented.

fn main() -> std::process::ExitCode {
    eprintln!("gearadmin: not yet implemented");
    std::process::ExitCode::FAILURE
}
