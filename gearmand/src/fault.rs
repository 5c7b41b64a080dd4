//! Faults on cue, for the tests that prove the server never lingers half-alive: with
//! `GEARMAND_TEST_FAULT=<site>` in its environment, a debug build makes the chosen thread
//! panic (or, for `proc-stall`, block) when it meets [`TRIGGER`]. Release builds compile
//! every check to `false`, so what ships cannot be made to fail this way.
//!
//! | site | thread | cue |
//! |---|---|---|
//! | `listener` | `gearmand-listen` (or `-main`) | the second accepted connection |
//! | `io` | an I/O thread | an ECHO_REQ whose data is [`TRIGGER`] |
//! | `proc` | the processing thread | a SUBMIT_JOB* to the function [`TRIGGER`] |
//! | `proc-stall` | the processing thread | the same, but it sleeps for a minute instead |
//! | `store` | `gearmand-store` | writing a job of the function [`TRIGGER`] |
//! | `http` | `gearmand-http` | an HTTP submission to the function [`TRIGGER`] |

/// The bytes that set a fault off: an ECHO payload or a function name.
pub const TRIGGER: &[u8] = b"gearmand-test-fault";

/// Where a fault can be set off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    Listener,
    Io,
    Processor,
    ProcessorStall,
    Store,
    Http,
}

impl Site {
    /// The name `GEARMAND_TEST_FAULT` uses.
    #[cfg(debug_assertions)]
    fn name(self) -> &'static str {
        match self {
            Site::Listener => "listener",
            Site::Io => "io",
            Site::Processor => "proc",
            Site::ProcessorStall => "proc-stall",
            Site::Store => "store",
            Site::Http => "http",
        }
    }
}

/// Whether the environment arms `site` (read once).
#[cfg(debug_assertions)]
pub fn armed(site: Site) -> bool {
    static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var("GEARMAND_TEST_FAULT").ok())
        .as_deref()
        == Some(site.name())
}

/// Release builds: never armed.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn armed(_site: Site) -> bool {
    false
}

/// Sets the fault of `site` off if it is armed and `cue` is [`TRIGGER`].
#[inline]
#[track_caller]
pub fn check(site: Site, cue: &[u8]) {
    if cue == TRIGGER && armed(site) {
        fire(site);
    }
}

/// Panics, or blocks the calling thread for a minute (`proc-stall`).
#[cold]
#[track_caller]
pub fn fire(site: Site) {
    if site == Site::ProcessorStall {
        tracing::warn!("test fault: the processing thread stalls for 60 s");
        std::thread::sleep(std::time::Duration::from_secs(60));
    } else {
        panic!("test fault set off on the {site:?} site");
    }
}
