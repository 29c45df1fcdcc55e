//! The shipped detector (`models/polyvision-det.onnx`) on held-out rendered footage: clips with
//! seeds, kits, light and masts the training never saw, stitched like the daemon stitches, run
//! through the whole detection stage (tiling, tract, merging across tiles) and scored by
//! `polyvision-edge detect-eval`. Fails below the targets: players AP@0.5 ≥ 0.95, referees
//! AP@0.5 ≥ 0.9, ball recall and precision ≥ 0.8 at the card's operating score (a hit: the
//! centre within 5 pixels, about one ball diameter). Run with
//! `--nocapture` for the table.
//!
//! The detector fine-tuned on real footage (`models/polyvision-det-real.onnx`) on real footage:
//! the last 4 s of the SoccerTrack rig's two cameras, labelled
//! by us (`models/real-labels/`), the frames cut from the videos in `../shared` by
//! `scripts/real-labels.py cut --part figures` (the path in `POLYVISION_REAL_FRAMES`; the
//! suite's detection group does both). People are scored as one class (the labels say
//! "person"), with and without the pitch mask. Also on our own stitched panorama of that rig
//! (`POLYVISION_REAL_PANORAMA`) and on OpenCV's vtest.avi (`POLYVISION_VTEST_FRAMES`).

use rig_sim::dataset::{DatasetJob, write_dataset};
use std::path::Path;
use std::process::Command;

/// The detector trained on rendered footage only (the default) and the one fine-tuned on real
/// footage.
const RENDERED_MODEL: &str = "polyvision-det.onnx";
const REAL_MODEL: &str = "polyvision-det-real.onnx";

/// Runs `detect-eval` with `models/<model>` on `data` with `extra` arguments; the per-class
/// scores by name.
fn detect_eval(model: &str, data: &Path, coco: &Path, extra: &[&str]) -> serde_json::Value {
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(model);
    let out = Command::new(env!("CARGO_BIN_EXE_polyvision-edge"))
        .arg("detect-eval")
        .arg("--model")
        .arg(&model)
        .arg("--dataset")
        .arg(data)
        .arg("--coco")
        .arg(coco)
        .args(extra)
        .output()
        .expect("run detect-eval");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "detect-eval failed");
    serde_json::from_str(&std::fs::read_to_string(coco.join("scores.json")).expect("scores"))
        .expect("json")
}

/// The folder an environment variable names; a relative path is taken from the workspace root
/// (where the suite runs), not from this crate's folder (where cargo runs the test).
fn folder_from(var: &str, what: &str) -> std::path::PathBuf {
    let value = std::env::var_os(var).unwrap_or_else(|| panic!("{var}: {what}"));
    let path = Path::new(&value);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
    }
}

/// One figure of one class from `detect-eval`'s scores (−1 when absent).
fn figure(scores: &serde_json::Value, name: &str, key: &str) -> f64 {
    scores
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .and_then(|c| c[key].as_f64())
        .unwrap_or(-1.0)
}

#[test]
fn shipped_detector_meets_its_targets_on_held_out_clips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("held-out");
    let job = DatasetJob {
        out: data.clone(),
        first_seed: 9000,
        clips: 4,
        frames_per_clip: 8,
        seconds: 40.0,
        vary: true,
    };
    write_dataset(&job, false).expect("render held-out clips");
    let scores = detect_eval(RENDERED_MODEL, &data, &dir.path().join("coco"), &[]);
    let class = |name: &str| {
        scores
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no scores for {name}"))
    };
    let figure = |name: &str, key: &str| figure(&scores, name, key);
    assert!(class("player")["truths"].as_u64().unwrap_or(0) > 200);
    assert!(class("ball")["truths"].as_u64().unwrap_or(0) >= 10);
    assert!(
        figure("player", "ap50") >= 0.95,
        "players AP@0.5 {}",
        figure("player", "ap50")
    );
    assert!(
        figure("referee", "ap50") >= 0.9,
        "referees AP@0.5 {}",
        figure("referee", "ap50")
    );
    assert!(
        figure("ball", "recall") >= 0.8,
        "ball recall {}",
        figure("ball", "recall")
    );
    assert!(
        figure("ball", "precision") >= 0.8,
        "ball precision {}",
        figure("ball", "precision")
    );
}

/// What the real-footage detector must keep on the real frames of the last 4 s (both cameras):
/// the figures it reached, a little below (measured 0.965 and 0.676 without the mask, 0.724
/// with it; the ball 3 of 4 at precision 0.43). The targets we are after are person recall
/// 0.95 at precision 0.90 and the ball 0.7 at 0.7 (models/README.md).
const REAL_PERSON_RECALL: f64 = 0.95;
const REAL_PERSON_PRECISION: f64 = 0.65;
const REAL_BALL_RECALL: f64 = 0.5;
const REAL_BALL_PRECISION: f64 = 0.4;

#[test]
#[ignore = "needs the real frames: POLYVISION_REAL_FRAMES from scripts/real-labels.py cut (the detection group does it)"]
fn real_footage_detector_on_the_real_rigs_cameras() {
    let data = folder_from(
        "POLYVISION_REAL_FRAMES",
        "the folder `scripts/real-labels.py cut --part figures` wrote",
    );
    let data = data.as_path();
    let dir = tempfile::tempdir().expect("tempdir");
    println!("real footage (both cameras):");
    let masked = detect_eval(
        REAL_MODEL,
        data,
        &dir.path().join("coco"),
        &["--people", "--pitch-mask"],
    );
    let open: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("coco/scores-unmasked.json")).expect("scores"),
    )
    .expect("json");
    assert!(
        figure(&open, "person", "truths") >= 200.0,
        "too few labelled people"
    );
    assert!(
        figure(&open, "ball", "truths") >= 4.0,
        "too few labelled balls"
    );
    for (what, scores) in [("without the mask", &open), ("with the mask", &masked)] {
        let recall = figure(scores, "person", "recall");
        let precision = figure(scores, "person", "precision");
        assert!(
            recall >= REAL_PERSON_RECALL && precision >= REAL_PERSON_PRECISION,
            "people {what}: recall {recall:.3} (≥ {REAL_PERSON_RECALL}), precision {precision:.3} (≥ {REAL_PERSON_PRECISION})"
        );
        let recall = figure(scores, "ball", "centre_recall");
        let precision = figure(scores, "ball", "centre_precision");
        assert!(
            recall >= REAL_BALL_RECALL && precision >= REAL_BALL_PRECISION,
            "ball {what}: recall {recall:.3} (≥ {REAL_BALL_RECALL}), precision {precision:.3} (≥ {REAL_BALL_PRECISION})"
        );
    }
}

/// What the real-footage detector must keep on our stitched panorama of the same rig at the
/// same instants (scripts/real-panorama.py; the camera labels carried into it): measured 0.870
/// and 0.755, with or without the mask.
const PANORAMA_PERSON_RECALL: f64 = 0.85;
const PANORAMA_PERSON_PRECISION: f64 = 0.70;

#[test]
#[ignore = "needs the stitched real panoramas: POLYVISION_REAL_PANORAMA from scripts/real-labels.py panorama (the detection group does it)"]
fn real_footage_detector_on_our_panorama_of_the_real_rig() {
    let data = folder_from(
        "POLYVISION_REAL_PANORAMA",
        "the folder `scripts/real-labels.py panorama` wrote",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    println!("our panorama of the real rig:");
    let scores = detect_eval(
        REAL_MODEL,
        &data,
        &dir.path().join("coco"),
        &["--people", "--pitch-mask"],
    );
    let unmasked: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("coco/scores-unmasked.json")).expect("scores"),
    )
    .expect("json");
    assert!(
        figure(&scores, "person", "truths") >= 150.0,
        "too few labelled people"
    );
    for (what, scores) in [("without the mask", &unmasked), ("with the mask", &scores)] {
        let recall = figure(scores, "person", "recall");
        let precision = figure(scores, "person", "precision");
        assert!(
            recall >= PANORAMA_PERSON_RECALL && precision >= PANORAMA_PERSON_PRECISION,
            "people {what}: recall {recall:.3} (≥ {PANORAMA_PERSON_RECALL}), precision {precision:.3} (≥ {PANORAMA_PERSON_PRECISION})"
        );
    }
}

/// What the real-footage detector must keep on vtest.avi's 20 labelled frames (people walking,
/// not football: how far it carries beyond a pitch): measured recall 0.441 at IoU 0.5, 0.766
/// by the centre criterion.
const VTEST_PERSON_RECALL: f64 = 0.40;

#[test]
#[ignore = "needs vtest.avi's frames: POLYVISION_VTEST_FRAMES from scripts/real-labels.py cut (the detection group does it)"]
fn real_footage_detector_finds_the_people_of_vtest() {
    let data = folder_from(
        "POLYVISION_VTEST_FRAMES",
        "the folder `scripts/real-labels.py --only vtest cut` wrote",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    println!("vtest.avi:");
    let scores = detect_eval(REAL_MODEL, &data, &dir.path().join("coco"), &["--people"]);
    assert!(
        figure(&scores, "person", "truths") >= 80.0,
        "too few labelled people"
    );
    let recall = figure(&scores, "person", "recall");
    assert!(
        recall >= VTEST_PERSON_RECALL,
        "vtest people: recall {recall:.3} (≥ {VTEST_PERSON_RECALL})"
    );
}
