//! The real two-camera rig end to end: the SoccerTrack recording (`../shared/data/real/
//! soccertrack`, two 3072×1728 HEVC files of a real match) through `polyvision-edge process`
//! with the two-camera calibration made from the clicked landmarks by
//! `scripts/real-panorama.py` (the path in `POLYVISION_REAL_RIG`; the suite's real-rig group
//! makes it). Checks what a user of the command relies on:
//!
//! - the cameras' offset is found from the overlap: left frame n + 4 shows right frame n (seen by
//!   eye; 160 ms), to within half a frame, with a clear correlation peak;
//! - the cameras' motion per cell of the overlap agrees better after the offset (fewer ghosts),
//!   and the right camera's colour is matched (the grey step across the seam falls);
//! - the whole pipeline runs: every panorama asked for goes through, people are tracked on the
//!   pitch (none off it), and tracks, metrics, the buffer and the preview picture are written.
//!
//! And the seam on the real frames (left frame 5 and right frame 1, the same instant):
//! `polyvision-calibrate seam` registers the two cameras over their overlap and says how far
//! apart they were at its middle, the step a pitch line makes across the seam.
//!
//! Run with `--nocapture` for the figures.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Panoramas processed: 1.2 s of the 10 s recording (the offset is found from the first 8 s;
/// the detector takes about 4 s a panorama on two cores).
const FRAMES: u64 = 30;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder an environment variable names; a relative path is taken from the workspace root.
fn folder_from(var: &str, what: &str) -> PathBuf {
    let value = std::env::var_os(var).unwrap_or_else(|| panic!("{var}: {what}"));
    let path = Path::new(&value);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        workspace().join(path)
    }
}

#[test]
#[ignore = "needs the real recording and its calibration: POLYVISION_REAL_RIG from scripts/real-panorama.py (the real-rig group does it)"]
fn the_real_recording_is_synced_stitched_and_tracked_by_one_command() {
    let rig = folder_from(
        "POLYVISION_REAL_RIG",
        "the folder of scripts/real-panorama.py's calibration.json",
    );
    let shared = match std::env::var_os("POLYVISION_SHARED") {
        Some(_) => folder_from("POLYVISION_SHARED", "the shared data folder"),
        None => workspace().join("../shared"),
    };
    let footage = shared.join("data/real/soccertrack");
    let out = tempfile::tempdir().expect("tempdir");
    let run = Command::new(env!("CARGO_BIN_EXE_polyvision-edge"))
        .arg("process")
        .arg("--left")
        .arg(footage.join("left_camera.mp4"))
        .arg("--right")
        .arg(footage.join("right_camera.mp4"))
        .arg("--calibration")
        .arg(rig.join("calibration.json"))
        .arg("--stitch")
        .arg("cpu")
        .arg("--max-frames")
        .arg(FRAMES.to_string())
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("run polyvision-edge process");
    let stdout = String::from_utf8_lossy(&run.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "process failed");
    let figures: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("run.json")).expect("run.json"),
    )
    .expect("json");
    let f = |path: &str| {
        figures
            .pointer(path)
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("run.json has no number at {path}: {figures}"))
    };

    // In sync: the offset seen by eye, found from the overlap.
    let offset = f("/sync_found/offset_frames");
    assert!((offset - 4.0).abs() <= 0.5, "offset {offset} frames");
    let (peak, runner_up) = (f("/sync_found/peak"), f("/sync_found/runner_up"));
    assert!(
        peak >= 0.05 && peak >= 1.5 * runner_up.max(0.0),
        "the correlation peak does not stand out: {figures}"
    );
    assert!((f("/camera_offset_ms") - 160.0).abs() <= 20.0, "{figures}");

    // The seam: fewer ghosts after the offset, a smaller colour step after the gain.
    let [ghosts, ghosts_synced] = [
        "/seam_difference/motion_mismatch/0",
        "/seam_difference/motion_mismatch/1",
    ]
    .map(f);
    let [grey, grey_matched] = [
        "/seam_difference/grey_difference/0",
        "/seam_difference/grey_difference/1",
    ]
    .map(f);
    println!(
        "real rig: offset {offset:+.2} frames; motion mismatch {ghosts:.3} -> {ghosts_synced:.3}; grey difference {grey:.2} -> {grey_matched:.2}"
    );
    assert!(
        ghosts_synced < 0.95 * ghosts,
        "the offset did not line the cameras' motion up: {ghosts} -> {ghosts_synced}"
    );
    assert!(
        grey_matched < grey,
        "the colour match did not help the seam: {grey} -> {grey_matched}"
    );
    assert_eq!(figures["right_gain"].as_array().map(Vec::len), Some(3));

    // The pipeline: every panorama asked for, people tracked, every output written.
    assert_eq!(f("/panoramas") as u64, FRAMES, "{figures}");
    let unpaired = f("/unpaired_frames");
    assert!(
        (4.0..=6.0).contains(&unpaired),
        "{unpaired} unpaired frames: the first four left frames have no partner, every other should"
    );
    // People followed for a second (25 frames): about 22 players and referees are on the pitch.
    let metrics = std::fs::read_to_string(out.path().join("metrics.csv")).expect("metrics");
    let people = metrics
        .lines()
        .skip(1)
        .filter(|r| {
            let cols: Vec<&str> = r.split(',').collect();
            cols[1] != "ball" && cols[3].parse::<u32>().is_ok_and(|n| n >= 25)
        })
        .count() as f64;
    assert!(
        (10.0..=40.0).contains(&people),
        "{people} people followed for 1 s (about 22 players and a referee are on the pitch)"
    );
    for file in ["tracks.txt", "metrics.csv", "buffer.db", "preview.png"] {
        let len = std::fs::metadata(out.path().join(file))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 0, "{file} not written");
    }
    // Every tracked position is on the pitch or within the mask's 3 m.
    let tracks = std::fs::read_to_string(out.path().join("tracks.txt")).expect("tracks");
    for row in tracks.lines() {
        let cols: Vec<f64> = row.split(',').filter_map(|c| c.parse().ok()).collect();
        let (x, y) = (cols[7], cols[8]);
        assert!(
            x.abs() <= 52.5 + 3.5 && y.abs() <= 34.0 + 3.5,
            "a track off the pitch: {row}"
        );
    }
    let db = rusqlite::Connection::open(out.path().join("buffer.db")).expect("buffer");
    let rows: i64 = db
        .query_row("SELECT count(*) FROM positions", [], |r| r.get(0))
        .expect("rows");
    assert!(rows as f64 >= people * 25.0, "{rows} rows in the buffer");
}

#[test]
#[ignore = "needs the real frames and calibration: POLYVISION_REAL_RIG from scripts/real-panorama.py --first 1 --last 5 --step 4 (the real-rig group does it)"]
fn pitch_lines_step_by_at_most_two_pixels_across_the_real_seam() {
    let rig = folder_from(
        "POLYVISION_REAL_RIG",
        "the folder of scripts/real-panorama.py's calibration.json and work/frames",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cal = dir.path().join("calibration.json");
    std::fs::copy(rig.join("calibration.json"), &cal).expect("copy calibration");
    let frames = rig.join("work/frames");
    let out = Command::new(workspace().join("target/release/polyvision-calibrate"))
        .arg("seam")
        .arg("--calibration")
        .arg(&cal)
        // Left frame n + 4 shows right frame n.
        .arg("--left")
        .arg(frames.join("left-000005.png"))
        .arg("--right")
        .arg(frames.join("right-000001.png"))
        .output()
        .expect("run polyvision-calibrate seam");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "seam failed");
    // "..., brightness difference rms A -> B, shift (X, Y) px removed"
    let numbers: Vec<f64> = stdout
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter_map(|t| t.parse().ok())
        .collect();
    let n = numbers.len();
    assert!(n >= 4, "no figures in {stdout:?}");
    let (rms_before, rms_after, dx, dy) = (
        numbers[n - 4],
        numbers[n - 3],
        numbers[n - 2],
        numbers[n - 1],
    );
    println!(
        "real seam: step {:.2} px at the middle of the overlap ({dx:+.2}, {dy:+.2}); brightness rms {rms_before:.2} -> {rms_after:.2} after registration",
        dx.hypot(dy)
    );
    assert!(
        dx.hypot(dy) <= 2.0,
        "the seam steps by {:.2} px",
        dx.hypot(dy)
    );
    assert!(rms_after < rms_before, "registration did not help");
}
