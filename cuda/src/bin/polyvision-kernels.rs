//! `polyvision-kernels`: run, time and compare the stitch and the preprocessing on either
//! backend. Used by `scripts/compare-opencv-kernels.py` and `cuda/gpu-check.sh`, and handy on a
//! rig to see what the hardware does.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use polyvision_calibration::png_io;
use polyvision_calibration::{CalibrationFile, StitchTable};
use polyvision_cuda::cpu::preprocess::CpuPreprocessor;
use polyvision_cuda::cpu::stitch::CpuStitcher;
use polyvision_cuda::gpu::GpuDevice;
use polyvision_cuda::image::{Nv12, pixels_of};
use polyvision_cuda::preprocess::{Normalisation, Preprocessor, TensorOut, TilePlacement};
use polyvision_cuda::stitch::{StitchPlan, Stitcher};
use polyvision_cuda::{Backend, Preference, Rgba, YuvMatrix};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "polyvision-kernels",
    version,
    about = "Stitch and preprocessing: run, time, compare backends"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Precision {
    F32,
    F16,
}

#[derive(Subcommand)]
enum Command {
    /// Stitch two PNG frames into a panorama PNG.
    Stitch {
        /// Stitching table (`polyvision-calibrate lut`), or a calibration file to build it from.
        #[arg(long)]
        table: PathBuf,
        /// Frame of camera L (PNG).
        #[arg(long)]
        left: PathBuf,
        /// Frame of camera R (PNG).
        #[arg(long)]
        right: PathBuf,
        /// Panorama to write (PNG).
        #[arg(long)]
        out: PathBuf,
        /// auto, cpu or cuda.
        #[arg(long, default_value = "auto")]
        backend: Preference,
    },
    /// Time the stitch; prints one JSON line.
    BenchStitch {
        /// Stitching table, or a calibration file to build it from.
        #[arg(long)]
        table: PathBuf,
        /// Frame of camera L (PNG); random pixels when absent.
        #[arg(long)]
        left: Option<PathBuf>,
        /// Frame of camera R (PNG).
        #[arg(long)]
        right: Option<PathBuf>,
        /// Frames to time.
        #[arg(long, default_value_t = 50)]
        iterations: u32,
        /// CPU threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// cpu or cuda.
        #[arg(long, default_value = "cpu")]
        backend: Preference,
        /// Feed NV12 frames (converted from the RGBA ones).
        #[arg(long)]
        nv12: bool,
        /// Write the last panorama here as raw RGBA.
        #[arg(long)]
        write_output: Option<PathBuf>,
        /// CUDA only: keep the frames on the GPU and time the kernel alone.
        #[arg(long)]
        device_resident: bool,
    },
    /// Time the preprocessing; prints one JSON line.
    BenchPreprocess {
        /// The panorama (PNG); random pixels of --random-size when absent.
        #[arg(long)]
        image: Option<PathBuf>,
        /// Random panorama size, WxH.
        #[arg(long, default_value = "3840x726")]
        random_size: String,
        /// Square tiles side by side across the panorama (each as tall as the panorama).
        #[arg(long, default_value_t = 6)]
        tiles: u32,
        /// Side of the detector's input square.
        #[arg(long, default_value_t = 640)]
        size: u32,
        /// f32 or f16.
        #[arg(long, value_enum, default_value_t = Precision::F32)]
        precision: Precision,
        /// Batches to time.
        #[arg(long, default_value_t = 20)]
        iterations: u32,
        /// CPU threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// cpu or cuda.
        #[arg(long, default_value = "cpu")]
        backend: Preference,
        /// Write the last tensor here (raw little-endian).
        #[arg(long)]
        write_output: Option<PathBuf>,
    },
    /// The GPU's name, compute capability and device-to-device copy bandwidth.
    DeviceInfo,
    /// Write the stitching table of a calibration file.
    Table {
        /// Calibration file.
        #[arg(long)]
        calibration: PathBuf,
        /// Table file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("polyvision-kernels: error: {e:#}");
        std::process::exit(1);
    }
}

/// A table from a table file, or built from a calibration file.
fn load_table(path: &Path) -> Result<Arc<StitchTable>> {
    let head = std::fs::read(path)
        .with_context(|| format!("reading {}", path.display()))?
        .into_iter()
        .take(8)
        .collect::<Vec<u8>>();
    if head == polyvision_calibration::lut::MAGIC {
        return Ok(Arc::new(StitchTable::load(path)?));
    }
    let cal = CalibrationFile::load(path)?;
    Ok(Arc::new(StitchTable::build(
        &cal,
        polyvision_calibration::lut::DEFAULT_BAND_PX,
    )?))
}

fn read_frame(path: &Path) -> Result<(Vec<u32>, [u32; 2])> {
    let (bytes, size) =
        png_io::read_png(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((pixels_of(&bytes).into_owned(), size))
}

/// Deterministic noise frames (xorshift), for timing without files.
fn random_frame(size: [u32; 2], seed: u32) -> Vec<u32> {
    let mut s = seed | 1;
    (0..size[0] as usize * size[1] as usize)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s | 0xFF00_0000
        })
        .collect()
}

/// RGBA → NV12 (BT.709 limited range), for feeding the NV12 path.
fn to_nv12(rgba: &[u32], [w, h]: [u32; 2]) -> (Vec<u8>, Vec<u8>) {
    let (w, h) = (w as usize, h as usize);
    let mut luma = vec![0u8; w * h];
    let mut chroma = vec![0u8; w * h / 2];
    let ch = |p: u32, k: u32| ((p >> (8 * k)) & 255) as f32;
    for y in 0..h {
        for x in 0..w {
            let p = rgba[y * w + x];
            let (r, g, b) = (ch(p, 0), ch(p, 1), ch(p, 2));
            luma[y * w + x] = (16.0 + 0.1826 * r + 0.6142 * g + 0.0620 * b).round() as u8;
            if x % 2 == 0 && y % 2 == 0 {
                let i = (y / 2) * w + x;
                chroma[i] = (128.0 - 0.1006 * r - 0.3386 * g + 0.4392 * b).round() as u8;
                chroma[i + 1] = (128.0 + 0.4392 * r - 0.3989 * g - 0.0403 * b).round() as u8;
            }
        }
    }
    (luma, chroma)
}

fn stitcher(
    backend: Preference,
    threads: Option<usize>,
    plan: StitchPlan,
) -> Result<Box<dyn Stitcher>> {
    Ok(match backend {
        Preference::Cpu => Box::new(CpuStitcher::new(plan, threads)),
        other => Backend::select(other, threads)?.stitcher(plan)?,
    })
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Table { calibration, out } => {
            let cal = CalibrationFile::load(&calibration)?;
            let table = StitchTable::build(&cal, polyvision_calibration::lut::DEFAULT_BAND_PX)?;
            table.save(&out)?;
            let [w, h] = table.panorama_size;
            println!("{}: {w}×{h}", out.display());
            Ok(())
        }
        Command::DeviceInfo => {
            let device = GpuDevice::open(0, None)?;
            let bandwidth = device.copy_bandwidth(1 << 30, 20)?;
            println!(
                "{}",
                json!({
                    "name": device.name,
                    "compute_capability": [device.compute_capability.0, device.compute_capability.1],
                    "module": format!("{:?}", device.module),
                    "copy_gb_per_s": bandwidth / 1e9,
                })
            );
            Ok(())
        }
        Command::Stitch {
            table,
            left,
            right,
            out,
            backend,
        } => {
            let plan = StitchPlan::new(load_table(&table)?)?;
            let (l, lsize) = read_frame(&left)?;
            let (r, rsize) = read_frame(&right)?;
            let mut s = stitcher(backend, None, plan.clone())?;
            let [w, h] = plan.size();
            let mut pano = vec![0u32; w as usize * h as usize];
            let started = Instant::now();
            s.stitch_rgba(
                &Rgba::packed(lsize[0], lsize[1], &l),
                &Rgba::packed(rsize[0], rsize[1], &r),
                &mut pano,
            )?;
            let took = started.elapsed();
            let bytes = png_io::encode_png(polyvision_cuda::image::bytes_of(&pano), [w, h])
                .map_err(anyhow::Error::msg)?;
            std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{}: {w}×{h}, stitched on {} in {:.1} ms",
                out.display(),
                s.name(),
                took.as_secs_f64() * 1e3
            );
            Ok(())
        }
        Command::BenchStitch {
            table,
            left,
            right,
            iterations,
            threads,
            backend,
            nv12,
            write_output,
            device_resident,
        } => {
            let plan = StitchPlan::new(load_table(&table)?)?;
            if device_resident {
                return bench_resident(plan, iterations);
            }
            let t = plan.table();
            let (l, lsize) = match &left {
                Some(p) => read_frame(p)?,
                None => (random_frame(t.left_size, 7), t.left_size),
            };
            let (r, rsize) = match &right {
                Some(p) => read_frame(p)?,
                None => (random_frame(t.right_size, 11), t.right_size),
            };
            let mut s = stitcher(backend, threads, plan.clone())?;
            let [w, h] = plan.size();
            let mut pano = vec![0u32; w as usize * h as usize];
            let (lrgba, rrgba) = (
                Rgba::packed(lsize[0], lsize[1], &l),
                Rgba::packed(rsize[0], rsize[1], &r),
            );
            let yuv = nv12.then(|| (to_nv12(&l, lsize), to_nv12(&r, rsize)));
            let mut frame = |pano: &mut [u32]| -> Result<()> {
                match &yuv {
                    None => s.stitch_rgba(&lrgba, &rrgba, pano)?,
                    Some(((ly, lc), (ry, rc))) => s.stitch_nv12(
                        &Nv12 {
                            width: lsize[0],
                            height: lsize[1],
                            luma_stride: lsize[0],
                            chroma_stride: lsize[0],
                            luma: ly,
                            chroma: lc,
                        },
                        &Nv12 {
                            width: rsize[0],
                            height: rsize[1],
                            luma_stride: rsize[0],
                            chroma_stride: rsize[0],
                            luma: ry,
                            chroma: rc,
                        },
                        YuvMatrix::BT709,
                        pano,
                    )?,
                }
                Ok(())
            };
            frame(&mut pano)?;
            let started = Instant::now();
            for _ in 0..iterations {
                frame(&mut pano)?;
            }
            let seconds = started.elapsed().as_secs_f64() / iterations.max(1) as f64;
            // Bytes every frame must move at least: both sources read once, the table, the panorama.
            let px = w as f64 * h as f64;
            let bytes = if nv12 { 1.5 } else { 4.0 }
                * (lsize[0] as f64 * lsize[1] as f64 + rsize[0] as f64 * rsize[1] as f64)
                + 9.0 * px
                + 4.0 * px;
            if let Some(path) = write_output {
                std::fs::write(&path, polyvision_cuda::image::bytes_of(&pano))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            println!(
                "{}",
                json!({
                    "bench": "stitch",
                    "backend": s.name(),
                    "input": if nv12 { "nv12" } else { "rgba" },
                    "threads": threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                    "cameras": [lsize, rsize],
                    "panorama": [w, h],
                    "ms_per_frame": seconds * 1e3,
                    "frames_per_s": 1.0 / seconds,
                    "gb_per_s": bytes / seconds / 1e9,
                })
            );
            Ok(())
        }
        Command::BenchPreprocess {
            image,
            random_size,
            tiles,
            size,
            precision,
            iterations,
            threads,
            backend,
            write_output,
        } => {
            let (pixels, [w, h]) = match &image {
                Some(p) => read_frame(p)?,
                None => {
                    let (a, b) = random_size
                        .split_once('x')
                        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
                        .context("--random-size must look like 3840x726")?;
                    (random_frame([a, b], 5), [a, b])
                }
            };
            if tiles == 0 || tiles > w {
                bail!("--tiles must be within 1–{w}");
            }
            // Equal tiles across the panorama, as tall as it is.
            let tile_w = w / tiles;
            let placements: Vec<TilePlacement> = (0..tiles)
                .map(|i| TilePlacement::letterbox([i * tile_w, 0, tile_w, h], size))
                .collect();
            let norm = Normalisation::yolo();
            let mut p: Box<dyn Preprocessor> = match backend {
                Preference::Cpu => Box::new(CpuPreprocessor::new(threads)),
                other => Backend::select(other, threads)?.preprocessor(),
            };
            let img = Rgba::packed(w, h, &pixels);
            let n = tiles as usize * 3 * size as usize * size as usize;
            let (mut f32s, mut f16s) = (Vec::new(), Vec::new());
            match precision {
                Precision::F32 => f32s.resize(n, 0.0f32),
                Precision::F16 => f16s.resize(n, 0u16),
            }
            let mut once = |f32s: &mut Vec<f32>, f16s: &mut Vec<u16>| -> Result<()> {
                let out = match precision {
                    Precision::F32 => TensorOut::F32(f32s),
                    Precision::F16 => TensorOut::F16(f16s),
                };
                p.run(&img, &placements, &norm, size, out)?;
                Ok(())
            };
            once(&mut f32s, &mut f16s)?;
            let started = Instant::now();
            for _ in 0..iterations {
                once(&mut f32s, &mut f16s)?;
            }
            let seconds = started.elapsed().as_secs_f64() / iterations.max(1) as f64;
            if let Some(path) = write_output {
                let bytes: &[u8] = match precision {
                    Precision::F32 => bytemuck::cast_slice(&f32s),
                    Precision::F16 => bytemuck::cast_slice(&f16s),
                };
                std::fs::write(&path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            println!(
                "{}",
                json!({
                    "bench": "preprocess",
                    "backend": p.name(),
                    "precision": match precision { Precision::F32 => "f32", Precision::F16 => "f16" },
                    "threads": threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                    "panorama": [w, h],
                    "tiles": placements.iter().map(|t| t.crop).collect::<Vec<_>>(),
                    "size": size,
                    "ms_per_batch": seconds * 1e3,
                })
            );
            Ok(())
        }
    }
}

/// The CUDA stitch with frames already on the GPU: kernel time only.
fn bench_resident(plan: StitchPlan, iterations: u32) -> Result<()> {
    use polyvision_cuda::gpu::stitch::GpuStitcher;
    let device = GpuDevice::open(0, None)?;
    let t = plan.table();
    let (ls, rs) = (t.left_size, t.right_size);
    let (l, r) = (random_frame(ls, 7), random_frame(rs, 11));
    let [w, h] = plan.size();
    let mut s = GpuStitcher::new(device.clone(), plan.clone())?;
    s.upload_rgba(
        &Rgba::packed(ls[0], ls[1], &l),
        &Rgba::packed(rs[0], rs[1], &r),
    )?;
    let dims = |s: [u32; 2]| [s[0], s[1], s[0]];
    s.launch_rgba(dims(ls), dims(rs))?;
    device.synchronize()?;
    let started = Instant::now();
    for _ in 0..iterations {
        s.launch_rgba(dims(ls), dims(rs))?;
    }
    device.synchronize()?;
    let seconds = started.elapsed().as_secs_f64() / iterations.max(1) as f64;
    let px = w as f64 * h as f64;
    let bytes = 4.0 * (ls[0] as f64 * ls[1] as f64 + rs[0] as f64 * rs[1] as f64) + 13.0 * px;
    println!(
        "{}",
        json!({
            "bench": "stitch",
            "backend": "cuda",
            "device": device.name,
            "module": format!("{:?}", device.module),
            "input": "rgba, resident on the GPU",
            "cameras": [ls, rs],
            "panorama": [w, h],
            "ms_per_frame": seconds * 1e3,
            "frames_per_s": 1.0 / seconds,
            "gb_per_s": bytes / seconds / 1e9,
        })
    );
    Ok(())
}
