//! Telling a service manager the truth (systemd's `Type=notify` protocol): `READY=1` once
//! the queue is replayed and the ports listen, `STOPPING=1` when the shutdown begins, and,
//! when the unit sets `WatchdogSec=`, `WATCHDOG=1` only while the processing thread keeps
//! turning. A stuck or dead processor stops the pings, and systemd restarts the service.
//! Without `NOTIFY_SOCKET` in the environment every message is a no-op.
//!
//! The processing thread only stores a timestamp (it makes no system calls of its own);
//! the thread `gearmand-watchdog` sends the pings while that timestamp stays fresh.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sd_notify::NotifyState;

use crate::clock::now_ms;

/// Start-up is complete: the port listens and the queue is replayed.
pub fn ready() {
    send(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

/// The shutdown has begun.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// The processing thread's pulse.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// When the processor last turned, ms since the epoch.
    last_ms: Arc<AtomicU64>,
    /// How often the processor must beat, even when idle.
    period: Duration,
}

impl Heartbeat {
    fn new(period: Duration) -> Heartbeat {
        Heartbeat {
            last_ms: Arc::new(AtomicU64::new(now_ms())),
            period,
        }
    }

    /// The processor is alive at `now_ms`.
    pub fn beat(&self, now_ms: u64) {
        self.last_ms.store(now_ms, Ordering::Relaxed);
    }

    /// The latest time the processor may sleep until before its next beat.
    pub fn next_due_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add(period_ms(self.period))
    }

    /// Whether a ping at `now_ms` tells the truth: the last beat is at most two periods
    /// old (the processor beats every period; one more absorbs scheduling delays).
    fn fresh(&self, now_ms: u64) -> bool {
        is_fresh(
            self.last_ms.load(Ordering::Relaxed),
            now_ms,
            period_ms(self.period),
        )
    }
}

fn period_ms(period: Duration) -> u64 {
    u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn is_fresh(last_ms: u64, now_ms: u64, period_ms: u64) -> bool {
    now_ms.saturating_sub(last_ms) <= period_ms.saturating_mul(2)
}

/// When `WATCHDOG_USEC` asks for a watchdog, starts the thread that pings it and returns
/// the heartbeat the processing thread must keep; otherwise `None`.
pub fn start_watchdog() -> anyhow::Result<Option<Heartbeat>> {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return Ok(None);
    };
    // Four beats and pings per timeout: a ping withheld for two periods still leaves
    // systemd's timer two periods before it fires, and a stall longer than that is fatal.
    let heartbeat = Heartbeat::new((timeout / 4).max(Duration::from_millis(1)));
    let watched = heartbeat.clone();
    std::thread::Builder::new()
        .name("gearmand-watchdog".into())
        .spawn(move || watch(&watched))
        .context("cannot start thread gearmand-watchdog")?;
    tracing::info!(timeout_ms = %timeout.as_millis(), "systemd watchdog enabled");
    Ok(Some(heartbeat))
}

fn watch(heartbeat: &Heartbeat) {
    let mut withheld = false;
    loop {
        std::thread::sleep(heartbeat.period);
        let now = now_ms();
        if heartbeat.fresh(now) {
            send(&[NotifyState::Watchdog]);
            withheld = false;
        } else if !withheld {
            let age = now.saturating_sub(heartbeat.last_ms.load(Ordering::Relaxed));
            tracing::error!(
                age_ms = age,
                "the processing thread has not turned: withholding the watchdog ping"
            );
            withheld = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_is_fresh_for_two_periods() {
        assert!(is_fresh(1_000, 1_000, 250));
        assert!(is_fresh(1_000, 1_500, 250));
        assert!(!is_fresh(1_000, 1_501, 250));
        // A clock that steps back is not a stall.
        assert!(is_fresh(2_000, 1_000, 250));
    }

    #[test]
    fn the_processor_wakes_within_a_period() {
        let heartbeat = Heartbeat::new(Duration::from_millis(250));
        assert_eq!(heartbeat.next_due_ms(1_000), 1_250);
        heartbeat.beat(5_000);
        assert!(heartbeat.fresh(5_400) && !heartbeat.fresh(5_600));
    }
}
