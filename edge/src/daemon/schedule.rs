//! Matches from the config's schedule (`[[schedule]]`: a UTC start and a length).
//!
//! A window that is open when the daemon starts (after a restart mid-match) gets a match for the
//! rest of it; each window starts at most one match, so a technician who stops a scheduled match
//! by hand is not overruled; at the window's end the match the schedule started is stopped.
//! Windows must not overlap (checked at load).

use super::Shared;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// One scheduled match: `[start_s, end_s)` in seconds since 1970.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// Start, s since 1970 (UTC).
    pub start_s: u64,
    /// End, s since 1970 (UTC).
    pub end_s: u64,
}

/// What the scheduler should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start a match for this window.
    Start(Window),
    /// Stop the match this window started.
    Stop(Window),
    /// Nothing.
    Wait,
}

/// The next action at `now_s`, given the windows already started and the one whose match is
/// running (if the schedule started it).
pub fn next_action(
    windows: &[Window],
    now_s: u64,
    started: &HashSet<Window>,
    running: Option<Window>,
) -> Action {
    if let Some(w) = running
        && now_s >= w.end_s
    {
        return Action::Stop(w);
    }
    windows
        .iter()
        .find(|w| w.start_s <= now_s && now_s < w.end_s && !started.contains(w))
        .map_or(Action::Wait, |w| Action::Start(*w))
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Follows the schedule once a second until the process ends; nothing when it is empty.
pub fn run(shared: Arc<Shared>, windows: Vec<Window>) -> Option<std::thread::JoinHandle<()>> {
    if windows.is_empty() {
        return None;
    }
    Some(std::thread::spawn(move || {
        let mut started = HashSet::new();
        let mut running: Option<Window> = None;
        loop {
            // A match the schedule started and someone else stopped is no longer ours.
            if running.is_some() && shared.status().running_match.is_none() {
                running = None;
            }
            match next_action(&windows, now_s(), &started, running) {
                Action::Start(w) => {
                    started.insert(w);
                    match shared.start_match("schedule") {
                        Ok(_) => running = Some(w),
                        Err(e) => tracing::warn!(error = %e, "scheduled match not started"),
                    }
                }
                Action::Stop(_) => {
                    if let Err(e) = shared.stop_match("schedule") {
                        tracing::warn!(error = %e, "stopping the scheduled match");
                    }
                    running = None;
                }
                Action::Wait => {}
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Window = Window {
        start_s: 1000,
        end_s: 2000,
    };
    const B: Window = Window {
        start_s: 5000,
        end_s: 6000,
    };

    #[test]
    fn windows_start_once_and_stop_at_their_end() {
        let mut started = HashSet::new();
        assert_eq!(next_action(&[A, B], 999, &started, None), Action::Wait);
        assert_eq!(next_action(&[A, B], 1000, &started, None), Action::Start(A));
        started.insert(A);
        assert_eq!(next_action(&[A, B], 1500, &started, Some(A)), Action::Wait);
        assert_eq!(
            next_action(&[A, B], 2000, &started, Some(A)),
            Action::Stop(A)
        );
        // Stopped by hand mid-window: not started again.
        assert_eq!(next_action(&[A, B], 1800, &started, None), Action::Wait);
        // A restart in the middle of the next window records its rest.
        assert_eq!(next_action(&[A, B], 5500, &started, None), Action::Start(B));
    }
}
