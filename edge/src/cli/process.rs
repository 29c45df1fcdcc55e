//! `polyvision-edge process`: a user's own two-camera recording through the production
//! pipeline, with the rig's calibration; writes what the demo writes.

use super::detect::{DetectorArgs, REAL_MODEL};
use super::recording::{self, Recording};
use anyhow::{Result, bail};
use polyvision_edge::config::{EdgeConfig, TrackingConfig};
use std::path::PathBuf;

/// Arguments of `process`.
#[derive(clap::Args)]
pub(crate) struct ProcessArgs {
    /// The left camera's recording (any container and codec GStreamer decodes).
    #[arg(long)]
    pub(crate) left: PathBuf,
    /// The right camera's recording.
    #[arg(long)]
    pub(crate) right: PathBuf,
    /// The rig's calibration: both cameras and the panorama (`polyvision-calibrate solve
    /// --camera left|right --into`, then `panorama`).
    #[arg(long)]
    pub(crate) calibration: PathBuf,
    /// How far the left recording is ahead of the right, ms (left frame at t + offset shows
    /// the instant of right frame at t) [default: found from what moves where the views
    /// overlap].
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) offset_ms: Option<f64>,
    /// Frames per second [default: from the files' timestamps].
    #[arg(long)]
    pub(crate) fps: Option<f64>,
    /// The daemon's configuration, for its `[tracking]` section and
    /// `[pipeline] camera_offset_ms` [default: the embedded defaults].
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) detector: DetectorArgs,
    /// Output folder: buffer.db, tracks.txt, metrics.csv, preview.png, run.json.
    #[arg(long, default_value = "out/process")]
    pub(crate) out: PathBuf,
    /// Stop after this many panoramas (default: the whole recording).
    #[arg(long)]
    pub(crate) max_frames: Option<u64>,
    /// Stitching backend: auto (CUDA when present), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub(crate) stitch: String,
}

pub(crate) fn run(args: &ProcessArgs) -> Result<()> {
    for (flag, path) in [("--left", &args.left), ("--right", &args.right)] {
        if !path.is_file() {
            bail!("{flag} {}: no such file", path.display());
        }
    }
    if let Some(ms) = args.offset_ms
        && !(ms.is_finite() && ms.abs() <= 10_000.0)
    {
        bail!("--offset-ms must be within ±10000, got {ms}");
    }
    let (tracking, configured_offset_ms) = match &args.config {
        Some(p) => {
            let c = EdgeConfig::load(p)?;
            (c.tracking, c.pipeline.camera_offset_ms)
        }
        None => (TrackingConfig::default(), None),
    };
    recording::process(&Recording {
        files: [args.left.clone(), args.right.clone()],
        calibration: &args.calibration,
        offset_ms: args.offset_ms.or(configured_offset_ms),
        fps: args.fps,
        command: "process",
        detector: &args.detector,
        model: args.detector.model_or(REAL_MODEL),
        stitch: &args.stitch,
        max_frames: args.max_frames,
        tracker: tracking.tracker(),
        pitch_margin_m: tracking.pitch_margin_m,
        dir: &args.out,
    })
}
