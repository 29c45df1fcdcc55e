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
use polyvision_calibration::ViewGeometry;
use polyvision_cuda::{Rgba, Stitcher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
                "polyvision_unpaired_frames_total",
                "Camera frames without a partner.",
                &self.unpaired,
            ),
            (
                "polyvision_source_rebuilds_total",
                "Live camera sources rebuilt after a failure.",
                &self.rebuilds,
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
    counters: Arc<PipelineCounters>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pairer = Pairer::new(tolerance_ns);
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
                c.add(started);
                if tx.send((index, l, r)).is_err() {
                    return;
                }
            }
            counters
                .unpaired
                .store(pairer.unpaired(), Ordering::Relaxed);
        }
        counters
            .unpaired
            .store(pairer.unpaired(), Ordering::Relaxed);
    })
}

fn stitch_thread(
    mut stitcher: Box<dyn Stitcher>,
    size: [u32; 2],
    rx: Receiver<Pair>,
    tx: SyncSender<Panorama>,
    counters: Arc<PipelineCounters>,
) -> std::thread::JoinHandle<Result<(), String>> {
    std::thread::spawn(move || {
        let c = counters.stage("stitch");
        for (index, l, r) in rx {
            let started = Instant::now();
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
) -> std::thread::JoinHandle<Result<(), String>> {
    std::thread::spawn(move || {
        let c = counters.stage("detect");
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
        }
        Ok(())
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
    let pairing = pair_thread(lrx, rrx, ptx, pair_tolerance_ns, counters.clone());
    let stitching = stitch_thread(stitcher, panorama_size, prx, stx, counters.clone());
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
    let _ = pairing.join();
    for (name, handle) in [("stitch", stitching), ("detect", detecting)] {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(format!("the {name} stage panicked")),
        }
    }
    Ok(PipelineOutcome {
        frames,
        detections,
        points,
        rows,
        stages: counters.figures(),
        unpaired: counters.unpaired.load(Ordering::Relaxed),
        wall_s: started.elapsed().as_secs_f64(),
        source_error,
    })
}
