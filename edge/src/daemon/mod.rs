//! The long-running daemon (`polyvision-edge run`): one match at a time through the pipeline,
//! started and stopped from the local web page, MQTT, the command line, the config's schedule or
//! a client of the HTTP API; the SQLite buffer; the disk alarm; systemd readiness and watchdog; status for the
//! heartbeat and `/metrics`.
//!
//! Threads: the match runner owns the buffer and runs the pipeline (blocking); the disk monitor
//! and the watchdog are small threads; the web server and MQTT live on the tokio runtime. They
//! share [`Shared`].
//!
//! After a power cut, the match that was running is closed as interrupted when the buffer opens
//! (its rows are kept and synced); a new match starts only on a new command. Resuming would glue
//! two recordings with a gap into one match and make its metrics wrong.

pub mod disk;
pub mod mqtt;
pub mod schedule;
pub mod sync;
pub mod watchdog;
pub mod web;

use crate::calibration::ActiveCalibration;
use crate::capture::video::SourceSpec;
use crate::config::EdgeConfig;
use crate::detect::card::ModelCard;
use crate::detect::detector::{Detector, DetectorConfig};
use crate::pipeline::{CameraSync, PipelineCounters, PipelineParts, PitchMask};
use crate::store::{Store, uuid_text};
use polyvision_calibration::ViewGeometry;
use polyvision_cuda::{Backend, Preference, StitchPlan};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the rest of the daemon sees of the match runner and the machine.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// The running match's UUID.
    pub running_match: Option<String>,
    /// Rows stored and not yet acknowledged by the cloud.
    pub unsynced_rows: i64,
    /// Free space on the buffer's filesystem, MB.
    pub disk_free_mb: u64,
    /// Recording refused or stopped because the disk is nearly full.
    pub disk_alarm: bool,
    /// The last match's end, or why it failed.
    pub last_match: Option<String>,
    /// When the cloud last acknowledged a batch (UTC), if ever since the daemon started.
    pub last_sync: Option<String>,
    /// Batches the cloud refused for good (kept in the buffer; an alarm).
    pub sync_quarantined: u64,
    /// The uploader's last failure, while it lasts.
    pub sync_error: Option<String>,
}

/// A command to the match runner.
#[derive(Debug)]
pub enum Control {
    /// Start a match; the reply is its UUID or why not.
    Start(Sender<Result<String, String>>),
    /// Finish the running match and stop.
    Shutdown,
}

/// State shared by the daemon's parts.
pub struct Shared {
    /// The configuration.
    pub config: EdgeConfig,
    /// The rig's serial.
    pub serial: String,
    /// When the daemon started.
    pub started: Instant,
    /// The calibration the next match starts with.
    pub calibration: Arc<ActiveCalibration>,
    /// Counters of the current (or last) match's pipeline.
    counters: Mutex<Arc<PipelineCounters>>,
    status: Mutex<Status>,
    control: Mutex<Sender<Control>>,
    stop_current: Mutex<Option<Arc<AtomicBool>>>,
    /// Ticks of the runner's loop: proof of life while no match runs.
    pub runner_ticks: AtomicU64,
    /// Wakes the uploader ("sync now").
    pub sync_wake: Arc<tokio::sync::Notify>,
    /// Told each time a match has ended and its summary is stored (`run --exit-after-match`).
    pub match_ended: tokio::sync::Notify,
    /// Whether the last match ended badly: failed, a camera source failed, the disk filled or
    /// the buffer could not close it (`run --exit-after-match` then exits with an error).
    pub last_match_failed: AtomicBool,
    sync: Mutex<Option<Arc<Mutex<polyvision_cloud_sync::uploader::SyncStatus>>>>,
    sync_stop: Mutex<Option<Arc<AtomicBool>>>,
}

impl Shared {
    /// The status now.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The current pipeline's counters.
    pub fn counters(&self) -> Arc<PipelineCounters> {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wakes the uploader; says what it is doing.
    pub fn sync_now(&self) -> Result<String, String> {
        let Some(status) = self.sync.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return Err("no cloud endpoint is configured ([cloud] endpoint)".into());
        };
        self.sync_wake.notify_one();
        let s = status.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(format!(
            "sync started: {} rows waiting, last success {}",
            s.backlog_rows,
            s.last_success_ms.map_or("never".into(), |ms| {
                polyvision_calibration::file::rfc3339_utc((ms / 1000) as u64)
            })
        ))
    }

    /// Starts a match; waits for the runner's answer (the UUID, or why not).
    pub fn start_match(&self, origin: &str) -> Result<String, String> {
        let status = self.status();
        if let Some(uuid) = status.running_match {
            return Err(format!("match {uuid} is already running"));
        }
        if status.disk_alarm {
            return Err(format!(
                "the disk is nearly full ({} MB free, {} MB needed): not recording; synced rows are deleted after their retention period, unsynced rows never",
                status.disk_free_mb, self.config.storage.min_free_mb
            ));
        }
        let (tx, rx) = channel();
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Control::Start(tx))
            .map_err(|_| "the match runner has stopped".to_string())?;
        let answer = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the match runner did not answer".to_string())?;
        if let Ok(uuid) = &answer {
            tracing::info!(%uuid, origin, "match started");
        }
        answer
    }

    /// Stops the running match (its rows are flushed); returns its UUID.
    pub fn stop_match(&self, origin: &str) -> Result<String, String> {
        let uuid = self
            .status()
            .running_match
            .ok_or_else(|| "no match is running".to_string())?;
        if let Some(flag) = self
            .stop_current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            flag.store(true, Ordering::Relaxed);
        }
        tracing::info!(%uuid, origin, "match stop requested");
        Ok(uuid)
    }

    /// Stops recording because of the disk; the alarm stays until space is back.
    pub fn raise_disk_alarm(&self, free_mb: u64) {
        let was = self.status().disk_alarm;
        self.update(|s| {
            s.disk_alarm = true;
            s.disk_free_mb = free_mb;
        });
        if !was {
            tracing::error!(
                free_mb,
                needed_mb = self.config.storage.min_free_mb,
                "disk nearly full: recording stopped, no new match until space is freed; unsynced rows are kept"
            );
        }
        if let Some(flag) = self
            .stop_current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// Clears the disk alarm.
    pub fn clear_disk_alarm(&self, free_mb: u64) {
        let was = self.status().disk_alarm;
        self.update(|s| {
            s.disk_alarm = false;
            s.disk_free_mb = free_mb;
        });
        if was {
            tracing::info!(free_mb, "disk space back: matches can be recorded again");
        }
    }

    /// Asks the runner to finish and stop.
    pub fn shutdown(&self) {
        if let Some(flag) = self
            .stop_current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            flag.store(true, Ordering::Relaxed);
        }
        let _ = self
            .control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Control::Shutdown);
    }
}

/// Opens the buffer and starts the match runner; returns the shared state and the runner's
/// handle (it ends after [`Shared::shutdown`], the last match flushed).
pub fn start(
    config: EdgeConfig,
    calibration: Arc<ActiveCalibration>,
) -> anyhow::Result<(Arc<Shared>, std::thread::JoinHandle<()>)> {
    let mut store = Store::open(&config.storage.database)?;
    let (_, unsynced) = store.counts()?;
    let (tx, rx) = channel();
    let shared = Arc::new(Shared {
        serial: config.serial(),
        config,
        started: Instant::now(),
        calibration,
        counters: Mutex::new(Arc::new(PipelineCounters::default())),
        status: Mutex::new(Status {
            unsynced_rows: unsynced,
            ..Status::default()
        }),
        control: Mutex::new(tx),
        stop_current: Mutex::new(None),
        runner_ticks: AtomicU64::new(0),
        match_ended: tokio::sync::Notify::new(),
        last_match_failed: AtomicBool::new(false),
        sync_wake: Arc::default(),
        sync: Mutex::new(None),
        sync_stop: Mutex::new(None),
    });
    purge_expired(&shared, &mut store);
    let runner = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("match-runner".into())
            .spawn(move || run_matches(&shared, &mut store, rx))?
    };
    Ok((shared, runner))
}

/// Deletes acknowledged rows past their retention (never unsynced or quarantined ones).
fn purge_expired(shared: &Shared, store: &mut Store) {
    let retention_ms = (shared.config.storage.retention_days * 86_400_000.0) as i64;
    match store.purge(retention_ms) {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "acknowledged rows past retention deleted"),
        Err(e) => tracing::warn!(error = %e, "purging acknowledged rows failed"),
    }
}

fn run_matches(shared: &Arc<Shared>, store: &mut Store, rx: Receiver<Control>) {
    // Between matches the buffer is purged hourly, so a rig running for weeks stays small.
    let mut purged = Instant::now();
    loop {
        shared.runner_ticks.fetch_add(1, Ordering::Relaxed);
        if purged.elapsed() > Duration::from_secs(3600) {
            purge_expired(shared, store);
            purged = Instant::now();
        }
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Control::Start(reply)) => run_one(shared, store, reply),
            Ok(Control::Shutdown) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if let Err(e) = store.checkpoint() {
                    tracing::warn!(error = %e, "final checkpoint of the buffer failed");
                }
                return;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
}

/// The pipeline's parts for one match, from the config and the active calibration.
fn build_parts(shared: &Shared) -> Result<PipelineParts, String> {
    let config = &shared.config;
    let snapshot = shared.calibration.current();
    let loaded = snapshot.loaded.as_ref().ok_or_else(|| {
        format!(
            "no usable calibration ({}): calibrate the rig on the technician's page first",
            snapshot
                .last_error
                .clone()
                .unwrap_or_else(|| "not loaded".into())
        )
    })?;
    let table = loaded
        .table
        .clone()
        .ok_or("the calibration has no panorama yet: calibrate both cameras")?;
    let view = ViewGeometry::from_calibration(&loaded.file, None)?;
    let mut sources = Vec::new();
    for name in ["left", "right"] {
        let camera = config
            .capture
            .cameras()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c.clone())
            .ok_or_else(|| format!("capture.{name} is not configured"))?;
        sources.push(SourceSpec::parse(&camera.source.to_string_lossy())?);
    }
    let preference = match config.pipeline.stitch.as_str() {
        "cpu" => Preference::Cpu,
        "cuda" => Preference::Cuda,
        _ => Preference::Auto,
    };
    let pixels =
        Backend::select(preference, Some(config.detect.threads)).map_err(|e| e.to_string())?;
    let panorama_size = table.panorama_size;
    let stitcher = pixels
        .stitcher(StitchPlan::new(table).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let (_, card) = ModelCard::for_model(&config.detect.model)?;
    let backend = crate::detect::backend::load(&config.detect, &card)?;
    let detector = Detector::new(
        backend,
        pixels.preprocessor(),
        card,
        DetectorConfig {
            score_threshold: config.detect.threshold,
            tile_overlap: config.detect.tile_overlap,
            ..DetectorConfig::default()
        },
    );
    let [left, right]: [SourceSpec; 2] = sources
        .try_into()
        .map_err(|_| "two cameras are needed".to_string())?;
    Ok(PipelineParts {
        sources: [left, right],
        stitcher,
        panorama_size,
        detector,
        view,
        fps: config.pipeline.fps,
        pair_tolerance_ns: (config.pipeline.pair_tolerance_ms * 1e6) as u64,
        pixel_sigma: config.pipeline.pixel_sigma,
        tracker: config.tracking.tracker(),
        sync: CameraSync::for_rig(&loaded.file, config.pipeline.camera_offset_ms),
        pitch_mask: Some(PitchMask::new(
            &loaded.file.pitch,
            config.tracking.pitch_margin_m,
        )),
        right_gain: None,
    })
}

fn run_one(shared: &Arc<Shared>, store: &mut Store, reply: Sender<Result<String, String>>) {
    let parts = match build_parts(shared) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "match not started");
            let _ = reply.send(Err(e));
            return;
        }
    };
    let metadata = serde_json::json!({
        "serial": shared.serial,
        "calibration": shared.calibration.path().display().to_string(),
        "model": shared.config.detect.model.display().to_string(),
    });
    let info = match store.start_match(parts.fps, &metadata.to_string()) {
        Ok(i) => i,
        Err(e) => {
            let _ = reply.send(Err(format!("cannot start a match in the buffer: {e}")));
            return;
        }
    };
    let uuid = uuid_text(&info.uuid);
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(PipelineCounters::default());
    *shared
        .stop_current
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(stop.clone());
    *shared.counters.lock().unwrap_or_else(|p| p.into_inner()) = counters.clone();
    shared.update(|s| s.running_match = Some(uuid.clone()));
    let _ = reply.send(Ok(uuid.clone()));

    let mut outcome = crate::pipeline::run(parts, store, info.seq, stop, counters, None);
    *shared
        .stop_current
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = None;
    let stopped = store.stop_match();
    if let Ok(o) = outcome.as_mut() {
        // Moved, not copied: a full match is millions of points.
        save_summary(shared, store, &info, std::mem::take(&mut o.points));
    }
    let unsynced = store.counts().map(|c| c.1).ok();
    let failed = disk_full(&outcome, &stopped)
        || stopped.is_err()
        || outcome.as_ref().map_or(true, |o| o.source_error.is_some());
    shared.last_match_failed.store(failed, Ordering::Relaxed);
    let summary = if disk_full(&outcome, &stopped) {
        tracing::error!(%uuid, "match stopped: the disk is full; stored rows are kept");
        shared.raise_disk_alarm(disk::free_mb(&shared.config.storage.database).unwrap_or(0));
        format!("{uuid}: stopped, disk full")
    } else {
        match (&outcome, &stopped) {
            (Ok(o), Ok(_)) => {
                let ended = o
                    .source_error
                    .as_ref()
                    .map_or("stopped".to_string(), |e| format!("ended: {e}"));
                tracing::info!(
                    %uuid,
                    frames = o.frames,
                    rows = o.rows,
                    detections = o.detections,
                    unpaired = o.unpaired,
                    seconds = o.wall_s,
                    "match {ended}"
                );
                format!("{uuid}: {} frames, {} rows, {ended}", o.frames, o.rows)
            }
            (Err(e), _) => {
                tracing::error!(%uuid, error = %e, "match failed; stored rows are kept");
                format!("{uuid}: failed: {e}")
            }
            (Ok(_), Err(e)) => {
                tracing::error!(%uuid, error = %e, "closing the match in the buffer failed");
                format!("{uuid}: not closed: {e}")
            }
        }
    };
    shared.update(|s| {
        s.running_match = None;
        s.last_match = Some(summary);
        if let Some(n) = unsynced {
            s.unsynced_rows = n;
        }
    });
    shared.match_ended.notify_one();
}

/// Finishes the match (fragments linked, trajectories smoothed, metrics and teams) and keeps its
/// summary in the buffer for the uploader.
fn save_summary(
    shared: &Shared,
    store: &mut Store,
    info: &crate::store::MatchInfo,
    points: Vec<crate::track::tracker::TrackPoint>,
) {
    let started = std::time::Instant::now();
    let finished = crate::track::finish::finish(
        points,
        info.fps,
        &crate::track::metrics::MetricsConfig::default(),
    );
    let summary = finished.summary(
        &shared.serial,
        &uuid_text(&info.uuid),
        info.started_ms,
        info.fps,
    );
    match store.save_summary(info.seq, &summary) {
        Ok(()) => tracing::info!(
            match_id = %summary.match_id,
            players = summary.players.len(),
            seconds = started.elapsed().as_secs_f64(),
            "match summary kept for the cloud"
        ),
        Err(e) => tracing::error!(error = %e, "match summary not kept; the rows are"),
    }
}

fn disk_full(
    outcome: &Result<crate::pipeline::PipelineOutcome, String>,
    stopped: &Result<Option<crate::store::MatchInfo>, crate::store::StoreError>,
) -> bool {
    let full = |s: &str| s.contains("disk is full") || s.contains("database or disk is full");
    outcome.as_ref().err().is_some_and(|e| full(e))
        || stopped.as_ref().err().is_some_and(|e| full(&e.to_string()))
}
