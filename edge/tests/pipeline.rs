//! The whole pipeline on rendered footage (`polyvision-edge demo`): real H.264 files through
//! GStreamer, pairing, CPU stitching, the shipped detector in tract, tracking and the SQLite
//! buffer; the tracks scored against the simulator's truth. Also: a corrupt camera file stops
//! the run with an error that names the file. Run with `--nocapture` for the figures.

use rig_sim::motion::procedural::ProceduralMotion;
use rig_sim::rig::RigConfig;
use rig_sim::score::{read_gt, read_metrics, read_positions, read_tracks, score};
use rig_sim::sim::{RenderJob, render_match};
use std::path::Path;
use std::process::Command;

const FRAMES: u64 = 75;

fn render(dir: &Path, seconds: f64, seed: u64) {
    let rig = RigConfig::default();
    let job = RenderJob {
        out: dir.join("match"),
        seed,
        video: true,
        snapshots: vec![],
        source: "procedural".into(),
        progress: false,
    };
    let motion = ProceduralMotion::new(rig.pitch, rig.fps, seconds, seed);
    render_match(rig, Box::new(motion), &job).expect("render");
}

fn demo(dir: &Path, frames: u64) -> std::process::Output {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/polyvision-det.onnx");
    Command::new(env!("CARGO_BIN_EXE_polyvision-edge"))
        .arg("demo")
        .arg("--dir")
        .arg(dir)
        .arg("--model")
        .arg(model)
        .arg("--stitch")
        .arg("cpu")
        .arg("--max-frames")
        .arg(frames.to_string())
        .output()
        .expect("run polyvision-edge demo")
}

#[test]
fn rendered_footage_goes_through_the_whole_pipeline_into_the_buffer() {
    let dir = tempfile::tempdir().expect("tempdir");
    render(dir.path(), 4.0, 21);
    let out = demo(dir.path(), FRAMES);
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "demo failed");
    assert!(
        stdout.contains(&format!("demo: {FRAMES} panoramas")),
        "not every frame went through"
    );

    // The buffer holds one finished match with a row per tracked person and frame.
    let db = rusqlite::Connection::open(dir.path().join("buffer.db")).expect("open buffer");
    let (matches, stopped): (i64, i64) = db
        .query_row("SELECT count(*), count(stopped_ms) FROM matches", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("matches");
    assert_eq!((matches, stopped), (1, 1));
    let rows: i64 = db
        .query_row("SELECT count(*) FROM positions", [], |r| r.get(0))
        .expect("rows");
    assert!(rows >= (FRAMES * 18) as i64, "only {rows} rows stored");

    // The tracks against the truth of the frames that were processed.
    let truth = dir.path().join("match/truth");
    let gt: Vec<_> = read_gt(&truth.join("panorama/gt/gt.txt"))
        .expect("gt")
        .into_iter()
        .filter(|g| g.frame <= FRAMES)
        .collect();
    let s = score(
        &gt,
        &read_tracks(&dir.path().join("tracks.txt")).expect("tracks"),
        &read_positions(&truth.join("positions.csv")).expect("positions"),
        Some(&read_metrics(&dir.path().join("metrics.csv")).expect("metrics")),
        19.8 / 3.6,
    );
    println!(
        "pipeline over {FRAMES} frames: MOTA {:.3} IDF1 {:.3} ID switches {} position RMSE {:.3} m",
        s.mota, s.idf1, s.id_switches, s.position_rmse_m
    );
    assert!(s.mota >= 0.85, "MOTA {}", s.mota);
    assert!(s.idf1 >= 0.85, "IDF1 {}", s.idf1);
    assert!(s.position_rmse_m <= 0.5, "RMSE {}", s.position_rmse_m);
}

#[test]
fn a_corrupt_camera_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    render(dir.path(), 1.0, 22);
    let left = dir.path().join("match/camera-left.mkv");
    let bytes = std::fs::read(&left).expect("read video");
    // Keep the container header, garble the rest.
    let mut broken = bytes[..bytes.len().min(400)].to_vec();
    broken.extend((0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&left, broken).expect("write");
    let out = demo(dir.path(), 10);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    assert!(!out.status.success(), "a corrupt file must fail the run");
    assert!(
        stderr.contains("camera-left.mkv"),
        "the error must name the file: {stderr}"
    );
}
