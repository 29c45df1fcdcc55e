//! What the daemon adds to the local web server: Prometheus metrics and snapshots. The match
//! start/stop endpoints live with the page's other API (`crate::web`), behind the technician's
//! PIN.

use super::Shared;
use crate::capture::still::{encode_png, grab_frame};
use std::fmt::Write;

/// `/metrics`: the pipeline's counters and the daemon's state, Prometheus text format.
pub fn metrics_text(shared: &Shared) -> String {
    let status = shared.status();
    let mut out = shared.counters().prometheus();
    let gauges = [
        (
            "polyvision_match_running",
            "1 while a match is recorded.",
            u64::from(status.running_match.is_some()) as f64,
        ),
        (
            "polyvision_unsynced_rows",
            "Rows in the buffer the cloud has not acknowledged.",
            status.unsynced_rows as f64,
        ),
        (
            "polyvision_sync_quarantined_batches",
            "Batches the cloud refused for good, kept in the buffer (an alarm).",
            status.sync_quarantined as f64,
        ),
        (
            "polyvision_disk_free_megabytes",
            "Free space on the buffer's filesystem.",
            status.disk_free_mb as f64,
        ),
        (
            "polyvision_disk_alarm",
            "1 while recording is refused for lack of disk space.",
            u64::from(status.disk_alarm) as f64,
        ),
        (
            "polyvision_uptime_seconds",
            "Seconds since the daemon started.",
            shared.started.elapsed().as_secs_f64(),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        );
    }
    out
}

/// Saves a still of each camera next to the buffer (`snapshot-<camera>.png`); the message
/// lists the files. File sources only while a match runs elsewhere on the same device.
pub fn snapshot(shared: &Shared) -> Result<String, String> {
    let dir = shared
        .config
        .storage
        .database
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let mut saved = Vec::new();
    for (name, camera) in shared.config.capture.cameras() {
        let frame = grab_frame(&camera.source, camera.still_frame)
            .map_err(|e| format!("camera {name}: {e}"))?;
        let png = encode_png(&frame).map_err(|e| format!("camera {name}: {e}"))?;
        let path = dir.join(format!("snapshot-{name}.png"));
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        saved.push(path.display().to_string());
    }
    if saved.is_empty() {
        return Err("no camera is configured".into());
    }
    Ok(format!("saved {}", saved.join(", ")))
}
