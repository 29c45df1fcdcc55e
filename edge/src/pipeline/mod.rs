//! The match pipeline: capture → pair → stitch → detect → track → store, each stage on its own
//! thread, joined by bounded channels.
//!
//! Full-channel policy: a live camera that gets ahead of the pipeline loses its oldest frames
//! (counted per camera as `dropped`); a file source waits instead, so every frame of a recording
//! is processed. From the stitcher on, every channel blocks: a panorama that was paired is
//! stitched, and detections are never dropped. The tracker and the SQLite buffer run on the
//! calling thread; rows are committed once per second of footage in one transaction.
//!
//! Each stage counts frames, busy time and drops ([`StageFigures`]); the daemon publishes them
//! as Prometheus metrics and the demo prints them.

pub mod pair;

use crate::capture::video::{CaptureError, Read, SourceSpec, TimedFrame, VideoSource};
use crate::detect::detector::{Detection2d, Detector};
use crate::store::{PositionRow, Store};
use crate::track::finish::place;
use crate::track::tracker::{Class, TrackPoint, Tracker, TrackerConfig};
use pair::Pairer;
use polyvision_calibration::sync::{OverlapSampler, SyncEstimate, SyncOptions, SyncRecorder};
use polyvision_calibration::{PitchSize, ViewGeometry};
use polyvision_cuda::{Rgba, Stitcher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// Counters of one stage, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct StageCounters {
    /// Frames that went through.
    pub frames: AtomicU64,
    /// Time spent working (not waiting), ns.
    pub busy_ns: AtomicU64,
    /// Frames dropped by the full-channel policy.
    pub dropped: AtomicU64,
}

impl StageCounters {
    fn add(&self, started: Instant) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.busy_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// The figures of one stage at the end of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct StageFigures {
    /// Stage name.
    pub name: &'static str,
    /// Frames processed.
    pub frames: u64,
    /// Seconds spent working.
    pub busy_s: f64,
    /// Frames dropped.
    pub dropped: u64,
}

impl StageFigures {
    /// Frames per second of working time: what the stage alone could sustain.
    pub fn fps(&self) -> f64 {
        if self.busy_s > 0.0 {
            self.frames as f64 / self.busy_s
        } else {
            0.0
        }
    }
}

/// Names of the stages, in data-flow order.
pub const STAGES: [&str; 7] = [
    "capture_left",
    "capture_right",
    "pair",
    "stitch",
    "detect",
    "track",
    "store",
];

/// The stages' counters.
#[derive(Debug, Default)]
pub struct PipelineCounters {
    /// One per entry of [`STAGES`].
    pub stages: [StageCounters; 7],
    /// Frames of either camera that found no partner within the tolerance.
    pub unpaired: AtomicU64,
    /// Live sources rebuilt after they failed or ended.
    pub rebuilds: AtomicU64,
    /// The camera offset pairing uses now, µs (left ahead of right).
    pub camera_offset_us: AtomicI64,
    /// The last sync check's offset left after pairing, thousandths of a frame.
    pub sync_residual_milliframes: AtomicI64,
    /// Detections left out before tracking for lying outside the pitch and its margin.
    pub off_pitch: AtomicU64,
}

impl PipelineCounters {
    fn stage(&self, name: &str) -> &StageCounters {
        let i = STAGES.iter().position(|s| *s == name).unwrap_or(0);
        &self.stages[i]
    }

    /// A snapshot of every stage.
    pub fn figures(&self) -> Vec<StageFigures> {
        STAGES
            .iter()
            .zip(&self.stages)
            .map(|(name, c)| StageFigures {
                name,
                frames: c.frames.load(Ordering::Relaxed),
                busy_s: c.busy_ns.load(Ordering::Relaxed) as f64 * 1e-9,
                dropped: c.dropped.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Prometheus text exposition of the counters.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        for (metric, help) in [
            ("polyvision_stage_frames_total", "Frames through the stage."),
            (
                "polyvision_stage_busy_seconds_total",
                "Time the stage spent working.",
            ),
            (
                "polyvision_stage_dropped_total",
                "Frames the stage dropped.",
            ),
        ] {
            out.push_str(&format!(
                "# HELP {metric} {help}\n# TYPE {metric} counter\n"
            ));
            for f in self.figures() {
                let v = match metric {
                    "polyvision_stage_frames_total" => f.frames as f64,
                    "polyvision_stage_busy_seconds_total" => f.busy_s,
                    _ => f.dropped as f64,
                };
                out.push_str(&format!("{metric}{{stage=\"{}\"}} {v}\n", f.name));
            }
        }
        for (metric, help, v) in [
            (
                "polyvision_camera_offset_seconds",
                "Left camera's lead over the right that pairing takes off.",
                self.camera_offset_us.load(Ordering::Relaxed) as f64 * 1e-6,
            ),
            (
                "polyvision_sync_residual_frames",
                "Camera offset the last sync check found left after pairing.",
                self.sync_residual_milliframes.load(Ordering::Relaxed) as f64 * 1e-3,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {metric} {help}\n# TYPE {metric} gauge\n{metric} {v}\n"
            ));
        }
        for (metric, help, v) in [
            (
                "polyvision_unpaired_frames_total",
                "Camera frames without a partner.",
                &self.unpaired,
            ),
            (
                "polyvision_source_rebuilds_total",
                "Live camera sources rebuilt after a failure.",
                &self.rebuilds,
            ),
            (
                "polyvision_off_pitch_detections_total",
                "Detections left out before tracking for lying off the pitch.",
                &self.off_pitch,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {metric} {help}\n# TYPE {metric} counter\n{metric} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// The parts of a pipeline, each chosen once at start-up.
pub struct PipelineParts {
    /// Left and right camera.
    pub sources: [SourceSpec; 2],
    /// Stitching backend (CUDA or CPU) with the rig's table.
    pub stitcher: Box<dyn Stitcher>,
    /// Size of the panorama the stitcher makes.
    pub panorama_size: [u32; 2],
    /// Detection stage (TensorRT or tract).
    pub detector: Detector,
    /// Geometry of the panorama (pixels ↔ pitch).
    pub view: ViewGeometry,
    /// Frames per second of the cameras.
    pub fps: f64,
    /// Largest L/R capture-time difference of a pair, ns.
    pub pair_tolerance_ns: u64,
    /// Detection noise, pixels (1σ), for the position uncertainty.
    pub pixel_sigma: f64,
    /// The tracker's parameters.
    pub tracker: TrackerConfig,
    /// The cameras' time offset and its check.
    pub sync: CameraSync,
    /// Where detections count; `None` keeps every detection.
    pub pitch_mask: Option<PitchMask>,
    /// Per-channel gain (R, G, B) applied to the right camera before stitching, so that its
    /// colour matches the left's across the seam; `None` leaves the frames as they are.
    pub right_gain: Option<[f64; 3]>,
}

/// Keeping the two cameras in step.
pub struct CameraSync {
    /// How far the left camera's clock is ahead of the right's, ns: pairing takes it off.
    pub left_offset_ns: i64,
    /// A configured offset is only checked (a warning when the cameras disagree); otherwise the
    /// check's finding replaces it.
    pub fixed: bool,
    /// The pitch both cameras see, for the check; `None` runs without one.
    pub check: Option<OverlapSampler>,
}

impl CameraSync {
    /// No offset and no check (a rig whose cameras share a clock and a trigger).
    pub fn none() -> Self {
        CameraSync {
            left_offset_ns: 0,
            fixed: true,
            check: None,
        }
    }

    /// A rig's sync: `offset_ms` configured (only checked) or, absent, found while running;
    /// checked over the overlap of the calibration's two cameras.
    pub fn for_rig(cal: &polyvision_calibration::CalibrationFile, offset_ms: Option<f64>) -> Self {
        let check = match OverlapSampler::new(cal, &SyncOptions::default()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "camera sync is not checked");
                None
            }
        };
        CameraSync {
            left_offset_ns: offset_ms.map_or(0, |ms| (ms * 1e6).round() as i64),
            fixed: offset_ms.is_some(),
            check,
        }
    }
}

/// Seconds of pairs one sync check looks at.
pub const SYNC_WINDOW_S: f64 = 5.0;

/// One sync check of a run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SyncCheck {
    /// The pair the check ended at.
    pub pair: u64,
    /// What it found left between the cameras after pairing, in frames.
    pub estimate: SyncEstimate,
    /// The offset pairing used after the check, ms.
    pub offset_ms: f64,
}

/// The pitch and a margin around it: detections placed outside are not people of the match
/// (stands, fences, trees, advertising), and are left out before tracking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PitchMask {
    pitch: PitchSize,
    margin_m: f64,
}

impl PitchMask {
    /// `pitch` grown by `margin_m` on every side.
    pub fn new(pitch: &PitchSize, margin_m: f64) -> Self {
        PitchMask {
            pitch: *pitch,
            margin_m: margin_m.max(0.0),
        }
    }

    /// Whether pitch point `p` (metres from the centre spot) is inside.
    pub fn contains(&self, p: [f64; 2]) -> bool {
        self.pitch.contains_within(p, self.margin_m)
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct PipelineOutcome {
    /// Panoramas that went all the way through.
    pub frames: u64,
    /// Detections made.
    pub detections: u64,
    /// Every tracker output point, in frame order.
    pub points: Vec<TrackPoint>,
    /// Rows committed to the buffer.
    pub rows: u64,
    /// Per-stage figures.
    pub stages: Vec<StageFigures>,
    /// Frames without a partner.
    pub unpaired: u64,
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
    /// A source that failed, if one did (the run stops cleanly with what it had).
    pub source_error: Option<String>,
    /// Every sync check, in order.
    pub sync_checks: Vec<SyncCheck>,
    /// The camera offset pairing ended with, ms.
    pub camera_offset_ms: f64,
    /// Detections left out for lying off the pitch.
    pub off_pitch: u64,
    /// The last panorama with its detections (for a preview picture).
    pub last_panorama: Option<LastPanorama>,
}

/// The last panorama of a run.
#[derive(Debug, Clone)]
pub struct LastPanorama {
    /// Its frame number.
    pub frame: u64,
    /// Width and height.
    pub size: [u32; 2],
    /// RGBA pixels, one `u32` each.
    pub pixels: Vec<u32>,
}

type Pair = (u64, TimedFrame, TimedFrame);
type Panorama = (u64, [u32; 2], Vec<u32>);
type Found = (u64, Vec<(Detection2d, Option<[f32; 3]>)>);

/// How long a source may stay silent before it counts as stalled.
const STALL: Duration = Duration::from_secs(10);

/// Longest wait between two attempts to rebuild a failed live source.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Sleeps `d` unless `stop` is set first.
fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
}

/// Opens a live source, retrying with exponential backoff until it opens or `stop` is set.
fn open_live(spec: &SourceSpec, stop: &AtomicBool, backoff: &mut Duration) -> Option<VideoSource> {
    loop {
        match VideoSource::open(spec) {
            Ok(s) => return Some(s),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_s = backoff.as_secs_f64(), "camera source failed to start");
                sleep_unless(stop, *backoff);
                *backoff = (*backoff * 2).min(MAX_BACKOFF);
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
            }
        }
    }
}

fn capture_thread(
    spec: SourceSpec,
    tx: SyncSender<TimedFrame>,
    counters: Arc<PipelineCounters>,
    stage: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<(), CaptureError>> {
    std::thread::spawn(move || {
        let live = spec.is_live();
        let mut backoff = Duration::from_secs(1);
        let mut source = if live {
            match open_live(&spec, &stop, &mut backoff) {
                Some(s) => s,
                None => return Ok(()),
            }
        } else {
            VideoSource::open(&spec)?
        };
        let c = counters.stage(stage);
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let frame = match (source.read(STALL), live) {
                (Ok(Read::Frame(f)), _) => f,
                (Ok(Read::End), false) => break,
                (Err(e), false) => return Err(e),
                // A live source that ends or fails is rebuilt from scratch (a fresh pipeline,
                // not just set back to PLAYING: an RTSP session or a V4L2 device may be gone).
                (outcome, true) => {
                    let why = match outcome {
                        Err(e) => e.to_string(),
                        _ => format!("{}: ended", spec.describe()),
                    };
                    tracing::warn!(camera = stage, reason = %why, "rebuilding the camera source");
                    counters.rebuilds.fetch_add(1, Ordering::Relaxed);
                    drop(source);
                    sleep_unless(&stop, backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    source = match open_live(&spec, &stop, &mut backoff) {
                        Some(s) => s,
                        None => break,
                    };
                    continue;
                }
            };
            backoff = Duration::from_secs(1);
            c.add(started);
            if live {
                match tx.try_send(frame) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        c.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => break,
                }
            } else if tx.send(frame).is_err() {
                break;
            }
        }
        Ok(())
    })
}

fn pair_thread(
    left: Receiver<TimedFrame>,
    right: Receiver<TimedFrame>,
    tx: SyncSender<Pair>,
    tolerance_ns: u64,
    sync: CameraSync,
    fps: f64,
    counters: Arc<PipelineCounters>,
) -> std::thread::JoinHandle<Vec<SyncCheck>> {
    std::thread::spawn(move || {
        let mut pairer = Pairer::with_offset(tolerance_ns, sync.left_offset_ns);
        let mut checker = sync
            .check
            .map(|s| SyncChecker::new(s, sync.left_offset_ns, sync.fixed, fps));
        counters
            .camera_offset_us
            .store(sync.left_offset_ns / 1000, Ordering::Relaxed);
        let mut index = 0u64;
        let c = counters.stage("pair");
        // Both heads are needed for a decision; block on whichever side is empty.
        loop {
            if pairer.needs_left() {
                match left.recv() {
                    Ok(f) => pairer.push_left(f),
                    Err(_) => break,
                }
            }
            if pairer.needs_right() {
                match right.recv() {
                    Ok(f) => pairer.push_right(f),
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            while let Some((l, r)) = pairer.next_pair() {
                index += 1;
                if let Some(ch) = checker.as_mut()
                    && let Some(offset_ns) = ch.push(index, &l, &r, &counters)
                {
                    pairer.set_offset(offset_ns);
                }
                c.add(started);
                if tx.send((index, l, r)).is_err() {
                    return checker.map(|c| c.checks).unwrap_or_default();
                }
            }
            counters
                .unpaired
                .store(pairer.unpaired(), Ordering::Relaxed);
        }
        counters
            .unpaired
            .store(pairer.unpaired(), Ordering::Relaxed);
        checker.map(|c| c.checks).unwrap_or_default()
    })
}

/// The sync check inside the pair stage: the overlap's motion over [`SYNC_WINDOW_S`] of pairs,
/// correlated; what is left between the cameras after pairing is logged and, unless the offset
/// was configured, taken off from then on.
struct SyncChecker {
    recorder: SyncRecorder,
    window: usize,
    max_lag: usize,
    /// The nominal frame interval, ns (a gap of more than 1.5 of it is a lost frame).
    frame_ns: f64,
    offset_ns: i64,
    fixed: bool,
    failed: bool,
    checks: Vec<SyncCheck>,
    /// Over the window: left minus right capture time of each pair, ns.
    pair_gaps: Vec<i64>,
    /// Over the window: the right camera's frame intervals, ns.
    intervals: Vec<u64>,
    last_right_ns: Option<u64>,
}

/// The middle value (the upper one of an even count); `None` when empty.
fn median<T: Copy + Ord>(values: &[T]) -> Option<T> {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

impl SyncChecker {
    fn new(sampler: OverlapSampler, offset_ns: i64, fixed: bool, fps: f64) -> Self {
        SyncChecker {
            recorder: SyncRecorder::new(sampler),
            window: (SYNC_WINDOW_S * fps).round().max(12.0) as usize,
            // Half a second either way: more than any two free-running cameras started together.
            max_lag: (0.5 * fps).round().max(3.0) as usize,
            frame_ns: 1e9 / fps,
            offset_ns,
            fixed,
            failed: false,
            checks: Vec::new(),
            pair_gaps: Vec::new(),
            intervals: Vec::new(),
            last_right_ns: None,
        }
    }

    /// Starts the window afresh (the lag is counted in pairs, so a lost frame or a new offset
    /// would blur it).
    fn restart(&mut self) {
        self.recorder.reset();
        self.pair_gaps.clear();
        self.intervals.clear();
    }

    /// Records one pair; returns a new offset for pairing when the check found one.
    fn push(
        &mut self,
        index: u64,
        l: &TimedFrame,
        r: &TimedFrame,
        counters: &PipelineCounters,
    ) -> Option<i64> {
        if self.failed {
            return None;
        }
        if let Some(last) = self.last_right_ns.replace(r.pts_ns) {
            match r.pts_ns.checked_sub(last) {
                Some(step) if (step as f64) <= 1.5 * self.frame_ns => self.intervals.push(step),
                // A frame lost (or a rebuilt source's clock): frames are no longer consecutive.
                _ => self.restart(),
            }
        }
        self.pair_gaps.push(
            (l.pts_ns as i128 - r.pts_ns as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        );
        for (camera, f) in [(0, l), (1, r)] {
            let frame = polyvision_calibration::seam::Frame {
                size: [f.frame.width, f.frame.height],
                rgba: &f.frame.rgba,
            };
            if let Err(e) = self.recorder.push(camera, &frame) {
                tracing::warn!(error = %e, "camera sync check off for this match");
                self.failed = true;
                return None;
            }
        }
        if self.recorder.frames(0) < self.window {
            return None;
        }
        let found = self.recorder.estimate(self.max_lag);
        // What pairing does now, measured: the capture-time gap of its pairs and the interval.
        let paired_gap_ns = median(&self.pair_gaps).unwrap_or(self.offset_ns);
        let interval_ns = median(&self.intervals).map_or(self.frame_ns, |i| i as f64);
        self.recorder.clear();
        self.pair_gaps.clear();
        self.intervals.clear();
        let estimate = match found {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(reason = %e, "camera sync check inconclusive");
                return None;
            }
        };
        let residual = estimate.offset_frames;
        let mut changed = None;
        if estimate.is_clear() {
            counters
                .sync_residual_milliframes
                .store((residual * 1000.0).round() as i64, Ordering::Relaxed);
            if residual.abs() > 0.5 {
                let found_ns = paired_gap_ns + (residual * interval_ns).round() as i64;
                if self.fixed {
                    tracing::warn!(
                        configured_ms = self.offset_ns as f64 * 1e-6,
                        found_ms = found_ns as f64 * 1e-6,
                        residual_frames = residual,
                        "the cameras are out of step with the configured offset (pipeline.camera_offset_ms): pairs mix instants, players ghost in the seam"
                    );
                } else {
                    tracing::warn!(
                        from_ms = self.offset_ns as f64 * 1e-6,
                        to_ms = found_ns as f64 * 1e-6,
                        residual_frames = residual,
                        "camera offset corrected from the overlap"
                    );
                    self.offset_ns = found_ns;
                    counters
                        .camera_offset_us
                        .store(found_ns / 1000, Ordering::Relaxed);
                    changed = Some(found_ns);
                    self.restart();
                }
            }
        } else {
            tracing::debug!(
                ?estimate,
                "camera sync check not clear (too little motion in the overlap)"
            );
        }
        self.checks.push(SyncCheck {
            pair: index,
            estimate,
            offset_ms: self.offset_ns as f64 * 1e-6,
        });
        changed
    }
}

/// A lookup table per channel that scales bytes by `gain` (clamped to 0–255).
fn gain_tables(gain: [f64; 3]) -> [[u8; 256]; 3] {
    gain.map(|g| {
        let mut t = [0u8; 256];
        for (v, out) in t.iter_mut().enumerate() {
            *out = (v as f64 * g).round().clamp(0.0, 255.0) as u8;
        }
        t
    })
}

fn stitch_thread(
    mut stitcher: Box<dyn Stitcher>,
    size: [u32; 2],
    right_gain: Option<[f64; 3]>,
    rx: Receiver<Pair>,
    tx: SyncSender<Panorama>,
    counters: Arc<PipelineCounters>,
) -> std::thread::JoinHandle<Result<(), String>> {
    std::thread::spawn(move || {
        let c = counters.stage("stitch");
        let tables = right_gain.map(gain_tables);
        for (index, l, mut r) in rx {
            let started = Instant::now();
            if let Some(t) = &tables {
                for p in r.frame.rgba.chunks_exact_mut(4) {
                    for k in 0..3 {
                        p[k] = t[k][p[k] as usize];
                    }
                }
            }
            let (lp, rp) = (
                polyvision_cuda::image::pixels_of(&l.frame.rgba),
                polyvision_cuda::image::pixels_of(&r.frame.rgba),
            );
            let mut out = vec![0u32; size[0] as usize * size[1] as usize];
            stitcher
                .stitch_rgba(
                    &Rgba::packed(l.frame.width, l.frame.height, &lp),
                    &Rgba::packed(r.frame.width, r.frame.height, &rp),
                    &mut out,
                )
                .map_err(|e| format!("stitching frame {index}: {e}"))?;
            c.add(started);
            if tx.send((index, size, out)).is_err() {
                break;
            }
        }
        Ok(())
    })
}

fn detect_thread(
    mut detector: Detector,
    rx: Receiver<Panorama>,
    tx: SyncSender<Found>,
    counters: Arc<PipelineCounters>,
) -> std::thread::JoinHandle<Result<Option<LastPanorama>, String>> {
    std::thread::spawn(move || {
        let c = counters.stage("detect");
        let mut last = None;
        for (index, [w, h], pixels) in rx {
            let started = Instant::now();
            let image = Rgba::packed(w, h, &pixels);
            let found = detector
                .detect(&image)
                .map_err(|e| format!("detecting in frame {index}: {e}"))?;
            let with_colour = found
                .into_iter()
                .map(|d| {
                    let colour = (d.class != Class::Ball)
                        .then(|| shirt_colour(&image, d.bbox))
                        .flatten();
                    (d, colour)
                })
                .collect();
            c.add(started);
            if tx.send((index, with_colour)).is_err() {
                break;
            }
            last = Some(LastPanorama {
                frame: index,
                size: [w, h],
                pixels,
            });
        }
        Ok(last)
    })
}

/// Mean colour of the torso of a person's box (the middle 40 % across, 20–45 % down), where the
/// shirt is for someone standing; `None` for a box too small to have one.
pub fn shirt_colour(image: &Rgba<'_>, bbox: [f64; 4]) -> Option<[f32; 3]> {
    let [l, t, w, h] = bbox;
    let x0 = (l + 0.3 * w).floor().max(0.0) as u32;
    let x1 = ((l + 0.7 * w).ceil() as u32).min(image.width);
    let y0 = (t + 0.2 * h).floor().max(0.0) as u32;
    let y1 = ((t + 0.45 * h).ceil() as u32).min(image.height);
    let mut sum = [0f64; 3];
    let mut n = 0u32;
    for y in y0..y1 {
        for x in x0..x1 {
            let p = image.pixels[(y * image.stride + x) as usize].to_le_bytes();
            for k in 0..3 {
                sum[k] += p[k] as f64;
            }
            n += 1;
        }
    }
    (n >= 4).then(|| sum.map(|s| (s / n as f64) as f32))
}

/// Runs one match through the pipeline until the sources end, `stop` is set, or `max_frames`
/// panoramas are done. Rows go to `store` under `match_seq`.
pub fn run(
    parts: PipelineParts,
    store: &mut Store,
    match_seq: i64,
    stop: Arc<AtomicBool>,
    counters: Arc<PipelineCounters>,
    max_frames: Option<u64>,
) -> Result<PipelineOutcome, String> {
    let started = Instant::now();
    let PipelineParts {
        sources: [left_spec, right_spec],
        stitcher,
        panorama_size,
        detector,
        view,
        fps,
        pair_tolerance_ns,
        pixel_sigma,
        tracker: tracker_config,
        sync,
        pitch_mask,
        right_gain,
    } = parts;
    let (ltx, lrx) = sync_channel(4);
    let (rtx, rrx) = sync_channel(4);
    let (ptx, prx) = sync_channel(2);
    let (stx, srx) = sync_channel(2);
    let (dtx, drx) = sync_channel(256);
    let captures = [
        capture_thread(
            left_spec,
            ltx,
            counters.clone(),
            "capture_left",
            stop.clone(),
        ),
        capture_thread(
            right_spec,
            rtx,
            counters.clone(),
            "capture_right",
            stop.clone(),
        ),
    ];
    let pairing = pair_thread(
        lrx,
        rrx,
        ptx,
        pair_tolerance_ns,
        sync,
        fps,
        counters.clone(),
    );
    let stitching = stitch_thread(
        stitcher,
        panorama_size,
        right_gain,
        prx,
        stx,
        counters.clone(),
    );
    let detecting = detect_thread(detector, srx, dtx, counters.clone());

    let mut tracker = Tracker::new(tracker_config, fps);
    let to_image = |p: [f64; 2]| view.to_image(p);
    let (mut points, mut pending) = (Vec::new(), Vec::new());
    let (mut frames, mut detections, mut rows) = (0u64, 0u64, 0u64);
    let batch_frames = fps.round().max(1.0) as u64;
    let track_stage = counters.stage("track");
    let store_stage = counters.stage("store");
    let mut store_error = None;
    for (index, found) in drx.iter() {
        let t0 = Instant::now();
        detections += found.len() as u64;
        let dets: Vec<_> = found
            .iter()
            .filter_map(|(d, colour)| {
                place(&view, d.bbox, d.score as f64, d.class, *colour, pixel_sigma)
            })
            .filter(|d| {
                let kept = pitch_mask.is_none_or(|m| m.contains(d.pitch));
                if !kept {
                    counters.off_pitch.fetch_add(1, Ordering::Relaxed);
                }
                kept
            })
            .collect();
        let out = tracker.step(index, &dets, &to_image);
        track_stage.add(t0);
        pending.extend(out.iter().map(|p| PositionRow {
            frame: p.frame as u32,
            track: p.id,
            x_m: p.pitch[0],
            y_m: p.pitch[1],
            class: p.class,
            conf: p.conf as f32,
        }));
        points.extend(out);
        frames = index;
        if index % batch_frames == 0 {
            let t1 = Instant::now();
            match store.append(match_seq, &pending) {
                Ok(_) => rows += pending.len() as u64,
                Err(e) => {
                    store_error = Some(e.to_string());
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
            pending.clear();
            store_stage.add(t1);
        }
        if max_frames.is_some_and(|m| index >= m) {
            stop.store(true, Ordering::Relaxed);
            break;
        }
    }
    // Unblock every stage: dropping the receiver ends the detector, which ends the rest.
    drop(drx);
    if store_error.is_none() && !pending.is_empty() {
        let t1 = Instant::now();
        store
            .append(match_seq, &pending)
            .map_err(|e| format!("storing the last rows: {e}"))?;
        rows += pending.len() as u64;
        store_stage.add(t1);
    }
    if let Some(e) = store_error {
        return Err(format!("storing rows: {e}"));
    }
    let mut source_error = None;
    for c in captures {
        match c.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => source_error = Some(e.to_string()),
            Err(_) => source_error = Some("a capture thread panicked".into()),
        }
    }
    let sync_checks = pairing
        .join()
        .map_err(|_| "the pair stage panicked".to_string())?;
    match stitching.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err("the stitch stage panicked".into()),
    }
    let last_panorama = match detecting.join() {
        Ok(Ok(last)) => last,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err("the detect stage panicked".into()),
    };
    Ok(PipelineOutcome {
        frames,
        detections,
        points,
        rows,
        stages: counters.figures(),
        unpaired: counters.unpaired.load(Ordering::Relaxed),
        wall_s: started.elapsed().as_secs_f64(),
        source_error,
        sync_checks,
        camera_offset_ms: counters.camera_offset_us.load(Ordering::Relaxed) as f64 * 1e-3,
        off_pitch: counters.off_pitch.load(Ordering::Relaxed),
        last_panorama,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::still::RgbaFrame;
    use polyvision_calibration::{CalibrationFile, CameraCalibration, Homography, LensModel};

    /// Two top-down cameras at 8 px/m sharing x in [-10, 10] m.
    fn rig() -> CalibrationFile {
        let camera = |name: &str, x_left: f64| CameraCalibration {
            name: name.into(),
            image_size: [560, 640],
            lens: LensModel::pinhole(500.0, 500.0, 280.0, 320.0),
            pitch_from_image: Homography::from_rows([
                [0.125, 0.0, x_left],
                [0.0, -0.125, 40.0],
                [0.0, 0.0, 1.0],
            ])
            .expect("finite"),
            fit: None,
        };
        CalibrationFile::new(
            PitchSize::default(),
            vec![camera("left", -60.0), camera("right", -10.0)],
        )
    }

    /// Camera `x_left`'s picture at instant `t`, captured at `pts_ns`: players walking through
    /// the overlap.
    fn frame(x_left: f64, t: f64, pts_ns: u64) -> TimedFrame {
        let mut rgba = vec![110u8; 560 * 640 * 4];
        for k in 0..12 {
            let k = k as f64;
            let x = -9.0 + (k * 1.9 + 0.5 * t * (1.0 + 0.4 * (k * 0.9).sin())).rem_euclid(18.0);
            let y = -30.0 + (k * 5.1 + 0.4 * t * (0.6 + (k * 1.7).cos())).rem_euclid(60.0);
            let (u, v) = ((x - x_left) * 8.0, (40.0 - y) * 8.0);
            for dy in -6i64..=6 {
                for dx in -3i64..=3 {
                    let (px, py) = (u as i64 + dx, v as i64 + dy);
                    if (0..560).contains(&px) && (0..640).contains(&py) {
                        let i = (py as usize * 560 + px as usize) * 4;
                        rgba[i..i + 3].copy_from_slice(&[230, 40, 30]);
                    }
                }
            }
        }
        TimedFrame {
            pts_ns,
            frame: RgbaFrame {
                width: 560,
                height: 640,
                rgba,
            },
        }
    }

    /// Feeds 130 pairs (25 fps) made by a pairer taking `offset_ns` off the left camera's
    /// times, whose left frame shows the instant `lead` frames before the right one's; the
    /// right camera skips a frame at pair `lost` if given.
    fn check_with(
        lead: f64,
        offset_ns: i64,
        fixed: bool,
        lost: Option<u64>,
    ) -> (Option<i64>, Vec<SyncCheck>) {
        let sampler = OverlapSampler::new(&rig(), &SyncOptions::default()).expect("overlap");
        let mut checker = SyncChecker::new(sampler, offset_ns, fixed, 25.0);
        let counters = PipelineCounters::default();
        let mut changed = None;
        for n in 0..130u64 {
            let m = n + lost.is_some_and(|at| n >= at) as u64;
            let right_ns = 1_000_000_000 + m * 40_000_000;
            let l = frame(-60.0, m as f64 - lead, (right_ns as i64 + offset_ns) as u64);
            let r = frame(-10.0, m as f64, right_ns);
            if let Some(o) = checker.push(n + 1, &l, &r, &counters) {
                changed = Some(o);
            }
        }
        (changed, checker.checks)
    }

    fn check(lead: f64, offset_ns: i64, fixed: bool) -> (Option<i64>, Vec<SyncCheck>) {
        check_with(lead, offset_ns, fixed, None)
    }

    #[test]
    fn pairs_out_of_step_are_found_and_corrected_unless_the_offset_was_configured() {
        // Pairs mixing instants 3 frames apart: found, and the offset moves by 120 ms.
        let (changed, checks) = check(3.0, 0, false);
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert!(
            (checks[0].estimate.offset_frames - 3.0).abs() < 0.3,
            "{checks:?}"
        );
        let ms = changed.expect("a new offset") as f64 * 1e-6;
        assert!((ms - 120.0).abs() < 12.0, "{ms} ms");
        // A configured offset is kept (only a warning), the finding still recorded.
        let (changed, checks) = check(3.0, 40_000_000, true);
        assert_eq!(changed, None);
        assert!(
            (checks[0].estimate.offset_frames - 3.0).abs() < 0.3,
            "{checks:?}"
        );
        assert_eq!(checks[0].offset_ms, 40.0);
        // Pairs in step: nothing to correct.
        let (changed, checks) = check(0.0, 0, false);
        assert_eq!(changed, None);
        assert!(checks[0].estimate.offset_frames.abs() < 0.3, "{checks:?}");
        // An offset already applied: the correction adds to what pairing does (160 + 80 ms).
        let (changed, _) = check(2.0, 160_000_000, false);
        let ms = changed.expect("a new offset") as f64 * 1e-6;
        assert!((ms - 240.0).abs() < 12.0, "{ms} ms");
        // A lost frame starts the window afresh: 130 pairs with one lost at 60 finish none.
        let (changed, checks) = check_with(3.0, 0, false, Some(60));
        assert_eq!((changed, checks.len()), (None, 0), "{checks:?}");
    }

    #[test]
    fn the_pitch_mask_keeps_the_pitch_and_its_margin() {
        let mask = PitchMask::new(&PitchSize::default(), 3.0);
        assert!(mask.contains([0.0, 0.0]) && mask.contains([55.0, -36.5]));
        assert!(!mask.contains([56.0, 0.0]) && !mask.contains([0.0, -37.9]));
    }

    #[test]
    fn gains_scale_and_clamp_each_channel() {
        let t = gain_tables([0.5, 1.0, 2.0]);
        assert_eq!(
            (t[0][200], t[1][200], t[2][100], t[2][200]),
            (100, 200, 200, 255)
        );
    }
}
