//! `rig-sim`: render a simulated match with ground truth, or describe one already rendered.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use rig_sim::motion::Motion;
use rig_sim::motion::metrica::{EXCERPT, MetricaMotion, find_data_dir};
use rig_sim::motion::procedural::ProceduralMotion;
use rig_sim::rig::{DEFAULT_RIG_TOML, RigConfig};
use rig_sim::sim::{RenderJob, render_match};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rig-sim",
    version,
    about = "Renders what the rig's two cameras film, with exact ground truth"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Source {
    /// A procedural match of any length.
    Procedural,
    /// Real trajectories from the Metrica Sports sample data (84 s).
    Metrica,
    /// Metrica when its data is found (or --metrica given), procedural otherwise.
    Auto,
}

#[derive(Subcommand)]
enum Command {
    /// Render both cameras' videos and the ground truth.
    Render {
        /// Rig file (TOML); fields left out take the default rig's values.
        #[arg(long)]
        rig: Option<PathBuf>,
        /// Length of the rendering, seconds.
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Where the motion comes from.
        #[arg(long, value_enum, default_value_t = Source::Procedural)]
        source: Source,
        /// Metrica EPTS tracking file (default: the excerpt in ../shared/data).
        #[arg(long)]
        metrica: Option<PathBuf>,
        /// Start this many seconds into the Metrica data (kick-off is at 14.4 s).
        #[arg(long, default_value_t = 14.4)]
        start: f64,
        /// Seed for the cast, the stadium and the procedural match.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output folder.
        #[arg(long, default_value = "out/sample-match")]
        out: PathBuf,
        /// Write only the truth, no videos (fast; for long matches).
        #[arg(long)]
        no_video: bool,
        /// Also save this frame (0-based) of both cameras as PNG; repeatable.
        #[arg(long)]
        snapshot: Vec<u64>,
        /// No progress output.
        #[arg(long)]
        quiet: bool,
    },
    /// Stitched panoramas and their true boxes for training and scoring a detector: clips with
    /// their own kits, light and mast (see the `dataset` module).
    Dataset {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Seed of the first clip; clip k uses FIRST_SEED + k.
        #[arg(long, default_value_t = 100)]
        first_seed: u64,
        /// Number of clips.
        #[arg(long, default_value_t = 8)]
        clips: u64,
        /// Panoramas per clip.
        #[arg(long, default_value_t = 20)]
        frames_per_clip: u64,
        /// Length of each clip, seconds.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// Default kits, light and mast for every clip.
        #[arg(long)]
        no_variation: bool,
        /// No progress output.
        #[arg(long)]
        quiet: bool,
    },
    /// Summarise a rendered match: length, objects, distances, truth rows, visibility.
    Describe {
        /// Folder written by `render`.
        dir: PathBuf,
    },
    /// Simulate technicians clicking landmarks: points documents for `polyvision-calibrate
    /// solve`, the true calibration, and the grid a fit is scored on.
    Clicks {
        /// Rig file (TOML); fields left out take the default rig's values.
        #[arg(long)]
        rig: Option<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Sets of clicks per view.
        #[arg(long, default_value_t = 20)]
        trials: u64,
        /// Landmarks per set.
        #[arg(long, default_value_t = 10)]
        points: usize,
        /// Click noise, pixels (1σ).
        #[arg(long, default_value_t = 1.0)]
        sigma_px: f64,
        /// Fraction of gross errors among the clicks.
        #[arg(long, default_value_t = 0.0)]
        outliers: f64,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Detections made from a rendering's true boxes: jitter, missed bursts, merges of
    /// overlapping people, false positives (MOTChallenge `frame,-1,l,t,w,h,conf,class`).
    Degrade {
        /// Folder written by `render`.
        dir: PathBuf,
        /// View: panorama, left or right.
        #[arg(long, default_value = "panorama")]
        view: String,
        /// Detections file to write.
        #[arg(long)]
        out: PathBuf,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Jitter of each box edge, pixels (1σ).
        #[arg(long, default_value_t = 2.0)]
        jitter_px: f64,
        /// Fraction of boxes missed (in bursts).
        #[arg(long, default_value_t = 0.10)]
        miss_rate: f64,
        /// False positives per detection.
        #[arg(long, default_value_t = 0.02)]
        false_rate: f64,
        /// People overlapping more than this (IoU) come out as one box; above 1: never.
        #[arg(long, default_value_t = 0.5)]
        merge_iou: f64,
        /// Leave out the shirt colours (the appearance cue).
        #[arg(long)]
        no_colour: bool,
    },
    /// Score a tracks file against a rendering's truth: MOTA, IDF1, ID switches, position RMSE
    /// and, with --metrics, per-player metric errors.
    Score {
        /// Folder written by `render`.
        dir: PathBuf,
        /// View: panorama, left or right.
        #[arg(long, default_value = "panorama")]
        view: String,
        /// Tracks (MOTChallenge with pitch x, y).
        #[arg(long)]
        tracks: PathBuf,
        /// The tracker's metrics CSV.
        #[arg(long)]
        metrics: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the default rig file.
    Rig,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rig-sim: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Rig => {
            print!("{DEFAULT_RIG_TOML}");
            Ok(())
        }
        Command::Describe { dir } => describe(&dir),
        Command::Dataset {
            out,
            first_seed,
            clips,
            frames_per_clip,
            seconds,
            no_variation,
            quiet,
        } => {
            let job = rig_sim::dataset::DatasetJob {
                out: out.clone(),
                first_seed,
                clips,
                frames_per_clip,
                seconds,
                vary: !no_variation,
            };
            let saved = rig_sim::dataset::write_dataset(&job, !quiet)?;
            println!("dataset: {saved} panoramas in {}", out.display());
            Ok(())
        }
        Command::Degrade {
            dir,
            view,
            out,
            seed,
            jitter_px,
            miss_rate,
            false_rate,
            merge_iou,
            no_colour,
        } => {
            use rig_sim::score::{Degradation, degrade, read_gt, read_shirts};
            if !(0.0..0.9).contains(&miss_rate)
                || !(0.0..1.0).contains(&false_rate)
                || !(0.0..50.0).contains(&jitter_px)
            {
                bail!("--miss-rate must be within 0–0.9, --false-rate 0–1, --jitter-px 0–50");
            }
            let gt = read_gt(&dir.join("truth").join(&view).join("gt").join("gt.txt"))
                .map_err(anyhow::Error::msg)?;
            let d = Degradation {
                jitter_px,
                miss_rate,
                false_rate,
                merge_iou,
                ..Degradation::default()
            };
            let shirts = if no_colour {
                None
            } else {
                Some(
                    read_shirts(&dir.join("truth").join("objects.json"))
                        .map_err(anyhow::Error::msg)?,
                )
            };
            let rows = degrade(&gt, &d, seed, shirts.as_ref());
            std::fs::write(&out, rows.join("\n") + "\n")
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{}: {} detections from {} true boxes",
                out.display(),
                rows.len(),
                gt.len()
            );
            Ok(())
        }
        Command::Score {
            dir,
            view,
            tracks,
            metrics,
            json,
        } => {
            use rig_sim::score::{read_gt, read_metrics, read_positions, read_tracks, score};
            let gt = read_gt(&dir.join("truth").join(&view).join("gt").join("gt.txt"))
                .map_err(anyhow::Error::msg)?;
            let hyps = read_tracks(&tracks).map_err(anyhow::Error::msg)?;
            let truth = read_positions(&dir.join("truth").join("positions.csv"))
                .map_err(anyhow::Error::msg)?;
            let reported = metrics
                .as_deref()
                .map(read_metrics)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let s = score(&gt, &hyps, &truth, reported.as_ref(), 19.8 / 3.6);
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "HOTA {:.4} (DetA {:.4}, AssA {:.4})  MOTA {:.4}  IDF1 {:.4}  ID switches {} ({:.2} per 1000 frames)  FN {}  FP {}  of {} true boxes  position RMSE {:.3} m",
                    s.hota,
                    s.det_a,
                    s.ass_a,
                    s.mota,
                    s.idf1,
                    s.id_switches,
                    s.id_switches_per_1000_frames,
                    s.false_negatives,
                    s.false_positives,
                    s.gt_boxes,
                    s.position_rmse_m
                );
                if !s.players.is_empty() {
                    let worst = |f: &dyn Fn(&rig_sim::score::PlayerError) -> f64| {
                        s.players.iter().map(f).fold(0.0, f64::max)
                    };
                    let mean = |f: &dyn Fn(&rig_sim::score::PlayerError) -> f64| {
                        s.players.iter().map(f).sum::<f64>() / s.players.len() as f64
                    };
                    println!(
                        "metrics over {} players: distance error mean {:.2} % worst {:.2} %; high-speed distance error mean {:.1} % worst {:.1} %; top speed error mean {:.2} m/s worst {:.2} m/s",
                        s.players.len(),
                        100.0 * mean(&|p| p.distance_error),
                        100.0 * worst(&|p| p.distance_error),
                        100.0 * mean(&|p| p.high_speed_error),
                        100.0 * worst(&|p| p.high_speed_error),
                        mean(&|p| p.top_speed_error_mps),
                        worst(&|p| p.top_speed_error_mps)
                    );
                }
            }
            Ok(())
        }
        Command::Clicks {
            rig,
            out,
            trials,
            points,
            sigma_px,
            outliers,
            seed,
        } => {
            if !(sigma_px.is_finite() && sigma_px >= 0.0) {
                bail!("--sigma-px must be a non-negative number, got {sigma_px}");
            }
            if !(0.0..=0.5).contains(&outliers) {
                bail!("--outliers must be within 0–0.5, got {outliers}");
            }
            let rig = match rig {
                Some(path) => RigConfig::load(&path)?,
                None => RigConfig::default(),
            };
            write_clicks(&rig, &out, trials, points, sigma_px, outliers, seed)
        }
        Command::Render {
            rig,
            seconds,
            source,
            metrica,
            start,
            seed,
            out,
            no_video,
            snapshot,
            quiet,
        } => {
            if !(seconds.is_finite() && seconds > 0.0) {
                bail!("--seconds must be a positive number, got {seconds}");
            }
            let rig = match rig {
                Some(path) => RigConfig::load(&path)?,
                None => RigConfig::default(),
            };
            let source = match source {
                Source::Auto if metrica.is_some() || find_data_dir().is_some() => Source::Metrica,
                Source::Auto => {
                    eprintln!(
                        "rig-sim: the Metrica data was not found; rendering a procedural match"
                    );
                    Source::Procedural
                }
                other => other,
            };
            let (motion, source_name): (Box<dyn Motion + Send>, String) = match source {
                Source::Procedural | Source::Auto => (
                    Box::new(ProceduralMotion::new(rig.pitch, rig.fps, seconds, seed)),
                    "procedural".into(),
                ),
                Source::Metrica => {
                    let path = match metrica {
                        Some(p) => p,
                        None => find_data_dir()
                            .map(|d| d.join(EXCERPT))
                            .context("the Metrica data was not found: pass --metrica FILE, set POLYVISION_DATA, or keep ../shared/data beside the repository")?,
                    };
                    let m = MetricaMotion::open(&path, rig.pitch, rig.fps, start, seconds)?;
                    (Box::new(m), format!("metrica:{}", path.display()))
                }
            };
            if let Some(late) = snapshot.iter().find(|f| **f >= motion.frame_count()) {
                bail!(
                    "--snapshot {late} is past the last frame ({})",
                    motion.frame_count().saturating_sub(1)
                );
            }
            if !quiet {
                eprintln!(
                    "rig-sim: rendering {seconds} s at {} fps ({} frames per camera), {} source, seed {seed} → {}",
                    rig.fps,
                    motion.frame_count(),
                    source_name,
                    out.display()
                );
            }
            let job = RenderJob {
                out: out.clone(),
                seed,
                video: !no_video,
                snapshots: snapshot,
                source: source_name,
                progress: !quiet,
            };
            let s = render_match(rig, motion, &job)?;
            println!(
                "rendered {} frames per camera ({:.1} s of match) in {:.1} s + {:.1} s set-up: {:.1} frames/s (both cameras, encoding and truth included)",
                s.frames, s.seconds, s.render_s, s.setup_s, s.frames_per_s
            );
            println!("output: {}", out.display());
            Ok(())
        }
    }
}

fn describe(dir: &Path) -> Result<()> {
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("summary.json")).with_context(|| {
            format!(
                "{} has no summary.json: is it a rig-sim output folder?",
                dir.display()
            )
        })?,
    )
    .context("summary.json is not valid JSON")?;
    println!("match in {}", dir.display());
    println!(
        "  source {}, seed {}, {} frames at {} fps = {:.1} s",
        summary["source"].as_str().unwrap_or("?"),
        summary["seed"],
        summary["frames"],
        summary["fps"],
        summary["seconds"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  cameras {} and {}, panorama {}",
        summary["camera_size"][0], summary["camera_size"][1], summary["panorama_size"]
    );
    for v in summary["videos"].as_array().into_iter().flatten() {
        let name = v.as_str().unwrap_or("?");
        let size = std::fs::metadata(dir.join(name))
            .map(|m| m.len())
            .unwrap_or(0);
        println!("  video {name}: {:.1} MB", size as f64 / 1e6);
    }
    println!(
        "  rendering speed {:.1} frames/s",
        summary["frames_per_s"].as_f64().unwrap_or(0.0)
    );

    // Distances and top speeds from the truth.
    let csv = std::fs::read_to_string(dir.join("truth/positions.csv"))
        .context("reading truth/positions.csv")?;
    let mut last: BTreeMap<u32, (f64, f64, f64)> = BTreeMap::new();
    let mut stats: BTreeMap<(String, String), (f64, f64, u32)> = BTreeMap::new();
    let mut ids: BTreeMap<u32, (String, String)> = BTreeMap::new();
    let mut air = 0u64;
    let mut ball_rows = 0u64;
    for (n, line) in csv.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 10 {
            bail!(
                "truth/positions.csv:{}: expected 10 fields, got {}",
                n + 1,
                f.len()
            );
        }
        let num = |i: usize| {
            f[i].parse::<f64>().with_context(|| {
                format!("truth/positions.csv:{}: `{}` is not a number", n + 1, f[i])
            })
        };
        let id: u32 = f[2]
            .parse()
            .with_context(|| format!("truth/positions.csv:{}: bad id", n + 1))?;
        let (t, x, y) = (num(1)?, num(5)?, num(6)?);
        if f[3] == "ball" {
            ball_rows += 1;
            air += u64::from(num(7)? > 0.3);
            continue;
        }
        ids.entry(id)
            .or_insert_with(|| (f[4].to_string(), f[3].to_string()));
        if let Some((pt, px, py)) = last.insert(id, (t, x, y)) {
            let step = (x - px).hypot(y - py);
            let e = stats
                .entry((f[4].to_string(), f[3].to_string()))
                .or_insert((0.0, 0.0, 0));
            e.0 += step;
            if t > pt {
                e.1 = e.1.max(step / (t - pt));
            }
        }
    }
    for key in ids.values() {
        if let Some(e) = stats.get_mut(key) {
            e.2 += 1;
        }
    }
    for ((team, role), (distance, top, count)) in &stats {
        let count = (*count).max(1);
        println!(
            "  {team:<9} {role:<18} ×{count:<2} mean distance {:>6.0} m, fastest frame-to-frame speed {:.1} m/s",
            distance / count as f64,
            top
        );
    }
    if ball_rows > 0 {
        println!(
            "  ball tracked on {ball_rows} frames, in the air (> 0.3 m) on {:.0}%",
            100.0 * air as f64 / ball_rows as f64
        );
    }
    for view in ["left", "right", "panorama"] {
        let gt = std::fs::read_to_string(dir.join("truth").join(view).join("gt/gt.txt"))
            .unwrap_or_default();
        let (mut rows, mut vis_sum, mut occluded) = (0u64, 0.0, 0u64);
        for line in gt.lines() {
            if let Some(v) = line.rsplit(',').next().and_then(|v| v.parse::<f64>().ok()) {
                rows += 1;
                vis_sum += v;
                occluded += u64::from(v < 0.5);
            }
        }
        println!(
            "  truth {view:<8}: {rows} boxes, mean visibility {:.2}, {:.1}% less than half visible",
            vis_sum / rows.max(1) as f64,
            100.0 * occluded as f64 / rows.max(1) as f64
        );
    }
    Ok(())
}

fn write_clicks(
    rig: &RigConfig,
    out: &Path,
    trials: u64,
    points: usize,
    sigma_px: f64,
    outlier_fraction: f64,
    seed: u64,
) -> Result<()> {
    use rig_sim::camera::Camera;
    use rig_sim::clicks::{ClickModel, scoring_grid, simulate_clicks};
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let [left, right] = Camera::rig_cameras(rig);
    let panorama = Camera::panorama(rig);
    let truth = rig_sim::truth::calibration(rig.pitch, &[left.clone(), right.clone()], &panorama);
    truth.save(&out.join("truth-calibration.json"))?;
    let model = ClickModel {
        points,
        sigma_px,
        outlier_fraction,
    };
    for camera in [&left, &right, &panorama] {
        let grid = scoring_grid(camera, &rig.pitch);
        std::fs::write(
            out.join(format!("{}-grid.json", camera.name)),
            serde_json::to_string(&grid)?,
        )?;
        for trial in 0..trials {
            let clicks = simulate_clicks(camera, &rig.pitch, &model, seed + trial);
            std::fs::write(
                out.join(format!("{}-{trial:03}.json", camera.name)),
                serde_json::to_string_pretty(&clicks)?,
            )?;
        }
    }
    println!(
        "{}: {trials} click set(s) of {points} landmarks per view (σ = {sigma_px} px, {:.0} % gross errors), truth-calibration.json, *-grid.json",
        out.display(),
        outlier_fraction * 100.0
    );
    Ok(())
}
