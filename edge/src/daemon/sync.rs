//! The uploader inside the daemon: its own connection to the buffer, batches to the cloud
//! while matches record, the backlog and last success copied into the daemon's status for the
//! heartbeat, the page and `/metrics`. `sync_now` (MQTT) cuts the poll wait short.

use super::Shared;
use crate::store::Store;
use polyvision_cloud_sync::uploader::{Uploader, UploaderConfig};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Starts the uploader when `[cloud] endpoint` is set; returns its task.
pub fn start(shared: Arc<Shared>) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let cloud = shared.config.cloud.clone();
    let endpoint = cloud.endpoint.trim().to_string();
    if endpoint.is_empty() {
        tracing::info!("no cloud endpoint configured: rows stay in the buffer");
        return Ok(None);
    }
    let (key, created) = polyvision_cloud_sync::identity::load_or_create(&cloud.key_file)?;
    let public = polyvision_cloud_sync::identity::public_key_text(&key.verifying_key());
    if created {
        tracing::info!(path = %cloud.key_file.display(), public_key = %public, "device key created; enrol this public key");
    }
    let mut config = UploaderConfig::new(&endpoint, &shared.serial);
    config.batch_rows = cloud.batch_rows;
    config.ca_file = cloud.ca_file.clone();
    config.poll_interval = Duration::from_secs_f64(cloud.poll_s);
    config.max_bytes_per_s = (cloud.max_kbit_s > 0).then_some(cloud.max_kbit_s * 1000 / 8);
    let mut uploader = Uploader::new(config, key)?;
    let mut store = Store::open_for_sync(&shared.config.storage.database)?;
    let status = uploader.status();
    *shared.sync.lock().unwrap_or_else(|p| p.into_inner()) = Some(status.clone());
    *shared.sync_stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(uploader.stop_flag());
    let wake = shared.sync_wake.clone();
    // Mirror the uploader's figures into the daemon's status once a second.
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let s = status.lock().unwrap_or_else(|p| p.into_inner()).clone();
                shared.update(|st| {
                    st.unsynced_rows = s.backlog_rows as i64;
                    st.last_sync = s
                        .last_success_ms
                        .map(|ms| polyvision_calibration::file::rfc3339_utc((ms / 1000) as u64));
                    st.sync_quarantined = s.batches_quarantined;
                    st.sync_error = s.last_error.clone();
                });
            }
        });
    }
    tracing::info!(%endpoint, serial = %shared.serial, "uploader started");
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = uploader.run(&mut store, wake).await {
            tracing::error!(error = %e, "the uploader stopped; rows stay in the buffer until the daemon restarts");
        }
    })))
}

/// Asks the uploader to stop after the request in flight.
pub fn stop(shared: &Shared) {
    if let Some(flag) = shared
        .sync_stop
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        flag.store(true, Ordering::Relaxed);
    }
    shared.sync_wake.notify_one();
}
