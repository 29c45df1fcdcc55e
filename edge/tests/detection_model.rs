//! The shipped detector (`models/polyvision-det.onnx`) on held-out rendered footage: clips with
//! seeds, kits, light and masts the training never saw, stitched like the daemon stitches, run
//! through the whole detection stage (tiling, tract, merging across tiles) and scored by
//! `polyvision-edge detect-eval`. Fails below the targets: players AP@0.5 ≥ 0.95, referees
//! AP@0.5 ≥ 0.9, ball recall and precision ≥ 0.8 at the card's operating score (a hit: the
//! centre within 5 pixels, about one ball diameter). Run with
//! `--nocapture` for the table.

use rig_sim::dataset::{DatasetJob, write_dataset};
use std::path::Path;
use std::process::Command;

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
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/polyvision-det.onnx");
    let coco = dir.path().join("coco");
    let out = Command::new(env!("CARGO_BIN_EXE_polyvision-edge"))
        .arg("detect-eval")
        .arg("--model")
        .arg(&model)
        .arg("--dataset")
        .arg(&data)
        .arg("--coco")
        .arg(&coco)
        .output()
        .expect("run detect-eval");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "detect-eval failed");
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(coco.join("scores.json")).expect("scores"))
            .expect("json");
    let class = |name: &str| {
        scores
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no scores for {name}"))
    };
    let figure = |name: &str, key: &str| class(name)[key].as_f64().unwrap_or(-1.0);
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
