//! `polyvision-calibrate`: field homographies, lens distortion, panorama and stitching tables
//! from the command line.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use polyvision_calibration::file::{self, CameraCalibration, FitRecord, Provenance};
use polyvision_calibration::fit::{FieldFit, FitOptions};
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
    ///
    /// POINTS.json: `{"image_size":[w,h],"points":[…],"camera":"left","lens":{…},"pitch_size":{"length_m":105,"width_m":68}}`;
    /// a point is `{"pixel":[u,v],"landmark":"NAME"}` or `{"pixel":[u,v],"pitch":[x,y]}`
    /// (metres, centre spot at 0, x along the touchline, the rig at negative y). `lens` is
    /// `{"fx","fy","cx","cy","k1","k2","k3","p1","p2"}` in pixels of the full image (OpenCV's
    /// model); with it, pixels are sensor pixels. `camera` and `pitch_size` are optional.
    Solve {
        /// Clicked points (JSON, see above).
        #[arg(long)]
        points: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Write a calibration file holding only this view (replaces the file; earlier versions
        /// are kept).
        #[arg(long, conflicts_with = "into")]
        out: Option<PathBuf>,
        /// Add this camera to a calibration file, or replace the camera of the same name in it
        /// (created when missing; other cameras kept; earlier versions kept). Its panorama
        /// section is dropped, since it was planned from the old camera: run `panorama` again.
        #[arg(long)]
        into: Option<PathBuf>,
        /// Name of the camera in the calibration file (`left`, `right`); overrides the points
        /// document's `camera`.
        #[arg(long)]
        camera: Option<String>,
        /// RANSAC inlier threshold, pixels [default: 4 px per 1,280 px of the image's longer
        /// side].
        #[arg(long)]
        threshold_px: Option<f64>,
        /// Assumed click precision (1σ), pixels [default: 1 px per 1,280 px of the longer side].
        #[arg(long)]
        click_sigma_px: Option<f64>,
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
            into,
            camera,
            threshold_px,
            click_sigma_px,
        } => solve(&SolveArgs {
            points: &points,
            json,
            out: out.as_deref(),
            into: into.as_deref(),
            camera,
            threshold_px,
            click_sigma_px,
        }),
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
            require_left_and_right(&cal, &calibration)?;
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

struct SolveArgs<'a> {
    points: &'a Path,
    json: bool,
    out: Option<&'a Path>,
    into: Option<&'a Path>,
    camera: Option<String>,
    threshold_px: Option<f64>,
    click_sigma_px: Option<f64>,
}

fn solve(args: &SolveArgs<'_>) -> Result<()> {
    let points = args.points;
    let text =
        std::fs::read_to_string(points).with_context(|| format!("reading {}", points.display()))?;
    let input: PointsFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a points document", points.display()))?;
    let pitch = input.pitch();
    let scaled = FitOptions::for_image(input.image_size);
    let options = FitOptions {
        ransac_threshold_px: args.threshold_px.unwrap_or(scaled.ransac_threshold_px),
        click_sigma_px: args.click_sigma_px.unwrap_or(scaled.click_sigma_px),
        ..scaled
    };
    for (name, v) in [
        ("--threshold-px", options.ransac_threshold_px),
        ("--click-sigma-px", options.click_sigma_px),
    ] {
        if !(v.is_finite() && v > 0.0) {
            bail!("{name} must be a positive number of pixels, not {v}");
        }
    }
    let fit = input
        .solve(&options)
        .map_err(|e| anyhow::anyhow!("{}: {e}", points.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&fit)?);
    } else {
        print_fit(&fit, &options);
    }
    let Some(target) = args.out.or(args.into) else {
        return Ok(());
    };
    let [w, h] = input.image_size.map(f64::from);
    let lens = input
        .lens
        .unwrap_or_else(|| LensModel::pinhole(w.max(h), w.max(h), w / 2.0, h / 2.0));
    let name = args
        .camera
        .clone()
        .or_else(|| input.camera.clone())
        .unwrap_or_else(|| "view".into());
    let camera = CameraCalibration {
        name: name.clone(),
        image_size: input.image_size,
        lens,
        pitch_from_image: fit.pitch_from_image,
        fit: Some(FitRecord::from(&fit)),
    };
    let mut cal = match (args.into, target.exists()) {
        (Some(_), true) => {
            let mut cal = CalibrationFile::load(target)?;
            if cal.pitch != pitch {
                bail!(
                    "{} is for a {} × {} m pitch, {} for {} × {} m; give POINTS.json the file's `pitch_size`",
                    target.display(),
                    cal.pitch.length_m,
                    cal.pitch.width_m,
                    points.display(),
                    pitch.length_m,
                    pitch.width_m
                );
            }
            match cal.cameras.iter_mut().find(|c| c.name == name) {
                Some(c) => *c = camera,
                None => cal.cameras.push(camera),
            }
            if cal.panorama.take().is_some() {
                eprintln!(
                    "{}: panorama section dropped (planned from the old cameras); run `polyvision-calibrate panorama --calibration {}` again",
                    target.display(),
                    target.display()
                );
            }
            cal
        }
        _ => CalibrationFile::new(pitch, vec![camera]),
    };
    cal.created = Provenance::now(
        concat!("polyvision-calibrate ", env!("CARGO_PKG_VERSION")),
        Some(format!("camera {name} solved from {}", points.display())),
    );
    let kept = cal.save_with_history(target)?;
    let names: Vec<&str> = cal.cameras.iter().map(|c| c.name.as_str()).collect();
    eprintln!(
        "wrote {} (cameras: {}){}",
        target.display(),
        names.join(", "),
        kept.map_or(String::new(), |n| format!(
            "; the previous version is kept as number {n}"
        ))
    );
    Ok(())
}

/// The panorama and the stitching table join the cameras `left` and `right`.
fn require_left_and_right(cal: &CalibrationFile, path: &Path) -> Result<()> {
    let has = |n: &str| cal.cameras.iter().any(|c| c.name == n);
    if !(has("left") && has("right")) {
        let names: Vec<&str> = cal.cameras.iter().map(|c| c.name.as_str()).collect();
        bail!(
            "{}: a panorama joins cameras `left` and `right`, this file has {}; add each with `polyvision-calibrate solve --points P.json --camera left|right --into {}`",
            path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            },
            path.display()
        );
    }
    Ok(())
}

fn print_fit(fit: &FieldFit, options: &FitOptions) {
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
            match (&p.left_out, p.inlier) {
                (Some(_), _) => "  left out",
                (None, true) => "",
                (None, false) => "  outlier",
            }
        );
        for why in [&p.left_out, &p.note].into_iter().flatten() {
            println!("    {why}");
        }
    }
    let u = &fit.uncertainty;
    println!(
        "\ninliers {}/{}, rms {:.2} px; expected error of the map over the visible pitch (click noise σ = {:.2} px): median {:.1} cm, p95 {:.1} cm, max {:.1} cm",
        fit.inliers,
        fit.points.len(),
        fit.rms_px,
        fit.sigma_px,
        u.median_cm,
        u.p95_cm,
        u.max_cm
    );
    println!(
        "RANSAC threshold {:.1} px, click precision floor {:.1} px",
        options.ransac_threshold_px, options.click_sigma_px
    );
    match &fit.held_out {
        Some(h) => println!(
            "held out one at a time ({} inliers): error median {:.1} cm, p90 {:.1} cm; expected median {:.1} cm, p90 {:.1} cm",
            h.points.len(),
            100.0 * h.median_m,
            100.0 * h.p90_m,
            100.0 * h.expected_median_m,
            100.0 * h.expected_p90_m
        ),
        None => println!("held-out check needs at least 6 inliers"),
    }
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
