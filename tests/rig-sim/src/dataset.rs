//! Detector training and evaluation data: stitched panoramas with their true boxes.
//!
//! Each clip is a procedural match with its own seed, kits, exposure, white balance and mast
//! position. Both cameras are rendered (motion blur included), stitched into the panorama with
//! the clip's true calibration and the CPU stitcher the daemon uses, and saved as PNG next to the
//! panorama's MOTChallenge truth (`frame,id,x,y,w,h,1,class,visibility`; classes 1 player,
//! 2 goalkeeper, 3 referee, 4 ball). The detector therefore learns from the same seam, blend and
//! resampling it meets on the rig.
//!
//! Layout: `OUT/clip-SEED/frame-NNNNNN.png`, `OUT/clip-SEED/gt.txt`, `OUT/clip-SEED/clip.json`.

use crate::motion::Motion;
use crate::motion::procedural::ProceduralMotion;
use crate::render::Image;
use crate::rig::RigConfig;
use crate::scene::{Cast, Kits, Rng};
use crate::sim::Renderer;
use crate::truth;
use anyhow::{Context, Result};
use polyvision_calibration::lut::{DEFAULT_BAND_PX, StitchTable};
use polyvision_cuda::cpu::stitch::CpuStitcher;
use polyvision_cuda::image::{bytes_of, pixels_of};
use polyvision_cuda::{Rgba, StitchPlan, Stitcher};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to write.
#[derive(Debug, Clone)]
pub struct DatasetJob {
    /// Output folder.
    pub out: PathBuf,
    /// Seed of the first clip; clip k uses `first_seed + k`.
    pub first_seed: u64,
    /// Number of clips.
    pub clips: u64,
    /// Panoramas saved per clip, spread evenly over its length.
    pub frames_per_clip: u64,
    /// Length of each clip's match, seconds.
    pub seconds: f64,
    /// Vary kits, exposure, white balance and mast; otherwise the default rig and kits.
    pub vary: bool,
}

/// The look of one clip, saved as `clip.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClipLook {
    /// Seed of cast, stadium and motion.
    pub seed: u64,
    /// Shirt colours: home, away, home goalkeeper, away goalkeeper, officials.
    pub shirts: [[u8; 3]; 5],
    /// Exposure of the left and right camera.
    pub exposure: [f64; 2],
    /// Mast height and distance behind the touchline, metres.
    pub mast_m: [f64; 2],
    /// Frames saved (1-based, as in `gt.txt`).
    pub frames: Vec<u64>,
}

/// The rig and kits of clip `seed`: light from a dull evening to a bright noon, cameras that
/// disagree a little on exposure and white balance, masts of different heights.
pub fn clip_setup(seed: u64, vary: bool) -> (RigConfig, Kits) {
    let mut rig = RigConfig::default();
    if !vary {
        return (rig, Kits::standard());
    }
    let mut rng = Rng::new(seed.wrapping_mul(0xA24B_AED4).wrapping_add(3));
    let light = rng.range(0.6, 1.3);
    for cam in [&mut rig.cameras.left, &mut rig.cameras.right] {
        cam.exposure = light * rng.range(0.94, 1.06);
        let warm = rng.range(-0.07, 0.07);
        cam.white_balance = [
            1.0 + warm + rng.range(-0.02, 0.02),
            1.0 + rng.range(-0.02, 0.02),
            1.0 - warm + rng.range(-0.02, 0.02),
        ];
    }
    rig.mast.height_m = rng.range(11.0, 15.0);
    rig.mast.distance_m = rng.range(9.0, 15.0);
    (rig, Kits::random(seed))
}

/// Writes the dataset; returns the number of panoramas saved.
pub fn write_dataset(job: &DatasetJob, progress: bool) -> Result<u64> {
    let mut saved = 0;
    for k in 0..job.clips {
        let seed = job.first_seed + k;
        saved += write_clip(job, seed)?;
        if progress {
            eprintln!(
                "dataset: clip {}/{} (seed {seed}) done, {saved} panoramas",
                k + 1,
                job.clips
            );
        }
    }
    Ok(saved)
}

fn write_clip(job: &DatasetJob, seed: u64) -> Result<u64> {
    let (rig, kits) = clip_setup(seed, job.vary);
    rig.validate()
        .map_err(|(field, why)| anyhow::anyhow!("clip {seed}: rig field {field}: {why}"))?;
    let dir = job.out.join(format!("clip-{seed}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let renderer = Renderer::with_cast(rig.clone(), seed, Cast::with_kits(seed, kits));
    let calibration = truth::calibration(rig.pitch, &renderer.cameras, &renderer.panorama);
    let table = StitchTable::build(&calibration, DEFAULT_BAND_PX)
        .with_context(|| format!("clip {seed}: stitching table"))?;
    let plan = StitchPlan::new(Arc::new(table)).context("stitching table")?;
    let [pw, ph] = plan.size();
    let mut stitcher = CpuStitcher::new(plan, None);

    let mut motion = ProceduralMotion::new(rig.pitch, rig.fps, job.seconds, seed);
    let total = motion.frame_count();
    let every = (total / job.frames_per_clip.max(1)).max(1);
    let mut gt = BufWriter::new(std::fs::File::create(dir.join("gt.txt"))?);
    let cams = &renderer.cameras;
    let mut images = [
        Image::new(cams[0].width, cams[0].height),
        Image::new(cams[1].width, cams[1].height),
    ];
    let mut panorama = vec![0u32; pw as usize * ph as usize];
    let mut ids = Vec::new();
    let mut frames = Vec::new();
    while let Some(frame) = motion.next_frame() {
        // Skip the first half-interval so kick-off formations are not over-represented.
        if !(frame.index + every / 2).is_multiple_of(every)
            || frames.len() as u64 >= job.frames_per_clip
        {
            continue;
        }
        for (i, image) in images.iter_mut().enumerate() {
            renderer.draw(i, &frame, image, &mut ids);
        }
        let (l, r) = (pixels_of(&images[0].rgba), pixels_of(&images[1].rgba));
        stitcher.stitch_rgba(
            &Rgba::packed(cams[0].width, cams[0].height, &l),
            &Rgba::packed(cams[1].width, cams[1].height, &r),
            &mut panorama,
        )?;
        let path = dir.join(format!("frame-{:06}.png", frame.index + 1));
        write_rgb_png(&path, pw, ph, bytes_of(&panorama))?;
        let views = renderer.views_only(&renderer.panorama, &frame, &mut ids);
        truth::write_gt_rows(&mut gt, &renderer.cast, &frame, &renderer.panorama, &views)?;
        frames.push(frame.index + 1);
    }
    gt.flush()?;
    let look = ClipLook {
        seed,
        shirts: [
            kits.home.0,
            kits.away.0,
            kits.home_goalkeeper.0,
            kits.away_goalkeeper.0,
            kits.officials.0,
        ],
        exposure: [rig.cameras.left.exposure, rig.cameras.right.exposure],
        mast_m: [rig.mast.height_m, rig.mast.distance_m],
        frames,
    };
    std::fs::write(dir.join("clip.json"), serde_json::to_string_pretty(&look)?)?;
    Ok(look.frames.len() as u64)
}

/// RGBA bytes → RGB PNG with fast compression (datasets are large, read once).
fn write_rgb_png(path: &Path, width: u32, height: u32, rgba: &[u8]) -> Result<()> {
    let file = BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    let mut enc = png::Encoder::new(file, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let rgb: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    enc.write_header()
        .and_then(|mut w| w.write_image_data(&rgb))
        .with_context(|| format!("writing {}", path.display()))
}
