//! Process-level set-up done once at start: resource limits, detaching, dropping
//! privileges.

use anyhow::Context;
use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
use nix::unistd::{self, User};

use crate::config::Config;

/// Looks `-u NAME` up before anything else happens, so a typo fails at once.
pub fn find_user(name: &str) -> anyhow::Result<User> {
    User::from_name(name)
        .with_context(|| format!("Could not look up user {name}"))?
        .with_context(|| format!("Could not find user {name}"))
}

/// `-f N` (or the hard limit by default) for descriptors, and `--coredump`.
pub fn set_limits(config: &Config) -> anyhow::Result<()> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit(RLIMIT_NOFILE)")?;
    match config.file_descriptors {
        Some(wanted) => setrlimit(Resource::RLIMIT_NOFILE, wanted, hard.max(wanted))
            .with_context(|| format!("Could not set the file descriptor limit to {wanted}"))?,
        None if soft < hard => {
            // As the C server: use everything the user is allowed.
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
        None => {}
    }
    if config.coredump {
        let (_, hard) = getrlimit(Resource::RLIMIT_CORE).context("getrlimit(RLIMIT_CORE)")?;
        let limit = if hard == RLIM_INFINITY {
            RLIM_INFINITY
        } else {
            hard
        };
        setrlimit(Resource::RLIMIT_CORE, limit, hard).context("Could not enable core dumps")?;
    }
    Ok(())
}

/// `-d`: fork into the background, start a new session, leave the working directory and
/// point stdin/stdout/stderr at /dev/null.
pub fn daemonize() -> anyhow::Result<()> {
    unistd::daemon(false, false).context("Could not detach into the background")
}

/// `-u`: after binding, take the user's groups and ids.
pub fn switch_user(user: &User) -> anyhow::Result<()> {
    let name = std::ffi::CString::new(user.name.as_str()).context("user name contains NUL")?;
    unistd::initgroups(&name, user.gid)
        .with_context(|| format!("Could not set the groups of {}", user.name))?;
    unistd::setgid(user.gid)
        .with_context(|| format!("Could not switch to group of {}", user.name))?;
    unistd::setuid(user.uid).with_context(|| format!("Could not switch to user {}", user.name))?;
    tracing::info!(user = %user.name, "switched user");
    Ok(())
}
