//! `polyvision-edge detect`: one panorama image through the detection stage.

use anyhow::{Context, Result, bail};
use polyvision_calibration::png_io;
use polyvision_cuda::image::pixels_of;
use polyvision_cuda::{Backend, Preference, Rgba};
use polyvision_edge::detect::backend::TractBackend;
use polyvision_edge::detect::card::ModelCard;
use polyvision_edge::detect::detector::{Detector, DetectorConfig};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `detect`.
#[derive(clap::Args)]
pub(crate) struct DetectArgs {
    /// The detector (ONNX), with its card next to it (`X.card.json`).
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// The panorama (PNG).
    #[arg(long)]
    pub(crate) image: PathBuf,
    /// Detections to write: `1,-1,left,top,width,height,score,class`.
    #[arg(long)]
    pub(crate) out: PathBuf,
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

pub(crate) fn run(args: &DetectArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.threshold) {
        bail!("--threshold must be within 0–1, got {}", args.threshold);
    }
    let (card_path, card) = ModelCard::for_model(&args.model).map_err(anyhow::Error::msg)?;
    let backend = TractBackend::load(&args.model, &card, args.batch.max(1), args.threads.max(1))
        .map_err(anyhow::Error::msg)?;
    let pixels = Backend::select(Preference::Auto, Some(args.threads.max(1)))?;
    let mut detector = Detector::new(
        Box::new(backend),
        pixels.preprocessor(),
        card,
        DetectorConfig {
            score_threshold: args.threshold,
            tile_overlap: args.tile_overlap,
            ..DetectorConfig::default()
        },
    );
    let (bytes, [w, h]) = png_io::read_png(&args.image)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.image.display()))?;
    let px = pixels_of(&bytes);
    let started = Instant::now();
    let found = detector
        .detect(&Rgba::packed(w, h, &px))
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?;
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
