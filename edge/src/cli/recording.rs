//! A two-camera recording through the production pipeline: what `demo` (on a rendered match)
//! and `process` (on a user's own files) share.
//!
//! The cameras' time offset is found from the first seconds of the files (unless given), the
//! pipeline runs with the pitch mask and the sync check, and the run leaves in its folder
//! `buffer.db` (the SQLite buffer the daemon syncs from), `tracks.txt` (MOTChallenge, pitch
//! metres), `metrics.csv` (per track), `preview.png` (the last panorama with the pitch lines and
//! the tracks drawn) and `run.json` (the figures printed, for scripts).

use super::detect::{DetectorArgs, build_detector};
use anyhow::{Context, Result, bail};
use polyvision_calibration::lut::StitchTable;
use polyvision_calibration::overlay::pitch_overlay;
use polyvision_calibration::sync::{OverlapSampler, SyncEstimate, SyncOptions, SyncRecorder};
use polyvision_calibration::{CalibrationFile, ViewGeometry};
use polyvision_cuda::{Backend, Preference, StitchPlan};
use polyvision_edge::capture::video::{Read, SourceSpec, VideoSource};
use polyvision_edge::pipeline::{
    CameraSync, LastPanorama, PipelineCounters, PipelineParts, PitchMask, run,
};
use polyvision_edge::store::{Store, uuid_text};
use polyvision_edge::track::finish::{FinishedMatch, finish};
use polyvision_edge::track::metrics::{CSV_HEADER, MetricsConfig};
use polyvision_edge::track::mot::track_row;
use polyvision_edge::track::teams::Team;
use polyvision_edge::track::tracker::{Class, TrackerConfig};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Seconds of each file read to find the cameras' offset before the run.
pub(crate) const SYNC_PREVIEW_S: f64 = 8.0;

/// What to run.
pub(crate) struct Recording<'a> {
    /// Left and right camera files.
    pub(crate) files: [PathBuf; 2],
    /// The rig's calibration (both cameras and the panorama).
    pub(crate) calibration: &'a Path,
    /// The left camera's lead over the right, ms; `None` finds it.
    pub(crate) offset_ms: Option<f64>,
    /// Frames per second; `None` takes it from the files.
    pub(crate) fps: Option<f64>,
    /// `demo` or `process`: the name in the buffer's metadata and in the messages.
    pub(crate) command: &'static str,
    /// The detector.
    pub(crate) detector: &'a DetectorArgs,
    /// The model file when it is not the rendered default.
    pub(crate) model: PathBuf,
    /// Stitching backend: auto, cpu or cuda.
    pub(crate) stitch: &'a str,
    /// Stop after this many panoramas.
    pub(crate) max_frames: Option<u64>,
    /// The tracker's thresholds.
    pub(crate) tracker: TrackerConfig,
    /// Detections farther off the pitch than this are left out, metres.
    pub(crate) pitch_margin_m: f64,
    /// Output folder.
    pub(crate) dir: &'a Path,
}

/// The figures of a run, as `run.json` keeps them.
#[derive(serde::Serialize)]
struct RunFigures {
    panoramas: u64,
    panorama_size: [u32; 2],
    wall_s: f64,
    detections: u64,
    off_pitch_detections: u64,
    unpaired_frames: u64,
    fps: f64,
    /// What the files' first seconds gave, before the run.
    sync_found: Option<SyncEstimate>,
    /// Gain (R, G, B) applied to the right camera.
    right_gain: Option<[f64; 3]>,
    /// The cameras' disagreement over the overlap in the first seconds.
    seam_difference: Option<SeamDifference>,
    /// The offset pairing ended with, ms.
    camera_offset_ms: f64,
    sync_checks: Vec<polyvision_edge::pipeline::SyncCheck>,
    tracks: usize,
    people_followed_1s: usize,
    rows: u64,
}

/// What the files' first seconds show: the frame rate, the offset when it is clear, the
/// colour match, and how much the cameras disagree over their overlap.
pub(crate) struct Preview {
    /// Frames per second, from the files' timestamps.
    pub(crate) fps: f64,
    /// The correlation's verdict, or why there is none.
    pub(crate) sync: Result<SyncEstimate, String>,
    /// The offset found as capture time, ns: left frame at `t + offset_ns` shows the instant of
    /// right frame at `t`.
    pub(crate) offset_ns: Option<i64>,
    /// Per-channel gain that matches the right camera's colour to the left's.
    pub(crate) right_gain: Option<[f64; 3]>,
    /// The recorder, for [`SyncRecorder::overlap_difference`].
    recorder: Option<SyncRecorder>,
}

/// How much the two cameras disagree over their overlap in the first seconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct SeamDifference {
    /// Motion per cell, left against right (grey levels per frame; what shows as ghosts):
    /// `[as recorded, after the offset]`.
    pub(crate) motion_mismatch: [f64; 2],
    /// Grey level at the same pitch points (0–255; the colour step across the seam):
    /// `[after the offset, with the colour matched too]`.
    pub(crate) grey_difference: [f64; 2],
}

impl Preview {
    fn seam(&self, offset_frames: f64) -> Option<SeamDifference> {
        let r = self.recorder.as_ref()?;
        let k = offset_frames.round() as i64;
        Some(SeamDifference {
            motion_mismatch: [r.motion_mismatch(0)?, r.motion_mismatch(k)?],
            grey_difference: [
                r.overlap_difference(k, [1.0; 3])?,
                r.overlap_difference(k, self.right_gain.unwrap_or([1.0; 3]))?,
            ],
        })
    }
}

/// Reads up to `seconds` of both files: their frame rate, and the cameras' offset from what
/// moves where they overlap.
pub(crate) fn preview(
    files: &[PathBuf; 2],
    cal: &CalibrationFile,
    seconds: f64,
) -> Result<Preview> {
    let mut recorder =
        OverlapSampler::new(cal, &SyncOptions::default()).map(SyncRecorder::keeping_colour);
    // Capture times of every frame read, per camera.
    let mut times: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    // A file whose frames carry no times would never reach `seconds`: a cap on frames too.
    let most = (seconds * 240.0).ceil() as usize;
    for (camera, path) in files.iter().enumerate() {
        let mut source = VideoSource::open(&SourceSpec::File { path: path.clone() })?;
        while let Read::Frame(f) = source.read(Duration::from_secs(30))? {
            let first = *times[camera].first().unwrap_or(&f.pts_ns);
            times[camera].push(f.pts_ns);
            if let Ok(r) = recorder.as_mut() {
                let frame = polyvision_calibration::seam::Frame {
                    size: [f.frame.width, f.frame.height],
                    rgba: &f.frame.rgba,
                };
                r.push(camera, &frame)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
            if f.pts_ns.saturating_sub(first) as f64 * 1e-9 >= seconds
                || times[camera].len() >= most
            {
                break;
            }
        }
        if times[camera].len() < 2 {
            bail!("{}: fewer than two frames", path.display());
        }
    }
    let interval_ns = |t: &[u64]| -> Option<f64> {
        let span = t.last()?.saturating_sub(*t.first()?) as f64;
        (span > 0.0).then(|| span / (t.len() - 1) as f64)
    };
    let fps = times
        .iter()
        .find_map(|t| interval_ns(t))
        .map_or(25.0, |i| 1e9 / i);
    let sync = recorder
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|r| r.estimate((0.5 * fps).round().max(3.0) as usize));
    // The offset in capture time: what the frames found k apart carry as times (the files
    // need not start at the same time), and the fraction of a frame on top.
    let offset_ns = sync.as_ref().ok().and_then(|e| {
        let k = e.offset_frames.round() as i64;
        let gaps: Vec<i64> = (0..times[1].len())
            .filter_map(|n| {
                let l = *times[0].get(usize::try_from(n as i64 + k).ok()?)?;
                Some(
                    (l as i128 - times[1][n] as i128).clamp(i64::MIN as i128, i64::MAX as i128)
                        as i64,
                )
            })
            .collect();
        let mut sorted = gaps;
        sorted.sort_unstable();
        let middle = *sorted.get(sorted.len() / 2)?;
        let fraction = (e.offset_frames - k as f64) * interval_ns(&times[0]).unwrap_or(1e9 / fps);
        Some(middle + fraction.round() as i64)
    });
    let right_gain = recorder.as_ref().ok().and_then(|r| r.colour_gain());
    Ok(Preview {
        fps,
        sync,
        offset_ns,
        right_gain,
        recorder: recorder.ok(),
    })
}

/// Runs the recording; prints what came out and where.
pub(crate) fn process(job: &Recording<'_>) -> Result<()> {
    let started = Instant::now();
    let cal = CalibrationFile::load(job.calibration)?;
    let view = ViewGeometry::from_calibration(&cal, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", job.calibration.display()))?;
    if cal.panorama.is_none() {
        bail!(
            "{}: the calibration has no panorama (run `polyvision-calibrate panorama` on it first)",
            job.calibration.display()
        );
    }
    for side in ["left", "right"] {
        if cal.camera(side).is_none() {
            bail!(
                "{}: the calibration has no {side} camera (`polyvision-calibrate solve --camera {side} --into`)",
                job.calibration.display()
            );
        }
    }
    let table = StitchTable::build(&cal, polyvision_calibration::lut::DEFAULT_BAND_PX)
        .with_context(|| format!("stitching table of {}", job.calibration.display()))?;
    let panorama_size = table.panorama_size;
    let preference: Preference = job
        .stitch
        .parse()
        .map_err(|e| anyhow::anyhow!("--stitch: {e}"))?;
    let pixels = Backend::select(preference, Some(job.detector.threads.max(1)))?;
    let stitcher = pixels.stitcher(StitchPlan::new(Arc::new(table))?)?;
    let detector_args = DetectorArgs {
        model: Some(job.model.clone()),
        ..job.detector.clone()
    };
    let (detector, card) = build_detector(&detector_args, job.detector.threshold, true)?;

    let found = preview(&job.files, &cal, SYNC_PREVIEW_S)?;
    let fps = job.fps.unwrap_or(found.fps);
    if !(fps > 0.0 && fps <= 240.0) {
        bail!("frame rate {fps} is outside 0–240 (say --fps)");
    }
    let frame_ms = 1000.0 / fps;
    let offset_ms = match (job.offset_ms, &found.sync) {
        (Some(ms), Ok(e)) => {
            println!(
                "{}: camera offset {ms:+.0} ms as given; the overlap shows {:+.2} frames ({:+.0} ms)",
                job.command,
                e.offset_frames,
                found
                    .offset_ns
                    .map_or(e.offset_frames * frame_ms, |ns| ns as f64 * 1e-6)
            );
            Some(ms)
        }
        (Some(ms), Err(_)) => Some(ms),
        (None, Ok(e)) if e.is_clear() && found.offset_ns.is_some() => {
            let ms = found.offset_ns.unwrap_or(0) as f64 * 1e-6;
            println!(
                "{}: camera offset found from the overlap: left frame n + {:.2} shows right frame n ({ms:+.0} ms; correlation {:.2}, next best {:.2}, {} cells, {} frames)",
                job.command, e.offset_frames, e.peak, e.runner_up, e.cells, e.frames
            );
            Some(ms)
        }
        (None, Ok(e)) => {
            println!(
                "{}: camera offset not clear from the first {SYNC_PREVIEW_S} s (correlation {:.2}, next best {:.2}); pairing starts at 0 and the pipeline keeps checking",
                job.command, e.peak, e.runner_up
            );
            None
        }
        (None, Err(e)) => {
            println!(
                "{}: camera offset not found ({e}); pairing starts at 0",
                job.command
            );
            None
        }
    };
    // A gain within 2 % of 1 is not worth a pass over every right frame.
    let right_gain = found
        .right_gain
        .filter(|g| g.iter().any(|v| (v - 1.0).abs() > 0.02));
    if let Some(g) = found.right_gain {
        println!(
            "{}: right camera's colour matched to the left's over the overlap: gain R {:.3} G {:.3} B {:.3}{}",
            job.command,
            g[0],
            g[1],
            g[2],
            if right_gain.is_some() {
                ""
            } else {
                " (within 2 %, not applied)"
            }
        );
    }
    let seam = found.seam(offset_ms.map_or(0.0, |ms| ms / frame_ms));
    if let Some(d) = &seam {
        println!(
            "{}: the cameras over their overlap: motion mismatch per cell {:.3} as recorded, {:.3} after the offset (grey levels per frame; ghosts); grey difference {:.2} -> {:.2} with the colour matched",
            job.command,
            d.motion_mismatch[0],
            d.motion_mismatch[1],
            d.grey_difference[0],
            d.grey_difference[1]
        );
    }
    let mut sync = CameraSync::for_rig(&cal, offset_ms);
    // Found here (not configured): the pipeline's check may still correct it.
    sync.fixed = job.offset_ms.is_some();

    std::fs::create_dir_all(job.dir).with_context(|| format!("creating {}", job.dir.display()))?;
    let db_path = job.dir.join("buffer.db");
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db_path.display()));
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    let mut store = Store::open(&db_path)?;
    let metadata = serde_json::json!({
        "source": format!("polyvision-edge {}", job.command),
        "footage": job.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "calibration": job.calibration.display().to_string(),
        "model": job.model.display().to_string(),
        "camera_offset_ms": offset_ms,
    });
    let info = store.start_match(fps, &metadata.to_string())?;
    println!(
        "{}: match {} — stitching on {}, detecting with {} ({}), buffer {}",
        job.command,
        uuid_text(&info.uuid),
        pixels.name(),
        detector.backend(),
        card.display(),
        db_path.display()
    );
    let parts = PipelineParts {
        sources: job.files.clone().map(|path| SourceSpec::File { path }),
        stitcher,
        panorama_size,
        detector,
        view: view.clone(),
        fps,
        pair_tolerance_ns: (0.5e9 / fps) as u64,
        pixel_sigma: 2.0,
        tracker: job.tracker,
        sync,
        pitch_mask: Some(PitchMask::new(&cal.pitch, job.pitch_margin_m)),
        right_gain,
    };
    let counters = Arc::new(PipelineCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut outcome = run(
        parts,
        &mut store,
        info.seq,
        stop,
        counters.clone(),
        job.max_frames,
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
        &finished.summary(job.command, &uuid_text(&info.uuid), info.started_ms, fps),
    )?;
    let tracks_path = job.dir.join("tracks.txt");
    let metrics_path = job.dir.join("metrics.csv");
    let preview_path = job.dir.join("preview.png");
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
    if let Some(last) = &outcome.last_panorama {
        let png = preview_picture(last, &finished, &cal, &view)?;
        std::fs::write(&preview_path, png)
            .with_context(|| format!("writing {}", preview_path.display()))?;
    }

    println!();
    println!(
        "{}: {} panoramas {}×{} in {:.1} s ({:.2} frames/s end to end), {} detections ({} off the pitch, left out), {} unpaired camera frames",
        job.command,
        outcome.frames,
        panorama_size[0],
        panorama_size[1],
        outcome.wall_s,
        outcome.frames as f64 / outcome.wall_s.max(1e-9),
        outcome.detections,
        outcome.off_pitch,
        outcome.unpaired
    );
    for c in &outcome.sync_checks {
        println!(
            "{}: sync check at pair {}: {:+.2} frames left after pairing (correlation {:.2}, next best {:.2}); offset now {:+.0} ms",
            job.command,
            c.pair,
            c.estimate.offset_frames,
            c.estimate.peak,
            c.estimate.runner_up,
            c.offset_ms
        );
    }
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
        "{}: {} tracks ({} people followed for at least 1 s), {} rows in the buffer",
        job.command,
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
    let figures = RunFigures {
        panoramas: outcome.frames,
        panorama_size,
        wall_s: outcome.wall_s,
        detections: outcome.detections,
        off_pitch_detections: outcome.off_pitch,
        unpaired_frames: outcome.unpaired,
        fps,
        sync_found: found.sync.as_ref().ok().copied(),
        right_gain,
        seam_difference: seam,
        camera_offset_ms: outcome.camera_offset_ms,
        sync_checks: outcome.sync_checks.clone(),
        tracks: finished.metrics.len(),
        people_followed_1s: people.len(),
        rows: outcome.rows,
    };
    let run_json = job.dir.join("run.json");
    std::fs::write(&run_json, serde_json::to_string_pretty(&figures)?)
        .with_context(|| format!("writing {}", run_json.display()))?;
    println!();
    println!(
        "{}: done in {:.0} s. Look next at:",
        job.command,
        started.elapsed().as_secs_f64()
    );
    println!(
        "  {}  tracks (MOTChallenge, x y in pitch metres)",
        tracks_path.display()
    );
    println!("  {}  metrics per track", metrics_path.display());
    if outcome.last_panorama.is_some() {
        println!(
            "  {}  the last panorama with the pitch lines and the tracks",
            preview_path.display()
        );
    }
    println!("  {}  the figures above, as JSON", run_json.display());
    println!(
        "  {}  the SQLite buffer (sqlite3 {} 'select count(*) from positions')",
        db_path.display(),
        db_path.display()
    );
    Ok(())
}

/// The last panorama with the pitch markings (thin, white) and a box per track detected in that
/// frame (team colours; the ball magenta), as PNG.
fn preview_picture(
    last: &LastPanorama,
    finished: &FinishedMatch,
    cal: &CalibrationFile,
    view: &ViewGeometry,
) -> Result<Vec<u8>> {
    let [w, h] = last.size;
    let mut rgba = polyvision_cuda::image::bytes_of(&last.pixels).to_vec();
    let mut put = |x: i64, y: i64, c: [u8; 3]| {
        if x >= 0 && y >= 0 && x < w as i64 && y < h as i64 {
            let i = (y as usize * w as usize + x as usize) * 4;
            rgba[i..i + 3].copy_from_slice(&c);
        }
    };
    for line in pitch_overlay(&cal.pitch, &view.pitch_from_image, None, [w, h]) {
        for pair in line.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let steps = (b[0] - a[0]).abs().max((b[1] - a[1]).abs()).ceil().max(1.0) as i64;
            for k in 0..=steps {
                let t = k as f64 / steps as f64;
                put(
                    (a[0] + t * (b[0] - a[0])).round() as i64,
                    (a[1] + t * (b[1] - a[1])).round() as i64,
                    [255, 255, 255],
                );
            }
        }
    }
    // Tracks seen in that frame (a coasting track's box is a prediction, not a player).
    for p in finished
        .points
        .iter()
        .filter(|p| p.frame == last.frame && p.measured.is_some())
    {
        let colour = match (p.class, finished.teams.get(&p.id)) {
            (Class::Ball, _) => [255, 0, 255],
            (_, Some(Team::A)) => [255, 60, 40],
            (_, Some(Team::B)) => [40, 120, 255],
            (_, Some(Team::Goalkeeper)) => [60, 220, 60],
            (_, Some(Team::Referee)) => [20, 20, 20],
            _ => [255, 220, 0],
        };
        let [l, t, bw, bh] = p.bbox.map(|v| v.round() as i64);
        for d in 0..2 {
            for x in l..=l + bw {
                put(x, t - d, colour);
                put(x, t + bh + d, colour);
            }
            for y in t..=t + bh {
                put(l - d, y, colour);
                put(l + bw + d, y, colour);
            }
        }
    }
    polyvision_calibration::png_io::encode_png(&rgba, [w, h]).map_err(anyhow::Error::msg)
}
