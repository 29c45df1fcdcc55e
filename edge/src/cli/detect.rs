//! `polyvision-edge detect`: one panorama image through the detection stage;
//! `polyvision-edge detect-eval`: a folder of panoramas with true boxes, scored;
//! `polyvision-edge bench-detect`: milliseconds per tile and per panorama.

use anyhow::{Context, Result, bail};
use polyvision_calibration::png_io;
use polyvision_cuda::image::pixels_of;
use polyvision_cuda::{Backend, Normalisation, Preference, Rgba, TensorOut};
use polyvision_edge::detect::backend::{InferenceBackend, TractBackend};
use polyvision_edge::detect::card::ModelCard;
use polyvision_edge::detect::detector::{Detector, DetectorConfig};
use polyvision_edge::detect::eval::{ScoredBox, TruthBox, evaluate};
use polyvision_edge::track::tracker::Class;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The detector's settings, shared by the detection commands.
#[derive(clap::Args, Clone)]
pub(crate) struct DetectorArgs {
    /// The detector (ONNX), with its card next to it (`X.card.json`) [default: the shipped
    /// model (`process`: the one trained on real footage): models/ in the current folder, in
    /// the source tree the binary was built in, or /usr/share/polyvision/models].
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Lowest score kept.
    #[arg(long, default_value_t = 0.25)]
    pub(crate) threshold: f32,
    /// Threads for inference and preprocessing.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Tiles per inference run.
    #[arg(long, default_value_t = 4)]
    pub(crate) batch: usize,
    /// Overlap of neighbouring tiles, pixels (at least the largest object).
    #[arg(long, default_value_t = 200)]
    pub(crate) tile_overlap: u32,
}

/// The shipped detector, wherever the binary runs from: `models/` under the current folder,
/// the source tree's (the binary in `target/release/`), the installed one beside `bin/`, or the
/// system's. The first that exists; else the first candidate, so the error names it.
pub(crate) fn shipped_model(name: &str) -> PathBuf {
    let mut candidates = vec![Path::new("models").join(name)];
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("../../models").join(name));
        candidates.push(dir.join("../share/polyvision/models").join(name));
    }
    candidates.push(Path::new("/usr/share/polyvision/models").join(name));
    candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or(&candidates[0])
        .clone()
}

/// The shipped model trained on rendered footage (the default of every command but `process`).
pub(crate) const RENDERED_MODEL: &str = "polyvision-det.onnx";

/// The shipped model trained on real footage (the default of `process`).
pub(crate) const REAL_MODEL: &str = "polyvision-det-real.onnx";

impl DetectorArgs {
    /// The model given, or the shipped one called `default_name`.
    pub(crate) fn model_or(&self, default_name: &str) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(|| shipped_model(default_name))
    }

    /// The model given, or the shipped rendered-footage model.
    pub(crate) fn model(&self) -> PathBuf {
        self.model_or(RENDERED_MODEL)
    }
}

/// Arguments of `detect`.
#[derive(clap::Args)]
pub(crate) struct DetectArgs {
    #[command(flatten)]
    pub(crate) detector: DetectorArgs,
    /// The panorama (PNG).
    #[arg(long)]
    pub(crate) image: PathBuf,
    /// Detections to write: `1,-1,left,top,width,height,score,class`.
    #[arg(long)]
    pub(crate) out: PathBuf,
}

/// Arguments of `detect-eval`.
#[derive(clap::Args)]
pub(crate) struct DetectEvalArgs {
    #[command(flatten)]
    pub(crate) detector: DetectorArgs,
    /// Folder of clips as `rig-sim dataset` writes them: `clip-*/frame-NNNNNN.png` and
    /// `clip-*/gt.txt` (MOTChallenge truth with class and visibility).
    #[arg(long)]
    pub(crate) dataset: PathBuf,
    /// Candidates down to this score enter the average precision (the operating point stays
    /// at --threshold).
    #[arg(long, default_value_t = 0.05)]
    pub(crate) ap_threshold: f32,
    /// True boxes less visible than this are ignored (neither missed nor hit).
    #[arg(long, default_value_t = 0.25)]
    pub(crate) min_visibility: f64,
    /// Also write the truth and the detections as COCO JSON into this folder
    /// (`truth.json`, `detections.json`, `scores.json`) for `scripts/compare-coco.py`.
    #[arg(long)]
    pub(crate) coco: Option<PathBuf>,
    /// Score players, goalkeepers and referees as one class, "person" (for truth that does
    /// not tell them apart, such as the real labelled frames).
    #[arg(long)]
    pub(crate) people: bool,
    /// Also score with the pitch mask: detections whose foot point (bottom centre; the ball's
    /// centre) lies outside the clip's pitch outline, `clip-*/pitch.txt` (one `x,y` image
    /// point per line), dropped; clips without an outline are not masked. Both tables are printed; the COCO files hold the masked one
    /// (`scores-unmasked.json` the other).
    #[arg(long)]
    pub(crate) pitch_mask: bool,
}

/// Arguments of `bench-detect`.
#[derive(clap::Args)]
pub(crate) struct BenchDetectArgs {
    #[command(flatten)]
    pub(crate) detector: DetectorArgs,
    /// The panorama (PNG).
    #[arg(long)]
    pub(crate) image: PathBuf,
    /// Timed panoramas after one warm-up.
    #[arg(long, default_value_t = 5)]
    pub(crate) runs: usize,
    /// Write the first batch of preprocessed tiles here (raw little-endian f32, NCHW) so
    /// another runtime can be timed on the very same input.
    #[arg(long)]
    pub(crate) dump_input: Option<PathBuf>,
}

/// The detection stage from the common arguments; also returns the card's path.
pub(crate) fn build_detector(
    args: &DetectorArgs,
    threshold: f32,
    card_min_scores: bool,
) -> Result<(Detector, PathBuf)> {
    if !(0.0..=1.0).contains(&threshold) {
        bail!("--threshold must be within 0–1, got {threshold}");
    }
    let model = args.model();
    let (card_path, card) = ModelCard::for_model(&model).map_err(anyhow::Error::msg)?;
    let backend = TractBackend::load(&model, &card, args.batch.max(1), args.threads.max(1))
        .map_err(anyhow::Error::msg)?;
    let pixels = Backend::select(Preference::Auto, Some(args.threads.max(1)))?;
    let detector = Detector::new(
        Box::new(backend),
        pixels.preprocessor(),
        card,
        DetectorConfig {
            score_threshold: threshold,
            tile_overlap: args.tile_overlap,
            card_min_scores,
            ..DetectorConfig::default()
        },
    );
    Ok((detector, card_path))
}

fn read_panorama(path: &Path) -> Result<(Vec<u8>, [u32; 2])> {
    png_io::read_png(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

pub(crate) fn run(args: &DetectArgs) -> Result<()> {
    let (mut detector, card_path) = build_detector(&args.detector, args.detector.threshold, true)?;
    let (bytes, [w, h]) = read_panorama(&args.image)?;
    let px = pixels_of(&bytes);
    let started = Instant::now();
    let found = detector
        .detect(&Rgba::packed(w, h, &px))
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.detector.model().display()))?;
    let took = started.elapsed().as_secs_f64();
    let tiles = detector
        .layout([w, h])
        .map_err(anyhow::Error::msg)?
        .tiles
        .len();
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?,
    );
    for d in &found {
        let [l, t, bw, bh] = d.bbox;
        writeln!(
            f,
            "1,-1,{l:.2},{t:.2},{bw:.2},{bh:.2},{:.3},{}",
            d.score,
            d.class.mot()
        )?;
    }
    f.flush()?;
    eprintln!(
        "detect: {} detections in {w}×{h} ({tiles} tiles, {}, card {}) in {:.1} ms → {}",
        found.len(),
        detector.backend(),
        card_path.display(),
        took * 1e3,
        args.out.display()
    );
    Ok(())
}

/// The classes scored, in the order of the MOTChallenge class column (1–4).
const CLASSES: [Class; 4] = [
    Class::Player,
    Class::Goalkeeper,
    Class::Referee,
    Class::Ball,
];

/// One panorama of a dataset and its true boxes.
struct Sample {
    image: PathBuf,
    truths: Vec<([f64; 4], usize, f64)>,
    /// The pitch outline of its clip, when the clip has one (`pitch.txt`).
    pitch: Option<std::sync::Arc<Vec<[f64; 2]>>>,
}

/// Reads a polygon, one `x,y` per line; errors name file and line.
fn read_outline(path: &Path) -> Result<Vec<[f64; 2]>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut points = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || anyhow::anyhow!("{}:{}: expected x,y, got {line:?}", path.display(), n + 1);
        let (x, y) = line.split_once(',').ok_or_else(bad)?;
        let x: f64 = x.trim().parse().map_err(|_| bad())?;
        let y: f64 = y.trim().parse().map_err(|_| bad())?;
        if !x.is_finite() || !y.is_finite() {
            return Err(bad());
        }
        points.push([x, y]);
    }
    if points.len() < 3 {
        bail!(
            "{}: a pitch outline needs at least 3 points",
            path.display()
        );
    }
    Ok(points)
}

/// Whether `p` lies inside `polygon` (even-odd rule).
fn inside(polygon: &[[f64; 2]], [x, y]: [f64; 2]) -> bool {
    let mut within = false;
    let mut j = polygon.len() - 1;
    for i in 0..polygon.len() {
        let ([xi, yi], [xj, yj]) = (polygon[i], polygon[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            within = !within;
        }
        j = i;
    }
    within
}

/// Reads `clip-*/gt.txt` and lists `clip-*/frame-NNNNNN.png`; errors name file and line.
fn read_dataset(dir: &Path) -> Result<Vec<Sample>> {
    let mut clips: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    clips.sort();
    let mut samples = Vec::new();
    for clip in clips {
        let gt_path = clip.join("gt.txt");
        let text = std::fs::read_to_string(&gt_path)
            .with_context(|| format!("cannot read {}", gt_path.display()))?;
        let mut by_frame: std::collections::BTreeMap<u64, Vec<([f64; 4], usize, f64)>> =
            Default::default();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let bad = || {
                anyhow::anyhow!(
                    "{}:{}: expected frame,id,x,y,w,h,conf,class,visibility, got {line:?}",
                    gt_path.display(),
                    n + 1
                )
            };
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() < 9 {
                return Err(bad());
            }
            let frame: u64 = f[0].parse().map_err(|_| bad())?;
            let num = |i: usize| f[i].parse::<f64>().map_err(|_| bad());
            let class: i64 = f[7].parse().map_err(|_| bad())?;
            let Some(class) = Class::from_mot(class) else {
                continue;
            };
            let index = CLASSES.iter().position(|c| *c == class).ok_or_else(bad)?;
            by_frame.entry(frame).or_default().push((
                [num(2)?, num(3)?, num(4)?, num(5)?],
                index,
                num(8)?,
            ));
        }
        let mut frames: Vec<(u64, PathBuf)> = std::fs::read_dir(&clip)
            .with_context(|| format!("cannot read {}", clip.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let stem = p.file_stem()?.to_str()?.strip_prefix("frame-")?.to_string();
                (p.extension()? == "png").then_some(())?;
                Some((stem.parse().ok()?, p))
            })
            .collect();
        frames.sort();
        let outline = clip.join("pitch.txt");
        let pitch = if outline.exists() {
            Some(std::sync::Arc::new(read_outline(&outline)?))
        } else {
            None
        };
        for (frame, image) in frames {
            samples.push(Sample {
                image,
                truths: by_frame.remove(&frame).unwrap_or_default(),
                pitch: pitch.clone(),
            });
        }
    }
    if samples.is_empty() {
        bail!(
            "{}: no panoramas (expected clip-*/frame-NNNNNN.png with clip-*/gt.txt)",
            dir.display()
        );
    }
    Ok(samples)
}

pub(crate) fn run_eval(args: &DetectEvalArgs) -> Result<()> {
    let operating = args.detector.threshold;
    // Every candidate enters the average precision; the card's per-class scores only set the
    // operating point.
    let (mut detector, card_path) =
        build_detector(&args.detector, args.ap_threshold.min(operating), false)?;
    let (_, card) = ModelCard::for_model(&args.detector.model()).map_err(anyhow::Error::msg)?;
    let per_model_class = card.class_thresholds(operating);
    let thresholds: Vec<f32> = CLASSES
        .iter()
        .map(|c| {
            card.tracker_classes()
                .iter()
                .position(|t| *t == Some(*c))
                .map_or(operating, |i| per_model_class[i])
        })
        .collect();
    let samples = read_dataset(&args.dataset)?;
    if args.pitch_mask && samples.iter().all(|s| s.pitch.is_none()) {
        bail!(
            "--pitch-mask: no clip of {} has a pitch outline (pitch.txt)",
            args.dataset.display()
        );
    }
    // With --people every person class is scored as the first (index 0).
    let scored = |class: usize| {
        if args.people && CLASSES[class] != Class::Ball {
            0
        } else {
            class
        }
    };
    // Each detection with whether the pitch mask drops it.
    let (mut truths, mut dets) = (Vec::new(), Vec::<(ScoredBox, bool)>::new());
    let mut seconds = 0.0;
    let mut size = [0, 0];
    for (i, s) in samples.iter().enumerate() {
        let (bytes, [w, h]) = read_panorama(&s.image)?;
        size = [w, h];
        let px = pixels_of(&bytes);
        let started = Instant::now();
        let found = detector
            .detect(&Rgba::packed(w, h, &px))
            .map_err(|e| anyhow::anyhow!("{}: {e}", s.image.display()))?;
        seconds += started.elapsed().as_secs_f64();
        for &(bbox, class, visibility) in &s.truths {
            truths.push(TruthBox {
                image: i,
                class: scored(class),
                bbox,
                ignore: visibility < args.min_visibility,
            });
        }
        for d in found {
            if let Some(class) = CLASSES.iter().position(|c| *c == d.class) {
                let [l, t, w, h] = d.bbox;
                let foot = if d.class == Class::Ball {
                    [l + w / 2.0, t + h / 2.0]
                } else {
                    [l + w / 2.0, t + h]
                };
                let outside = s.pitch.as_ref().is_some_and(|p| !inside(p, foot));
                let det = ScoredBox {
                    image: i,
                    class: scored(class),
                    bbox: d.bbox,
                    score: d.score,
                };
                dets.push((det, outside));
            }
        }
    }
    let all: Vec<ScoredBox> = dets.iter().map(|(d, _)| *d).collect();
    let scores = evaluate(&truths, &all, &thresholds);
    println!(
        "detect-eval: {} panoramas {}×{} from {}, model {} (card {}), {:.0} ms per panorama ({})",
        samples.len(),
        size[0],
        size[1],
        args.dataset.display(),
        args.detector.model().display(),
        card_path.display(),
        seconds / samples.len() as f64 * 1e3,
        detector.backend()
    );
    print_scores(&scores, args.people);
    println!(
        "(recall and precision at IoU 0.5; c.: a hit is a centre within max(5 px, half the true diagonal); at the operating scores {})",
        CLASSES
            .iter()
            .zip(&thresholds)
            .map(|(c, t)| format!("{} {t}", c.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (scores, kept, unmasked) = if args.pitch_mask {
        let kept: Vec<ScoredBox> = dets
            .iter()
            .filter(|(_, outside)| !outside)
            .map(|(d, _)| *d)
            .collect();
        let masked = evaluate(&truths, &kept, &thresholds);
        println!(
            "with the pitch mask ({} of {} detections outside the pitch outlines dropped):",
            all.len() - kept.len(),
            all.len()
        );
        print_scores(&masked, args.people);
        (masked, kept, Some(scores))
    } else {
        (scores, all, None)
    };
    if let Some(dir) = &args.coco {
        write_coco(dir, &samples, &truths, &kept, &scores, size, args.people)?;
        if let Some(unmasked) = &unmasked {
            let path = dir.join("scores-unmasked.json");
            std::fs::write(
                &path,
                serde_json::to_string(&scores_json(unmasked, args.people))?,
            )
            .with_context(|| format!("writing {}", path.display()))?;
        }
        println!("detect-eval: COCO files in {}", dir.display());
    }
    Ok(())
}

/// The name a class is scored under (`person` for the first when people are one class).
fn scored_name(class: usize, people: bool) -> &'static str {
    if people && class == 0 {
        "person"
    } else {
        CLASSES[class].name()
    }
}

/// The table of per-class figures (with `people`, only person and ball).
fn print_scores(scores: &[polyvision_edge::detect::eval::ClassScore], people: bool) {
    let fmt = |v: Option<f64>| v.map_or("  –  ".to_string(), |v| format!("{v:.3}"));
    println!(
        "{:<11} {:>6} {:>6} {:>7} {:>10} {:>7} {:>9} {:>8} {:>9}",
        "class",
        "truths",
        "dets",
        "AP@0.5",
        "AP@.5:.95",
        "recall",
        "precision",
        "c.recall",
        "c.precis."
    );
    for s in scores
        .iter()
        .filter(|s| !people || s.class == 0 || CLASSES[s.class] == Class::Ball)
    {
        println!(
            "{:<11} {:>6} {:>6} {:>7} {:>10} {:>7.3} {:>9.3} {:>8.3} {:>9.3}",
            scored_name(s.class, people),
            s.truths,
            s.detections,
            fmt(s.ap50),
            fmt(s.ap50_95),
            s.recall,
            s.precision,
            s.centre_recall,
            s.centre_precision
        );
    }
}

/// Our figures as `scores.json` holds them.
fn scores_json(
    scores: &[polyvision_edge::detect::eval::ClassScore],
    people: bool,
) -> serde_json::Value {
    use serde_json::json;
    scores
        .iter()
        .map(|s| {
            json!({"category_id": s.class + 1, "name": scored_name(s.class, people),
                   "truths": s.truths, "ap50": s.ap50, "ap50_95": s.ap50_95,
                   "recall": s.recall, "precision": s.precision,
                   "centre_recall": s.centre_recall, "centre_precision": s.centre_precision})
        })
        .collect()
}

/// COCO JSON of the truth and the detections, and our own figures, for the cross-check.
fn write_coco(
    dir: &Path,
    samples: &[Sample],
    truths: &[TruthBox],
    dets: &[ScoredBox],
    scores: &[polyvision_edge::detect::eval::ClassScore],
    [w, h]: [u32; 2],
    people: bool,
) -> Result<()> {
    let name = |class: usize| scored_name(class, people);
    use serde_json::json;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let images: Vec<_> = (0..samples.len())
        .map(|i| json!({"id": i + 1, "width": w, "height": h, "file_name": samples[i].image}))
        .collect();
    let categories: Vec<_> = CLASSES
        .iter()
        .enumerate()
        .map(|(k, _)| json!({"id": k + 1, "name": name(k)}))
        .collect();
    let annotations: Vec<_> = truths
        .iter()
        .enumerate()
        .map(|(n, t)| {
            json!({"id": n + 1, "image_id": t.image + 1, "category_id": t.class + 1,
                   "bbox": t.bbox, "area": t.bbox[2] * t.bbox[3], "iscrowd": u8::from(t.ignore)})
        })
        .collect();
    let truth = json!({"info": {"description": "polyvision-edge detect-eval"}, "images": images,
                       "categories": categories, "annotations": annotations});
    let detections: Vec<_> = dets
        .iter()
        .map(|d| {
            json!({"image_id": d.image + 1, "category_id": d.class + 1, "bbox": d.bbox,
                   "score": d.score})
        })
        .collect();
    let ours = scores_json(scores, people);
    for (name, value) in [
        ("truth.json", truth),
        ("detections.json", json!(detections)),
        ("scores.json", ours),
    ] {
        std::fs::write(dir.join(name), serde_json::to_string(&value)?)
            .with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    Ok(())
}

pub(crate) fn run_bench(args: &BenchDetectArgs) -> Result<()> {
    let d = &args.detector;
    let (mut detector, _) = build_detector(d, d.threshold, true)?;
    let (bytes, [w, h]) = read_panorama(&args.image)?;
    let px = pixels_of(&bytes);
    let panorama = Rgba::packed(w, h, &px);
    detector
        .detect(&panorama)
        .map_err(|e| anyhow::anyhow!("{}: {e}", d.model().display()))?;
    let runs = args.runs.max(1);
    let started = Instant::now();
    let mut found = 0;
    for _ in 0..runs {
        found = detector
            .detect(&panorama)
            .map_err(|e| anyhow::anyhow!("{}: {e}", d.model().display()))?
            .len();
    }
    let per_panorama = started.elapsed().as_secs_f64() / runs as f64;
    let layout = detector.layout([w, h]).map_err(anyhow::Error::msg)?.clone();
    let tiles = layout.tiles.len();

    // Inference alone on one batch of tiles, the figure another runtime is compared with.
    let (_, card) = ModelCard::for_model(&d.model()).map_err(anyhow::Error::msg)?;
    let batch = d.batch.max(1);
    let mut backend = TractBackend::load(&d.model(), &card, batch, d.threads.max(1))
        .map_err(anyhow::Error::msg)?;
    let pixels = Backend::select(Preference::Auto, Some(d.threads.max(1)))?;
    let mut preprocessor = pixels.preprocessor();
    let s = card.input_size as usize;
    let mut input = vec![0f32; batch * 3 * s * s];
    let used = layout.tiles.len().min(batch);
    preprocessor.run(
        &panorama,
        &layout.tiles[..used],
        &Normalisation::yolo(),
        card.input_size,
        TensorOut::F32(&mut input[..used * 3 * s * s]),
    )?;
    if let Some(path) = &args.dump_input {
        let raw: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(path, raw).with_context(|| format!("writing {}", path.display()))?;
    }
    backend.run(&input).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    for _ in 0..runs {
        backend.run(&input).map_err(anyhow::Error::msg)?;
    }
    let per_batch = started.elapsed().as_secs_f64() / runs as f64;
    println!(
        "bench-detect: {w}×{h} panorama, {tiles} tiles of {s}×{s}, batch {batch}, {} threads, {found} detections",
        d.threads
    );
    match card.gmacs_per_tile {
        Some(g) => println!(
            "bench-detect: model {}: {g:.2} GMAC per tile (card), {:.1} GFLOP per panorama ({tiles} tiles × 2 × GMAC)",
            card.name,
            2.0 * g * tiles as f64
        ),
        None => println!(
            "bench-detect: model {}: its card states no gmacs_per_tile",
            card.name
        ),
    }
    println!(
        "bench-detect: tract inference {:.1} ms per batch of {batch}, {:.1} ms per tile",
        per_batch * 1e3,
        per_batch * 1e3 / batch as f64
    );
    println!(
        "bench-detect: whole stage (preprocess, inference, decode, merge) {:.0} ms per panorama, {:.2} panoramas/s",
        per_panorama * 1e3,
        1.0 / per_panorama
    );
    Ok(())
}
