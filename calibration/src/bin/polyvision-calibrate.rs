//! `polyvision-calibrate`: field homographies, lens distortion, panorama and stitching tables
//! from the command line.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use polyvision_calibration::file::{self, CameraCalibration, FitRecord, Provenance};
use polyvision_calibration::fit::{FieldFit, FitOptions, fit_field_homography};
use polyvision_calibration::lines::{Coefficients, distortion_from_lines};
use polyvision_calibration::panorama::{PanoramaOptions, plan_panorama};
use polyvision_calibration::png_io;
use polyvision_calibration::seam::{Frame, register_seam};
use polyvision_calibration::{CalibrationFile, LensModel, PitchSize, PointsFile, StitchTable};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "polyvision-calibrate",
    version,
    about = "Calibrate a Polyvision rig"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit the field homography of one image from clicked points.
    Solve {
        /// Clicked points (JSON): `{"image_size":[w,h],"points":[{"pixel":[u,v],"landmark":"NAME"} or {"pixel":[u,v],"pitch":[x,y]}]}`.
        #[arg(long)]
        points: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Write a single-view calibration file here (earlier versions are kept).
        #[arg(long)]
        out: Option<PathBuf>,
        /// RANSAC inlier threshold, pixels.
        #[arg(long, default_value_t = FitOptions::default().ransac_threshold_px)]
        threshold_px: f64,
        /// Assumed click precision (1σ), pixels.
        #[arg(long, default_value_t = FitOptions::default().click_sigma_px)]
        click_sigma_px: f64,
    },
    /// Write the stitching table of a two-camera calibration.
    Lut {
        /// Calibration file with cameras `left`, `right` and a panorama section.
        #[arg(long)]
        calibration: PathBuf,
        /// Table file to write.
        #[arg(long)]
        out: PathBuf,
        /// Width of the blend band across the seam, pixels.
        #[arg(long, default_value_t = polyvision_calibration::lut::DEFAULT_BAND_PX)]
        band_px: u32,
    },
    /// Plan the panorama of a two-camera calibration and store it in the file.
    Panorama {
        /// Calibration file; rewritten with the panorama section (the old version is kept).
        #[arg(long)]
        calibration: PathBuf,
        /// Panorama width, pixels.
        #[arg(long, default_value_t = PanoramaOptions::default().width)]
        width: u32,
        /// Downward tilt, degrees (default: standing players equally tall near and far).
        #[arg(long)]
        tilt_deg: Option<f64>,
    },
    /// Make the two cameras agree at the seam by registering a pair of frames (updates both
    /// homographies; the old version is kept).
    Seam {
        /// Calibration file with cameras `left`, `right` and a panorama section.
        #[arg(long)]
        calibration: PathBuf,
        /// Frame of camera L (PNG).
        #[arg(long)]
        left: PathBuf,
        /// Frame of camera R (PNG), taken at the same time.
        #[arg(long)]
        right: PathBuf,
    },
    /// Validate a calibration file and print a summary.
    Check {
        /// Calibration file.
        #[arg(long)]
        calibration: PathBuf,
    },
    /// List the pitch landmarks and their positions.
    Landmarks {
        /// Pitch length, metres.
        #[arg(long, default_value_t = 105.0)]
        length_m: f64,
        /// Pitch width, metres.
        #[arg(long, default_value_t = 68.0)]
        width_m: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Estimate lens distortion from points along lines that are straight on the pitch.
    Lines {
        /// Points along straight pitch lines (JSON):
        /// `{"image_size":[w,h],"hfov_deg":84,"lines":[[[u,v],…],…]}`; `focal_px` instead of
        /// `hfov_deg` also works.
        #[arg(long)]
        lines: PathBuf,
        /// Also fit k2 (and with --tangential, p1 and p2).
        #[arg(long)]
        k2: bool,
        /// Fit the tangential coefficients too (implies --k2).
        #[arg(long)]
        tangential: bool,
    },
    /// List the earlier versions of a calibration file.
    History {
        /// Calibration file.
        #[arg(long)]
        calibration: PathBuf,
    },
    /// Make an earlier version current again (the current one is kept in the history).
    Restore {
        /// Calibration file.
        #[arg(long)]
        calibration: PathBuf,
        /// Version number from `history`.
        #[arg(long)]
        version: u32,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Solve {
            points,
            json,
            out,
            threshold_px,
            click_sigma_px,
        } => solve(&points, json, out.as_deref(), threshold_px, click_sigma_px),
        Command::Lut {
            calibration,
            out,
            band_px,
        } => {
            let cal = CalibrationFile::load(&calibration)?;
            let started = std::time::Instant::now();
            let table = StitchTable::build(&cal, band_px)?;
            table.save(&out)?;
            let [w, h] = table.panorama_size;
            println!(
                "{}: {w}×{h} panorama, {} blended and {} uncovered pixels, {:.1} MB, built in {:.2} s",
                out.display(),
                table.blended(),
                table.uncovered(),
                (48 + 9 * w as usize * h as usize) as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Panorama {
            calibration,
            width,
            tilt_deg,
        } => {
            let mut cal = CalibrationFile::load(&calibration)?;
            let options = PanoramaOptions {
                width,
                tilt_deg,
                ..PanoramaOptions::default()
            };
            let view = plan_panorama(&cal, &options)?;
            cal.panorama = Some(view.calibration());
            cal.save_with_history(&calibration)?;
            let [w, h] = view.image_size;
            println!(
                "{}: panorama {w}×{h}, tilt {:.2}°, seen from ({:.2}, {:.2}, {:.2}) m",
                calibration.display(),
                view.tilt_deg,
                view.pose.centre[0],
                view.pose.centre[1],
                view.pose.centre[2]
            );
            Ok(())
        }
        Command::Check { calibration } => check(&calibration),
        Command::Seam {
            calibration,
            left,
            right,
        } => {
            let mut cal = CalibrationFile::load(&calibration)?;
            let (l, lsize) = read_png(&left)?;
            let (r, rsize) = read_png(&right)?;
            let report = register_seam(
                &mut cal,
                &Frame {
                    size: lsize,
                    rgba: &l,
                },
                &Frame {
                    size: rsize,
                    rgba: &r,
                },
            )
            .map_err(anyhow::Error::msg)?;
            cal.created = Provenance::now(
                concat!("polyvision-calibrate ", env!("CARGO_PKG_VERSION")),
                Some("seam registered".into()),
            );
            cal.save_with_history(&calibration)?;
            println!(
                "{}: seam registered over {} pixels, brightness difference rms {:.2} -> {:.2}, shift ({:.2}, {:.2}) px removed",
                calibration.display(),
                report.pixels,
                report.rms_before,
                report.rms_after,
                report.shift_px[0],
                report.shift_px[1]
            );
            Ok(())
        }
        Command::Landmarks {
            length_m,
            width_m,
            json,
        } => {
            let pitch = PitchSize { length_m, width_m };
            pitch.validate().map_err(anyhow::Error::msg)?;
            let landmarks = pitch.landmarks();
            let text = if json {
                serde_json::to_string_pretty(&landmarks)? + "\n"
            } else {
                landmarks
                    .iter()
                    .map(|l| {
                        format!(
                            "{:<34} {:>7.2} {:>7.2}  {}\n",
                            l.name, l.position[0], l.position[1], l.description
                        )
                    })
                    .collect()
            };
            print_all(&text)
        }
        Command::Lines {
            lines,
            k2,
            tangential,
        } => fit_lines(&lines, k2, tangential),
        Command::History { calibration } => {
            let versions = file::history(&calibration)?;
            if versions.is_empty() {
                println!("{}: no earlier versions", calibration.display());
            }
            for v in versions {
                let about = CalibrationFile::load(&v.path)
                    .map(|c| describe_provenance(&c.created))
                    .unwrap_or_else(|e| format!("unreadable: {e}"));
                println!(
                    "{:>4}  replaced {}  {}",
                    v.number,
                    file::rfc3339_utc(v.replaced_at_unix),
                    about
                );
            }
            Ok(())
        }
        Command::Restore {
            calibration,
            version,
        } => {
            let cal = file::restore(&calibration, version)?;
            println!(
                "{}: version {version} restored ({})",
                calibration.display(),
                describe_provenance(&cal.created)
            );
            Ok(())
        }
    }
}

/// Writes to stdout; a reader that stops early (`| head`) is not an error.
fn print_all(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn describe_provenance(p: &Provenance) -> String {
    [p.at.as_deref(), p.by.as_deref(), p.note.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
}

fn solve(
    points: &Path,
    json: bool,
    out: Option<&Path>,
    threshold_px: f64,
    click_sigma_px: f64,
) -> Result<()> {
    let text =
        std::fs::read_to_string(points).with_context(|| format!("reading {}", points.display()))?;
    let input: PointsFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a points document", points.display()))?;
    let pairs = input
        .pairs()
        .map_err(|e| anyhow::anyhow!("{}: {e}", points.display()))?;
    let pitch = input.pitch();
    let options = FitOptions {
        ransac_threshold_px: threshold_px,
        click_sigma_px,
        ..FitOptions::default()
    };
    let fit = fit_field_homography(&pairs, &input.view(), &pitch, &options)
        .map_err(|e| anyhow::anyhow!("{}: {e}", points.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&fit)?);
    } else {
        print_fit(&fit);
    }
    if let Some(out) = out {
        let [w, h] = input.image_size.map(f64::from);
        let lens = input
            .lens
            .unwrap_or_else(|| LensModel::pinhole(w.max(h), w.max(h), w / 2.0, h / 2.0));
        let mut cal = CalibrationFile::new(
            pitch,
            vec![CameraCalibration {
                name: input.camera.clone().unwrap_or_else(|| "view".into()),
                image_size: input.image_size,
                lens,
                pitch_from_image: fit.pitch_from_image,
                fit: Some(FitRecord::from(&fit)),
            }],
        );
        cal.created = Provenance::now(
            concat!("polyvision-calibrate ", env!("CARGO_PKG_VERSION")),
            Some(format!("solved from {}", points.display())),
        );
        let kept = cal.save_with_history(out)?;
        eprintln!(
            "wrote {}{}",
            out.display(),
            kept.map_or(String::new(), |n| format!(
                " (the previous version is kept as number {n})"
            ))
        );
    }
    Ok(())
}

fn print_fit(fit: &FieldFit) {
    println!("pitch_from_image (image pixels → pitch metres):");
    for row in fit.pitch_from_image.rows() {
        println!("  [{:>14.8e} {:>14.8e} {:>14.8e}]", row[0], row[1], row[2]);
    }
    println!(
        "\n{:<44} {:>17} {:>15} {:>8} {:>8}",
        "point", "pixel", "pitch m", "err px", "err cm"
    );
    for p in &fit.points {
        println!(
            "{:<44} {:>8.1} {:>8.1} {:>7.2} {:>7.2} {:>8.2} {:>8.1}{}",
            p.label,
            p.pixel[0],
            p.pixel[1],
            p.pitch[0],
            p.pitch[1],
            p.error_px,
            p.error_cm,
            if p.inlier { "" } else { "  outlier" }
        );
    }
    let u = &fit.uncertainty;
    println!(
        "\ninliers {}/{}, rms {:.2} px; expected position error over the visible pitch (σ = {:.2} px): median {:.1} cm, p95 {:.1} cm, max {:.1} cm",
        fit.inliers,
        fit.points.len(),
        fit.rms_px,
        fit.sigma_px,
        u.median_cm,
        u.p95_cm,
        u.max_cm
    );
}

fn check(path: &Path) -> Result<()> {
    let cal = CalibrationFile::load(path)?;
    println!(
        "{}: valid, format version {}, pitch {} × {} m",
        path.display(),
        cal.version,
        cal.pitch.length_m,
        cal.pitch.width_m
    );
    if !describe_provenance(&cal.created).is_empty() {
        println!("  written: {}", describe_provenance(&cal.created));
    }
    for c in &cal.cameras {
        let centre = c
            .pitch_from_image
            .apply([c.image_size[0] as f64 / 2.0, c.image_size[1] as f64 / 2.0]);
        println!(
            "  camera {:<8} {}×{}, lens k1 {:+.4} k2 {:+.4}, image centre on the pitch at {}",
            c.name,
            c.image_size[0],
            c.image_size[1],
            c.lens.k1,
            c.lens.k2,
            centre.map_or("infinity".into(), |p| format!(
                "({:.1}, {:.1}) m",
                p[0], p[1]
            ))
        );
        if let Some(fit) = &c.fit {
            let inliers = fit.points.iter().filter(|p| p.inlier).count();
            println!(
                "           fitted to {} points ({inliers} inliers), rms {:.2} px, expected error median {:.1} cm, p95 {:.1} cm",
                fit.points.len(),
                fit.rms_px,
                fit.expected_error_median_cm,
                fit.expected_error_p95_cm
            );
        }
    }
    match &cal.panorama {
        Some(p) => println!(
            "  panorama {}×{}{}",
            p.image_size[0],
            p.image_size[1],
            p.tilt_deg
                .map_or(String::new(), |t| format!(", tilt {t:.2}°"))
        ),
        None => println!("  no panorama section"),
    }
    let kept = file::history(path)?.len();
    println!("  {kept} earlier version(s) kept");
    Ok(())
}

fn fit_lines(path: &Path, k2: bool, tangential: bool) -> Result<()> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct LinesFile {
        image_size: [u32; 2],
        #[serde(default)]
        hfov_deg: Option<f64>,
        #[serde(default)]
        focal_px: Option<f64>,
        lines: Vec<Vec<[f64; 2]>>,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let input: LinesFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a lines document", path.display()))?;
    let [w, h] = input.image_size.map(f64::from);
    let focal = match (input.focal_px, input.hfov_deg) {
        (Some(f), _) if f.is_finite() && f > 0.0 => f,
        (None, Some(fov)) if fov.is_finite() && fov > 1.0 && fov < 179.0 => {
            w / 2.0 / (fov.to_radians() / 2.0).tan()
        }
        _ => bail!(
            "{}: give `focal_px` (positive) or `hfov_deg` (1–179)",
            path.display()
        ),
    };
    let coefficients = match (k2 || tangential, tangential) {
        (_, true) => Coefficients::K1K2P1P2,
        (true, false) => Coefficients::K1K2,
        _ => Coefficients::K1,
    };
    let start = LensModel::pinhole(focal, focal, w / 2.0, h / 2.0);
    let fit = distortion_from_lines(&input.lines, input.image_size, &start, coefficients)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    eprintln!(
        "straightness: rms {:.2} px before, {:.3} px after",
        fit.rms_before_px, fit.rms_after_px
    );
    println!("{}", serde_json::to_string_pretty(&fit.lens)?);
    Ok(())
}

fn read_png(path: &Path) -> Result<(Vec<u8>, [u32; 2])> {
    png_io::read_png(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
