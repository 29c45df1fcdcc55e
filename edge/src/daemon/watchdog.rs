//! systemd readiness and watchdog (`Type=notify`, `WatchdogSec=`).
//!
//! The pings come from the pipeline's own progress: while a match runs, the tracker must have
//! taken a new frame since the last check; while idle, the match runner's loop must have ticked.
//! A stuck stage therefore stops the pings and systemd restarts the daemon. Outside systemd
//! (no `NOTIFY_SOCKET`) nothing is sent.

use super::Shared;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Tells systemd the daemon is ready.
pub fn ready() {
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "telling systemd we are ready failed");
    }
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
}

/// A value that moves while the daemon does its work: frames tracked during a match, the
/// runner's ticks otherwise.
fn progress(shared: &Shared) -> (bool, u64) {
    let running = shared.status().running_match.is_some();
    let value = if running {
        shared.counters().stages[5].frames.load(Ordering::Relaxed)
    } else {
        shared.runner_ticks.load(Ordering::Relaxed)
    };
    (running, value)
}

/// Pings systemd's watchdog at half its interval while progress is made; a match may take
/// `grace` to deliver its first frame (sources starting, the model loading).
pub fn watch(shared: Arc<Shared>, grace: Duration) -> Option<std::thread::JoinHandle<()>> {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) {
        return None;
    }
    let interval = Duration::from_micros(usec / 2).max(Duration::from_millis(100));
    Some(std::thread::spawn(move || {
        let mut last = progress(&shared);
        let mut since = std::time::Instant::now();
        loop {
            std::thread::sleep(interval);
            let now = progress(&shared);
            let moved = now != last;
            if moved {
                last = now;
                since = std::time::Instant::now();
            }
            // A new match gets its grace period from its start.
            let allowed = if now.0 { grace } else { interval * 2 };
            if moved || since.elapsed() < allowed {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            } else {
                tracing::error!(
                    stalled_s = since.elapsed().as_secs_f64(),
                    "no progress: watchdog pings stopped, systemd will restart the daemon"
                );
            }
        }
    }))
}
