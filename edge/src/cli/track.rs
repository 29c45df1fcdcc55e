//! `polyvision-edge track` and `bench-track`.

use anyhow::{Context, Result, bail};
use polyvision_calibration::{CalibrationFile, ViewGeometry};
use polyvision_edge::track::finish::{finish, place};
use polyvision_edge::track::metrics::{CSV_HEADER, MetricsConfig};
use polyvision_edge::track::mot::{read_detections, track_row};
use polyvision_edge::track::tracker::{Class, Detection, Tracker, TrackerConfig};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `track`.
#[derive(clap::Args)]
pub(crate) struct TrackArgs {
    /// Detections: `frame,id,left,top,width,height,conf[,class]` in pixels of the view.
    #[arg(long)]
    pub(crate) detections: PathBuf,
    /// Calibration file (`polyvision-calibrate` writes it).
    #[arg(long)]
    pub(crate) calibration: PathBuf,
    /// Frames per second of the footage.
    #[arg(long)]
    pub(crate) fps: f64,
    /// Tracks to write (MOTChallenge; x, y are pitch metres).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Per-track metrics to write (CSV).
    #[arg(long)]
    pub(crate) metrics: Option<PathBuf>,
    /// The ball's track to write (MOTChallenge); `--out` holds people only.
    #[arg(long)]
    pub(crate) ball_out: Option<PathBuf>,
    /// The view the detections are in: `panorama` or a camera name (default: the
    /// panorama, or the file's only camera).
    #[arg(long)]
    pub(crate) view: Option<String>,
    /// Detection noise, pixels (1σ), for the position uncertainty.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) pixel_sigma: f64,
    /// Acceleration noise of the people's motion model, m/s².
    #[arg(long, default_value_t = polyvision_edge::track::tracker::TrackerConfig::default().sigma_accel)]
    pub(crate) sigma_accel: f64,
    /// Acceleration noise of the smoother the metrics are computed from, m/s².
    #[arg(long, default_value_t = polyvision_edge::track::metrics::MetricsConfig::default().smoothing_sigma_accel)]
    pub(crate) smoothing_sigma_accel: f64,
}

pub(crate) fn run(args: &TrackArgs) -> Result<()> {
    if !(args.fps.is_finite() && args.fps > 0.0 && args.fps <= 1000.0) {
        bail!(
            "--fps must be a positive number up to 1000, got {}",
            args.fps
        );
    }
    if !(args.pixel_sigma.is_finite() && args.pixel_sigma > 0.0) {
        bail!(
            "--pixel-sigma must be a positive number, got {}",
            args.pixel_sigma
        );
    }
    let cal = CalibrationFile::load(&args.calibration)?;
    let view = ViewGeometry::from_calibration(&cal, args.view.as_deref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.calibration.display()))?;
    let frames = read_detections(&args.detections).map_err(anyhow::Error::msg)?;
    let last = frames.keys().next_back().copied().unwrap_or(0);
    if !(args.sigma_accel.is_finite() && args.sigma_accel > 0.0) {
        bail!(
            "--sigma-accel must be a positive number, got {}",
            args.sigma_accel
        );
    }
    let config = TrackerConfig {
        sigma_accel: args.sigma_accel,
        ..TrackerConfig::default()
    };
    let mut tracker = Tracker::new(config, args.fps);
    let to_image = |p: [f64; 2]| view.to_image(p);
    let (mut points, mut used, mut dropped) = (Vec::new(), 0usize, 0usize);
    let mut tracking = 0.0;
    let started = Instant::now();
    let empty = Vec::new();
    for frame in 1..=last {
        let raw = frames.get(&frame).unwrap_or(&empty);
        let dets: Vec<Detection> = raw
            .iter()
            .filter_map(|d| place(&view, d.bbox, d.conf, d.class, d.colour, args.pixel_sigma))
            .collect();
        used += dets.len();
        dropped += raw.len() - dets.len();
        let step = Instant::now();
        points.extend(tracker.step(frame, &dets, &to_image));
        tracking += step.elapsed().as_secs_f64();
    }
    let took = started.elapsed().as_secs_f64();
    let cfg = MetricsConfig {
        smoothing_sigma_accel: args.smoothing_sigma_accel,
        ..MetricsConfig::default()
    };
    let finished = finish(points, args.fps, &cfg);
    let points = &finished.points;
    let write = |path: &PathBuf, ball: bool| -> Result<()> {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for p in points.iter().filter(|p| (p.class == Class::Ball) == ball) {
            writeln!(out, "{}", track_row(p))?;
        }
        out.flush()?;
        Ok(())
    };
    write(&args.out, false)?;
    if let Some(path) = &args.ball_out {
        write(path, true)?;
    }
    let ids: std::collections::BTreeSet<u32> = points.iter().map(|p| p.id).collect();
    if let Some(path) = &args.metrics {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        writeln!(f, "{CSV_HEADER}")?;
        for r in &finished.metrics {
            let team = finished.teams.get(&r.id).map_or("unknown", |t| t.name());
            writeln!(f, "{}", r.csv(team))?;
        }
        f.flush()?;
    }
    eprintln!(
        "track: {last} frames, {used} detections ({dropped} off the pitch plane), {} tracks, {} rows → {} ({:.0} frames/s with the geometry, tracker alone {:.0} frames/s)",
        ids.len(),
        points.len(),
        args.out.display(),
        last as f64 / took.max(1e-9),
        last as f64 / tracking.max(1e-9)
    );
    Ok(())
}

/// Synthetic players running around a pitch; times the tracker alone.
pub(crate) fn bench(objects: usize, frames: u64) -> Result<()> {
    let fps = 25.0;
    let mut tracker = Tracker::new(TrackerConfig::default(), fps);
    let cov = [[0.01, 0.0], [0.0, 0.01]];
    let identity = |p: [f64; 2]| Some(p);
    let mut dets = Vec::with_capacity(objects);
    let started = Instant::now();
    let mut reported = 0usize;
    for f in 1..=frames {
        let t = f as f64 / fps;
        dets.clear();
        for k in 0..objects {
            // Each player on its own circle, 4–7 m/s.
            let (cx, cy) = (
                -45.0 + 90.0 * (k % 5) as f64 / 4.0,
                -28.0 + 56.0 * (k / 5) as f64 / 4.0,
            );
            let w = (4.0 + (k % 4) as f64) / 6.0;
            let phase = w * t + k as f64;
            let p = [cx + 6.0 * phase.cos(), cy + 6.0 * phase.sin()];
            dets.push(Detection {
                bbox: [p[0], p[1], 1.0, 2.0],
                conf: 0.9,
                class: Class::Player,
                pitch: p,
                cov,
                colour: None,
            });
        }
        reported += tracker.step(f, &dets, &identity).len();
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "bench": "track",
            "objects_per_frame": objects,
            "frames": frames,
            "frames_per_s": frames as f64 / took,
            "points_reported": reported,
            "threads": 1,
        })
    );
    Ok(())
}
