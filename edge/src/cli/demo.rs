//! `polyvision-edge demo`: the whole pipeline on a rendered sample match with the CPU backends.
//!
//! Renders the match with the rig simulator (`rig-sim`, built beside this binary) unless it is
//! already there, stitches with the rig's true calibration, detects with the shipped model,
//! tracks, stores the rows in a fresh SQLite buffer, and prints what came out and where to look.

use super::detect::{DetectorArgs, build_detector};
use anyhow::{Context, Result, bail};
use polyvision_calibration::lut::StitchTable;
use polyvision_calibration::{CalibrationFile, ViewGeometry};
use polyvision_cuda::{Backend, Preference, StitchPlan};
use polyvision_edge::capture::video::SourceSpec;
use polyvision_edge::pipeline::{PipelineCounters, PipelineParts, run};
use polyvision_edge::store::{Store, uuid_text};
use polyvision_edge::track::finish::finish;
use polyvision_edge::track::metrics::{CSV_HEADER, MetricsConfig};
use polyvision_edge::track::mot::track_row;
use polyvision_edge::track::tracker::Class;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

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
    let started = Instant::now();
    let matchdir = render_if_missing(&args.dir, args.seconds)?;
    let cal_path = matchdir.join("truth/calibration.json");
    let cal = CalibrationFile::load(&cal_path)?;
    let view = ViewGeometry::from_calibration(&cal, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", cal_path.display()))?;
    let table = StitchTable::build(&cal, polyvision_calibration::lut::DEFAULT_BAND_PX)
        .with_context(|| format!("stitching table of {}", cal_path.display()))?;
    let panorama_size = table.panorama_size;
    let preference = match args.stitch.as_str() {
        "auto" => Preference::Auto,
        "cpu" => Preference::Cpu,
        "cuda" => Preference::Cuda,
        other => bail!("--stitch must be auto, cpu or cuda, got {other:?}"),
    };
    let pixels = Backend::select(preference, Some(args.detector.threads.max(1)))?;
    let stitcher = pixels.stitcher(StitchPlan::new(Arc::new(table))?)?;
    let (detector, card) = build_detector(&args.detector, args.detector.threshold, true)?;
    let fps = read_fps(&matchdir).unwrap_or(25.0);

    std::fs::create_dir_all(&args.dir)?;
    let db_path = args.dir.join("buffer.db");
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db_path.display()));
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    let mut store = Store::open(&db_path)?;
    let metadata = serde_json::json!({
        "source": "polyvision-edge demo",
        "footage": matchdir.display().to_string(),
        "model": args.detector.model.display().to_string(),
    });
    let info = store.start_match(fps, &metadata.to_string())?;
    println!(
        "demo: match {} — stitching on {}, detecting with {} ({}), buffer {}",
        uuid_text(&info.uuid),
        pixels.name(),
        detector.backend(),
        card.display(),
        db_path.display()
    );
    let parts = PipelineParts {
        sources: [
            SourceSpec::File {
                path: matchdir.join("camera-left.mkv"),
            },
            SourceSpec::File {
                path: matchdir.join("camera-right.mkv"),
            },
        ],
        stitcher,
        panorama_size,
        detector,
        view,
        fps,
        pair_tolerance_ns: (0.5e9 / fps) as u64,
        pixel_sigma: 2.0,
        tracker: polyvision_edge::track::tracker::TrackerConfig::default(),
    };
    let counters = Arc::new(PipelineCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut outcome = run(
        parts,
        &mut store,
        info.seq,
        stop,
        counters.clone(),
        args.max_frames,
    )
    .map_err(anyhow::Error::msg)?;
    store.stop_match()?;
    if let Some(e) = &outcome.source_error {
        bail!("a camera source failed: {e}");
    }

    let finished = finish(
        std::mem::take(&mut outcome.points),
        fps,
        &MetricsConfig::default(),
    );
    store.save_summary(
        info.seq,
        &finished.summary("demo", &uuid_text(&info.uuid), info.started_ms, fps),
    )?;
    let tracks_path = args.dir.join("tracks.txt");
    let metrics_path = args.dir.join("metrics.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tracks_path)?);
    for p in &finished.points {
        writeln!(f, "{}", track_row(p))?;
    }
    f.flush()?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(&metrics_path)?);
    writeln!(f, "{CSV_HEADER}")?;
    for r in &finished.metrics {
        let team = finished.teams.get(&r.id).map_or("unknown", |t| t.name());
        writeln!(f, "{}", r.csv(team))?;
    }
    f.flush()?;

    println!();
    println!(
        "demo: {} panoramas {}×{} in {:.1} s ({:.2} frames/s end to end), {} detections, {} unpaired camera frames",
        outcome.frames,
        panorama_size[0],
        panorama_size[1],
        outcome.wall_s,
        outcome.frames as f64 / outcome.wall_s.max(1e-9),
        outcome.detections,
        outcome.unpaired
    );
    println!(
        "{:<14} {:>7} {:>9} {:>10} {:>8}",
        "stage", "frames", "busy s", "frames/s", "dropped"
    );
    for s in &outcome.stages {
        println!(
            "{:<14} {:>7} {:>9.2} {:>10.1} {:>8}",
            s.name,
            s.frames,
            s.busy_s,
            s.fps(),
            s.dropped
        );
    }
    let people: Vec<_> = finished
        .metrics
        .iter()
        .filter(|m| m.class != Class::Ball && m.frames as f64 >= fps)
        .collect();
    println!();
    println!(
        "demo: {} tracks ({} people followed for at least 1 s), {} rows in the buffer",
        finished.metrics.len(),
        people.len(),
        outcome.rows
    );
    println!(
        "{:>5} {:<11} {:>8} {:>12} {:>11}",
        "track", "team", "seconds", "distance m", "top km/h"
    );
    let mut by_distance = people.clone();
    by_distance.sort_by(|a, b| b.distance_m.total_cmp(&a.distance_m));
    for m in by_distance.iter().take(30) {
        println!(
            "{:>5} {:<11} {:>8.1} {:>12.1} {:>11.1}",
            m.id,
            finished.teams.get(&m.id).map_or("unknown", |t| t.name()),
            m.frames as f64 / fps,
            m.distance_m,
            m.top_speed_mps * 3.6
        );
    }
    println!();
    println!(
        "demo: done in {:.0} s. Look next at:",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  {}  tracks (MOTChallenge, x y in pitch metres)",
        tracks_path.display()
    );
    println!("  {}  metrics per track", metrics_path.display());
    println!(
        "  {}  the SQLite buffer (sqlite3 {} 'select count(*) from positions')",
        db_path.display(),
        db_path.display()
    );
    println!(
        "  {}  the videos and the simulator's truth; score the tracks with\n  target/release/rig-sim score {} --tracks {} --metrics {}",
        matchdir.display(),
        matchdir.display(),
        tracks_path.display(),
        metrics_path.display()
    );
    Ok(())
}

/// Frames per second from the simulator's `summary.json`.
fn read_fps(matchdir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(matchdir.join("summary.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("fps")?.as_f64().filter(|f| *f > 0.0 && *f <= 240.0)
}
