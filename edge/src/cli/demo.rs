//! `polyvision-edge demo`: the whole pipeline on a rendered sample match with the CPU backends.
//!
//! Renders the match with the rig simulator (`rig-sim`, built beside this binary) unless it is
//! already there, then runs it as `process` runs a user's recording (see [`super::recording`])
//! with the rig's true calibration and the shipped model.

use super::detect::DetectorArgs;
use super::recording::{self, Recording};
use anyhow::{Context, Result, bail};
use polyvision_edge::config::DEFAULT_PITCH_MARGIN_M;
use polyvision_edge::track::tracker::TrackerConfig;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Arguments of `demo`.
#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub(crate) detector: DetectorArgs,
    /// Working folder: the rendered match, the buffer, tracks and metrics.
    #[arg(long, default_value = "out/demo")]
    pub(crate) dir: PathBuf,
    /// Seconds of match to render when none is there.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) seconds: f64,
    /// Stop after this many panoramas (default: the whole recording).
    #[arg(long)]
    pub(crate) max_frames: Option<u64>,
    /// Stitching backend: auto (CUDA when present), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub(crate) stitch: String,
}

/// The rig simulator beside this executable.
fn rig_sim() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let sim = exe.with_file_name("rig-sim");
    if !sim.is_file() {
        bail!(
            "the rig simulator is not at {} (build it with `cargo build --release -p rig-sim`)",
            sim.display()
        );
    }
    Ok(sim)
}

fn render_if_missing(dir: &Path, seconds: f64) -> Result<PathBuf> {
    let matchdir = dir.join("match");
    let ready = [
        "camera-left.mkv",
        "camera-right.mkv",
        "truth/calibration.json",
    ]
    .iter()
    .all(|f| matchdir.join(f).is_file());
    if ready {
        println!(
            "demo: using the match already rendered in {}",
            matchdir.display()
        );
        return Ok(matchdir);
    }
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 600.0) {
        bail!("--seconds must be within 0–600, got {seconds}");
    }
    let sim = rig_sim()?;
    println!(
        "demo: rendering {seconds} s of a match into {}",
        matchdir.display()
    );
    let status = Command::new(&sim)
        .args(["render", "--source", "auto", "--quiet", "--seconds"])
        .arg(seconds.to_string())
        .arg("--out")
        .arg(&matchdir)
        .status()
        .with_context(|| format!("running {}", sim.display()))?;
    if !status.success() {
        bail!("{} render failed ({status})", sim.display());
    }
    Ok(matchdir)
}

pub(crate) fn run_demo(args: &DemoArgs) -> Result<()> {
    let matchdir = render_if_missing(&args.dir, args.seconds)?;
    let cal_path = matchdir.join("truth/calibration.json");
    recording::process(&Recording {
        files: [
            matchdir.join("camera-left.mkv"),
            matchdir.join("camera-right.mkv"),
        ],
        calibration: &cal_path,
        offset_ms: None,
        fps: read_fps(&matchdir),
        command: "demo",
        detector: &args.detector,
        model: args.detector.model(),
        stitch: &args.stitch,
        max_frames: args.max_frames,
        tracker: TrackerConfig::default(),
        pitch_margin_m: DEFAULT_PITCH_MARGIN_M,
        dir: &args.dir,
    })?;
    println!(
        "  {}  the videos and the simulator's truth; score the tracks with\n  target/release/rig-sim score {} --tracks {} --metrics {}",
        matchdir.display(),
        matchdir.display(),
        args.dir.join("tracks.txt").display(),
        args.dir.join("metrics.csv").display()
    );
    Ok(())
}

/// Frames per second from the simulator's `summary.json`.
fn read_fps(matchdir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(matchdir.join("summary.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("fps")?.as_f64().filter(|f| *f > 0.0 && *f <= 240.0)
}
