//! A panic on any thread ends the process at once. A server thread that died alone would
//! leave a half-alive process (the port closed while the process runs, or a main thread
//! waiting for signals forever) that a supervisor never restarts. The hook logs the
//! thread, the message and the location, writes the log out, and exits with
//! [`EXIT_PANIC`]. Acknowledged jobs are safe: a persistent queue acknowledges a job only
//! after it is committed, and the restart replays it.

use std::panic::PanicHookInfo;

/// The exit code after a panic: `EX_SOFTWARE`, an internal software error.
pub const EXIT_PANIC: i32 = 70;

/// Installs the hook; call first thing in `main`.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let line = describe(info);
        tracing::error!("{line}; exiting");
        crate::logging::flush();
        if !crate::logging::logs_to_stderr() {
            eprintln!("gearmand: {line}; exiting");
        }
        std::process::exit(EXIT_PANIC);
    }));
}

/// `thread 'gearmand-proc' panicked at src/x.rs:1:2: message`.
fn describe(info: &PanicHookInfo<'_>) -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unnamed");
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    match info.location() {
        Some(at) => format!("thread '{name}' panicked at {at}: {message}"),
        None => format!("thread '{name}' panicked: {message}"),
    }
}
