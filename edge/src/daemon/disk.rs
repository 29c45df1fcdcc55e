//! Free space on the buffer's filesystem, checked every few seconds: below the configured
//! minimum the running match stops and no new one starts (the alarm); above it again (with 10 %
//! hysteresis) the alarm clears. Nothing is deleted to make room: unsynced rows are the product.

use super::Shared;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Free space for unprivileged writers on the filesystem holding `path`, MB.
pub fn free_mb(path: &Path) -> Option<u64> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    let st = rustix::fs::statvfs(&dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize) / 1_048_576)
}

/// Watches the disk every `period` until the process ends.
pub fn watch(shared: Arc<Shared>, period: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let min = shared.config.storage.min_free_mb;
        loop {
            if let Some(free) = free_mb(&shared.config.storage.database) {
                let alarm = shared.status().disk_alarm;
                if free < min {
                    shared.raise_disk_alarm(free);
                } else if alarm && free as f64 >= min as f64 * 1.1 {
                    shared.clear_disk_alarm(free);
                } else {
                    shared.update(|s| s.disk_free_mb = free);
                }
            }
            std::thread::sleep(period);
        }
    })
}
