//! The daemon's configuration: TOML, merged over the embedded defaults, validated with errors
//! that name the field.

use polyvision_calibration::LensModel;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../edge.default.toml");

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Calibration settings.
    pub calibration: CalibrationConfig,
    /// Camera sources.
    #[serde(default)]
    pub capture: CaptureConfig,
    /// The technician's page.
    pub web: WebConfig,
    /// The rig's identity.
    pub device: DeviceConfig,
    /// The detector.
    pub detect: DetectConfig,
    /// The pipeline's settings.
    pub pipeline: PipelineConfig,
    /// The tracker's thresholds.
    #[serde(default)]
    pub tracking: TrackingConfig,
    /// The SQLite buffer.
    pub storage: StorageConfig,
    /// MQTT.
    pub mqtt: MqttConfig,
    /// The cloud the buffer syncs to.
    pub cloud: CloudConfig,
    /// Matches recorded at fixed times.
    #[serde(default)]
    pub schedule: Vec<ScheduledMatch>,
}

/// `[[schedule]]`: one match at a fixed time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledMatch {
    /// Start, UTC: `2026-12-06T14:00:00Z`.
    pub start: String,
    /// Length, minutes.
    pub minutes: f64,
}

/// `[device]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Serial number; empty: the hostname.
    pub serial: String,
}

/// `[detect]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    /// The ONNX model (its card beside it).
    pub model: PathBuf,
    /// Lowest score.
    pub threshold: f32,
    /// Overlap of neighbouring tiles, pixels.
    pub tile_overlap: u32,
    /// CPU threads.
    pub threads: usize,
    /// Tiles per inference run.
    pub batch: usize,
    /// `auto`, `tract` or `tensorrt`.
    pub backend: String,
    /// TensorRT engine precision: `fp16`, `fp32` or `int8`.
    pub precision: String,
    /// Folder of built TensorRT engines.
    pub engine_cache: PathBuf,
    /// INT8 calibration cache (for `precision = "int8"`).
    #[serde(default)]
    pub calibration_cache: Option<PathBuf>,
}

/// `[pipeline]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// `auto`, `cpu` or `cuda`.
    pub stitch: String,
    /// Largest L/R capture-time difference in a pair, ms.
    pub pair_tolerance_ms: f64,
    /// Detection noise, pixels.
    pub pixel_sigma: f64,
    /// Camera frame rate.
    pub fps: f64,
    /// How far the left camera's clock is ahead of the right's, ms (left frame at `t + offset`
    /// shows the instant of right frame at `t`). Absent: found from the cameras' overlap while
    /// the match runs, and kept checked; set, it is applied as is and only checked.
    #[serde(default)]
    pub camera_offset_ms: Option<f64>,
}

/// `[tracking]`: when detections start, extend and confirm tracks (scores are the detector's,
/// 0–1). A real pitch's detector is less sure than the rendered one's, so these are settings.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// A detection at least this confident may start a new track.
    pub start_score: f64,
    /// Detections at least this confident are matched first; weaker ones only extend tracks.
    pub match_score: f64,
    /// Detections below this are ignored.
    pub min_score: f64,
    /// Matches in a row that confirm a new track.
    pub confirm_frames: u32,
    /// Seconds a lost track is kept before it is dropped.
    pub max_lost_s: f64,
    /// Detections placed farther than this outside the touchlines and goal lines are left out
    /// before tracking (stands, fences, trees), metres; the margin keeps the assistant referees.
    pub pitch_margin_m: f64,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        let t = crate::track::tracker::TrackerConfig::default();
        TrackingConfig {
            start_score: t.new_track_conf,
            match_score: t.high_conf,
            min_score: t.low_conf,
            confirm_frames: t.confirm_hits,
            max_lost_s: t.max_lost_s,
            pitch_margin_m: DEFAULT_PITCH_MARGIN_M,
        }
    }
}

/// Default of `[tracking] pitch_margin_m`: an assistant referee runs within 2 m of the line.
pub const DEFAULT_PITCH_MARGIN_M: f64 = 3.0;

impl TrackingConfig {
    /// The tracker's parameters: these thresholds, the rest at their defaults.
    pub fn tracker(&self) -> crate::track::tracker::TrackerConfig {
        crate::track::tracker::TrackerConfig {
            new_track_conf: self.start_score,
            high_conf: self.match_score,
            low_conf: self.min_score,
            confirm_hits: self.confirm_frames,
            max_lost_s: self.max_lost_s,
            ..crate::track::tracker::TrackerConfig::default()
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// The SQLite file.
    pub database: PathBuf,
    /// Free space below which nothing is recorded, MB.
    pub min_free_mb: u64,
    /// Days acknowledged rows are kept.
    pub retention_days: f64,
}

/// `[cloud]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    /// Base URL of the cloud service; empty: no sync.
    pub endpoint: String,
    /// The device's Ed25519 key (created on first start, mode 0600).
    pub key_file: PathBuf,
    /// Extra CA certificate (PEM) to trust.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Most rows per batch.
    pub batch_rows: usize,
    /// Bandwidth cap, kbit/s; 0: none.
    pub max_kbit_s: u64,
    /// Seconds between looks at a drained buffer.
    pub poll_s: f64,
}

/// `[mqtt]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host; empty: no MQTT.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// First topic level.
    pub topic_prefix: String,
    /// Seconds between heartbeats.
    pub heartbeat_s: f64,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// CA certificate (PEM); turns TLS on.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl EdgeConfig {
    /// The schedule's windows, in start order (valid after loading).
    pub fn schedule_windows(&self) -> Vec<crate::daemon::schedule::Window> {
        let mut w: Vec<_> = self
            .schedule
            .iter()
            .filter_map(|m| {
                let start_s = polyvision_calibration::file::parse_rfc3339_utc(&m.start)?;
                Some(crate::daemon::schedule::Window {
                    start_s,
                    end_s: start_s + (m.minutes * 60.0).round() as u64,
                })
            })
            .collect();
        w.sort_by_key(|w| w.start_s);
        w
    }

    /// The rig's serial: configured, or the hostname.
    pub fn serial(&self) -> String {
        if !self.device.serial.trim().is_empty() {
            return self.device.serial.trim().to_string();
        }
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "polyvision-rig".into())
    }
}

/// `[calibration]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationConfig {
    /// The calibration file.
    pub file: PathBuf,
    /// Width of a newly planned panorama, pixels.
    pub panorama_width: u32,
    /// Blend band across the seam, pixels.
    pub band_px: u32,
}

/// `[capture]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    /// Camera L.
    pub left: Option<SourceConfig>,
    /// Camera R.
    pub right: Option<SourceConfig>,
}

impl CaptureConfig {
    /// The configured cameras with their names, L first.
    pub fn cameras(&self) -> Vec<(&'static str, &SourceConfig)> {
        [("left", &self.left), ("right", &self.right)]
            .into_iter()
            .filter_map(|(name, s)| s.as_ref().map(|s| (name, s)))
            .collect()
    }
}

/// One camera source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A video file or a PNG, or a live source (`rtsp://…`, `/dev/videoN`, `csi:…`, `test:…`).
    pub source: PathBuf,
    /// The frame the calibration page shows (0-based).
    #[serde(default)]
    pub still_frame: u64,
    /// The camera's lens, until the calibration file holds one.
    #[serde(default)]
    pub lens: Option<LensModel>,
}

/// `[web]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Listen address.
    pub listen: String,
    /// The technician's PIN.
    #[serde(default)]
    pub technician_pin: Option<String>,
    /// A file holding the PIN.
    #[serde(default)]
    pub technician_pin_file: Option<PathBuf>,
}

/// A configuration that cannot be used; names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not TOML, or a field of the wrong type or unknown.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the field and line).
        message: String,
    },
    /// A value out of range.
    #[error("{path}: field `{field}`: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

impl EdgeConfig {
    /// Reads `path` over the defaults; relative paths become relative to the file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        // Absolute, so that logs and the page show where the files really are.
        let base = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml(&text, path, &base)
    }

    /// Parses a document over the defaults.
    pub fn from_toml(text: &str, origin: &Path, base: &Path) -> Result<Self, ConfigError> {
        let parse = |t: &str| -> Result<toml::Table, ConfigError> {
            t.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
                path: origin.to_owned(),
                message: e.to_string(),
            })
        };
        let mut merged = parse(DEFAULT_CONFIG)?;
        merge(&mut merged, parse(text)?);
        let mut config: EdgeConfig =
            merged
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: origin.to_owned(),
                    message: e.to_string(),
                })?;
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut config.calibration.file);
        resolve(&mut config.detect.model);
        resolve(&mut config.detect.engine_cache);
        if let Some(f) = config.detect.calibration_cache.as_mut() {
            resolve(f);
        }
        resolve(&mut config.storage.database);
        resolve(&mut config.cloud.key_file);
        if let Some(f) = config.cloud.ca_file.as_mut() {
            resolve(f);
        }
        for f in [&mut config.mqtt.password_file, &mut config.mqtt.ca_file]
            .into_iter()
            .flatten()
        {
            resolve(f);
        }
        if let Some(f) = config.web.technician_pin_file.as_mut() {
            resolve(f);
        }
        for s in [&mut config.capture.left, &mut config.capture.right]
            .into_iter()
            .flatten()
        {
            // Live sources are addresses, not files.
            if matches!(
                crate::capture::video::SourceSpec::parse(&s.source.to_string_lossy()),
                Ok(crate::capture::video::SourceSpec::File { .. })
            ) {
                resolve(&mut s.source);
            }
        }
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let bad = |field: &str, problem: String| ConfigError::Invalid {
            path: origin.to_owned(),
            field: field.into(),
            problem,
        };
        if !(320..=16384).contains(&self.calibration.panorama_width) {
            return Err(bad(
                "calibration.panorama_width",
                format!("{} is outside 320–16384", self.calibration.panorama_width),
            ));
        }
        if self.calibration.band_px > 512 {
            return Err(bad(
                "calibration.band_px",
                format!("{} is more than 512", self.calibration.band_px),
            ));
        }
        for (name, camera) in self.capture.cameras() {
            crate::capture::video::SourceSpec::parse(&camera.source.to_string_lossy())
                .map_err(|e| bad(&format!("capture.{name}.source"), e))?;
        }
        if !(0.0..=1.0).contains(&self.detect.threshold) {
            return Err(bad(
                "detect.threshold",
                format!("{} is outside 0–1", self.detect.threshold),
            ));
        }
        if !["auto", "tract", "tensorrt"].contains(&self.detect.backend.as_str()) {
            return Err(bad(
                "detect.backend",
                format!("{:?}: auto, tract or tensorrt", self.detect.backend),
            ));
        }
        if self.detect.backend == "tensorrt" && !cfg!(feature = "tensorrt") {
            return Err(bad(
                "detect.backend",
                "tensorrt: this build has no TensorRT (cargo feature tensorrt); use auto or tract"
                    .into(),
            ));
        }
        let precision = polyvision_cuda::tensorrt::cache::Precision::parse(&self.detect.precision)
            .map_err(|e| bad("detect.precision", e))?;
        if precision == polyvision_cuda::tensorrt::cache::Precision::Int8
            && self.detect.calibration_cache.is_none()
        {
            return Err(bad(
                "detect.calibration_cache",
                "precision int8 needs a calibration cache".into(),
            ));
        }
        if !(1..=64).contains(&self.detect.threads) || !(1..=64).contains(&self.detect.batch) {
            return Err(bad(
                "detect.threads",
                format!(
                    "threads {} and batch {} must be within 1–64",
                    self.detect.threads, self.detect.batch
                ),
            ));
        }
        if !["auto", "cpu", "cuda"].contains(&self.pipeline.stitch.as_str()) {
            return Err(bad(
                "pipeline.stitch",
                format!("{:?} is not auto, cpu or cuda", self.pipeline.stitch),
            ));
        }
        let t = &self.tracking;
        for (field, v) in [
            ("tracking.start_score", t.start_score),
            ("tracking.match_score", t.match_score),
            ("tracking.min_score", t.min_score),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(field, format!("{v} is outside 0–1")));
            }
        }
        if t.min_score > t.match_score || t.min_score > t.start_score {
            return Err(bad(
                "tracking.min_score",
                format!(
                    "{} is above match_score {} or start_score {}: no detection could reach a track",
                    t.min_score, t.match_score, t.start_score
                ),
            ));
        }
        if !(1..=100).contains(&t.confirm_frames) {
            return Err(bad(
                "tracking.confirm_frames",
                format!("{} is outside 1–100", t.confirm_frames),
            ));
        }
        if !(t.max_lost_s > 0.0 && t.max_lost_s <= 60.0) {
            return Err(bad(
                "tracking.max_lost_s",
                format!("{} is outside 0–60 s", t.max_lost_s),
            ));
        }
        if !(t.pitch_margin_m >= 0.0 && t.pitch_margin_m <= 50.0) {
            return Err(bad(
                "tracking.pitch_margin_m",
                format!("{} is outside 0–50 m", t.pitch_margin_m),
            ));
        }
        if let Some(ms) = self.pipeline.camera_offset_ms
            && !(ms.is_finite() && ms.abs() <= 10_000.0)
        {
            return Err(bad(
                "pipeline.camera_offset_ms",
                format!("{ms} is outside ±10000 ms"),
            ));
        }
        if !(self.pipeline.fps > 0.0 && self.pipeline.fps <= 240.0) {
            return Err(bad(
                "pipeline.fps",
                format!("{} is outside 0–240", self.pipeline.fps),
            ));
        }
        if !(self.pipeline.pair_tolerance_ms > 0.0 && self.pipeline.pair_tolerance_ms <= 1000.0) {
            return Err(bad(
                "pipeline.pair_tolerance_ms",
                format!("{} is outside 0–1000", self.pipeline.pair_tolerance_ms),
            ));
        }
        if !(self.pipeline.pixel_sigma > 0.0 && self.pipeline.pixel_sigma <= 50.0) {
            return Err(bad(
                "pipeline.pixel_sigma",
                format!("{} is outside 0–50", self.pipeline.pixel_sigma),
            ));
        }
        if !(self.storage.retention_days >= 0.0 && self.storage.retention_days <= 3650.0) {
            return Err(bad(
                "storage.retention_days",
                format!("{} is outside 0–3650", self.storage.retention_days),
            ));
        }
        let endpoint = self.cloud.endpoint.trim();
        if !endpoint.is_empty()
            && !endpoint.starts_with("https://")
            && !endpoint.starts_with("http://")
        {
            return Err(bad(
                "cloud.endpoint",
                format!("{endpoint:?} must start with https:// (http:// only for a local test)"),
            ));
        }
        if !(1..=polyvision_cloud_sync::wire::MAX_ROWS as usize).contains(&self.cloud.batch_rows) {
            return Err(bad(
                "cloud.batch_rows",
                format!(
                    "{} is outside 1–{}",
                    self.cloud.batch_rows,
                    polyvision_cloud_sync::wire::MAX_ROWS
                ),
            ));
        }
        if !(self.cloud.poll_s >= 0.1 && self.cloud.poll_s <= 3600.0) {
            return Err(bad(
                "cloud.poll_s",
                format!("{} is outside 0.1–3600", self.cloud.poll_s),
            ));
        }
        if !(self.mqtt.heartbeat_s >= 1.0 && self.mqtt.heartbeat_s <= 3600.0) {
            return Err(bad(
                "mqtt.heartbeat_s",
                format!("{} is outside 1–3600", self.mqtt.heartbeat_s),
            ));
        }
        if self.mqtt.topic_prefix.is_empty() || self.mqtt.topic_prefix.contains(['#', '+', ' ']) {
            return Err(bad(
                "mqtt.topic_prefix",
                format!(
                    "{:?} must be non-empty without #, + or spaces",
                    self.mqtt.topic_prefix
                ),
            ));
        }
        for (i, m) in self.schedule.iter().enumerate() {
            if polyvision_calibration::file::parse_rfc3339_utc(&m.start).is_none() {
                return Err(bad(
                    &format!("schedule[{i}].start"),
                    format!("{:?} is not a UTC time like 2026-12-06T14:00:00Z", m.start),
                ));
            }
            if !(m.minutes >= 1.0 && m.minutes <= 600.0) {
                return Err(bad(
                    &format!("schedule[{i}].minutes"),
                    format!("{} is outside 1–600", m.minutes),
                ));
            }
        }
        for pair in self.schedule_windows().windows(2) {
            if pair[1].start_s < pair[0].end_s {
                return Err(bad(
                    "schedule",
                    format!(
                        "the match at {} starts before the one at {} ends",
                        polyvision_calibration::file::rfc3339_utc(pair[1].start_s),
                        polyvision_calibration::file::rfc3339_utc(pair[0].start_s)
                    ),
                ));
            }
        }
        if self.web.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "web.listen",
                format!(
                    "\"{}\" is not an address like 0.0.0.0:8080",
                    self.web.listen
                ),
            ));
        }
        match (&self.web.technician_pin, &self.web.technician_pin_file) {
            (None, None) => {
                return Err(bad(
                    "web.technician_pin",
                    "set technician_pin or technician_pin_file; the calibration page is never left open".into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(bad(
                    "web.technician_pin_file",
                    "give technician_pin or technician_pin_file, not both".into(),
                ));
            }
            _ => {}
        }
        if let Some(pin) = &self.web.technician_pin
            && pin.trim().chars().count() < 6
        {
            return Err(bad(
                "web.technician_pin",
                "must have at least 6 characters".into(),
            ));
        }
        Ok(())
    }

    /// The technician's PIN, read from the file when configured that way.
    pub fn technician_pin(&self) -> Result<String, ConfigError> {
        match (&self.web.technician_pin, &self.web.technician_pin_file) {
            (Some(pin), _) => Ok(pin.trim().to_string()),
            (None, Some(file)) => {
                let pin = std::fs::read_to_string(file)
                    .map_err(|source| ConfigError::Io {
                        path: file.clone(),
                        source,
                    })?
                    .trim()
                    .to_string();
                if pin.chars().count() < 6 {
                    return Err(ConfigError::Invalid {
                        path: file.clone(),
                        field: "web.technician_pin_file".into(),
                        problem: "the PIN in it must have at least 6 characters".into(),
                    });
                }
                Ok(pin)
            }
            (None, None) => Err(ConfigError::Invalid {
                path: PathBuf::from("<config>"),
                field: "web.technician_pin".into(),
                problem: "not set".into(),
            }),
        }
    }
}

/// Overlays `over` onto `base`, table by table.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EdgeConfig, ConfigError> {
        EdgeConfig::from_toml(text, Path::new("edge.toml"), Path::new("/etc/pv"))
    }

    #[test]
    fn defaults_fill_in_and_paths_resolve() {
        let c = parse("[web]\ntechnician_pin = \"482913\"\n[capture.left]\nsource = \"l.mkv\"\n")
            .expect("valid");
        assert_eq!(c.calibration.file, Path::new("/etc/pv/calibration.json"));
        assert_eq!(c.calibration.panorama_width, 3840);
        assert_eq!(c.capture.cameras().len(), 1);
        assert_eq!(c.capture.cameras()[0].1.source, Path::new("/etc/pv/l.mkv"));
        assert_eq!(c.technician_pin().expect("pin"), "482913");
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse("").unwrap_err().to_string();
        assert!(err.contains("web.technician_pin"), "{err}");
        let err = parse("[web]\ntechnician_pin = \"12\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 6"), "{err}");
        let err = parse("[web]\ntechnician_pin = \"123456\"\nlisten = \"nowhere\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("web.listen"), "{err}");
        let pin = "[web]\ntechnician_pin = \"123456\"\n";
        let err = parse(&format!(
            "{pin}[[schedule]]\nstart = \"2026-12-06T14:00:00Z\"\nminutes = 100\n\
             [[schedule]]\nstart = \"2026-12-06T15:00:00Z\"\nminutes = 90\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("starts before"), "{err}");
        let err = parse(&format!(
            "{pin}[[schedule]]\nstart = \"6 Dec 2pm\"\nminutes = 90\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("schedule[0].start"), "{err}");
        let err = parse("[web]\ntechnician_pin = \"123456\"\n[calibration]\nfiel = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fiel"), "{err}");
        for (detect, field) in [
            ("backend = \"onnxruntime\"", "detect.backend"),
            ("precision = \"fp8\"", "detect.precision"),
            ("precision = \"int8\"", "detect.calibration_cache"),
        ] {
            let err = parse(&format!("{pin}[detect]\n{detect}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{detect}: {err}");
        }
        let tensorrt = parse(&format!("{pin}[detect]\nbackend = \"tensorrt\"\n"));
        assert_eq!(
            tensorrt.is_ok(),
            cfg!(feature = "tensorrt"),
            "tensorrt only where the build has it: {tensorrt:?}"
        );
    }

    #[test]
    fn tracking_thresholds_are_settings_and_checked() {
        let pin = "[web]\ntechnician_pin = \"123456\"\n";
        let c = parse(pin).expect("valid");
        assert_eq!(c.tracking, TrackingConfig::default());
        assert_eq!(
            c.tracking.tracker(),
            crate::track::tracker::TrackerConfig::default(),
            "the embedded file's values are the tracker's defaults"
        );
        let c = parse(&format!("{pin}[tracking]\nstart_score = 0.35\n")).expect("valid");
        assert_eq!(c.tracking.tracker().new_track_conf, 0.35);
        for (line, field) in [
            ("start_score = 1.5", "tracking.start_score"),
            ("min_score = 0.7", "tracking.min_score"),
            ("confirm_frames = 0", "tracking.confirm_frames"),
            ("max_lost_s = -1.0", "tracking.max_lost_s"),
            ("pitch_margin_m = -1.0", "tracking.pitch_margin_m"),
            ("pitch_margin_m = nan", "tracking.pitch_margin_m"),
            ("start = 0.5", "start"),
        ] {
            let err = parse(&format!("{pin}[tracking]\n{line}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{line}: {err}");
        }
    }

    #[test]
    fn a_camera_offset_is_optional_and_bounded() {
        let pin = "[web]\ntechnician_pin = \"482913\"\n";
        let c = parse(pin).expect("valid");
        assert_eq!(c.pipeline.camera_offset_ms, None);
        assert_eq!(c.tracking.pitch_margin_m, DEFAULT_PITCH_MARGIN_M);
        let c = parse(&format!("{pin}[pipeline]\ncamera_offset_ms = -160\n")).expect("valid");
        assert_eq!(c.pipeline.camera_offset_ms, Some(-160.0));
        for value in ["1e300", "nan", "\"auto\""] {
            let err = parse(&format!("{pin}[pipeline]\ncamera_offset_ms = {value}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("camera_offset_ms"), "{value}: {err}");
        }
    }

    #[test]
    fn the_embedded_defaults_parse() {
        let table: toml::Table = DEFAULT_CONFIG.parse().expect("toml");
        assert!(table.contains_key("calibration") && table.contains_key("web"));
    }
}
