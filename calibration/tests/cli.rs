//! `polyvision-calibrate` as a user runs it: a two-camera file built camera by camera, and the
//! panorama refused until both cameras are in it.

use polyvision_calibration::{CalibrationFile, Homography, PitchSize};
use std::path::Path;
use std::process::{Command, Output};

fn calibrate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_polyvision-calibrate"))
        .args(args)
        .output()
        .expect("polyvision-calibrate runs")
}

/// `solve --points POINTS --camera CAMERA --into CAL`.
fn solve_into(points: &Path, camera: &str, cal: &str) -> Output {
    calibrate(&[
        "solve",
        "--points",
        points.to_str().expect("utf-8 path"),
        "--camera",
        camera,
        "--into",
        cal,
    ])
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A points document for a camera whose pitch → pixel map is `g`, with one repeated label.
fn write_points(path: &Path, g: &Homography) {
    let pitch = PitchSize::default();
    let mut points: Vec<serde_json::Value> = [
        "centre_spot",
        "halfway_near",
        "halfway_far",
        "penalty_spot_left",
        "penalty_spot_right",
        "centre_circle_left",
        "centre_circle_right",
        "penalty_area_left_near",
    ]
    .iter()
    .map(|n| {
        let pixel = g
            .apply(pitch.landmark(n).expect("landmark"))
            .expect("in front");
        serde_json::json!({ "pixel": pixel, "landmark": n })
    })
    .collect();
    // The same landmark again, clicked 40 px away from it.
    let spot = g.apply([0.0, 0.0]).expect("in front");
    points.push(serde_json::json!({ "pixel": [spot[0] + 40.0, spot[1]], "pitch": [0.0, 0.0] }));
    let doc = serde_json::json!({ "image_size": [1280, 720], "points": points });
    std::fs::write(path, serde_json::to_vec(&doc).expect("json")).expect("write points");
}

#[test]
fn solve_builds_a_two_camera_file_and_panorama_refuses_one_camera() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cal = dir.path().join("rig.json");
    let cal_s = cal.to_str().expect("utf-8 path");
    for (name, shift) in [("left", 80.0), ("right", -80.0)] {
        let g = Homography::from_rows([
            [9.0, 0.0, 640.0 + shift],
            [0.0, -4.5, 330.0],
            [0.0, 0.002, 1.0],
        ])
        .expect("valid");
        write_points(&dir.path().join(format!("{name}.json")), &g);
    }
    let left = dir.path().join("left.json");
    let out = solve_into(&left, "left", cal_s);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("left out"),
        "the repeated label is left out: {said}"
    );
    assert!(said.contains("held out one at a time"), "{said}");
    assert!(said.contains("cameras: left"), "{said}");

    let out = calibrate(&["panorama", "--calibration", cal_s]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("joins cameras `left` and `right`, this file has left")
            && said.contains("--camera left|right --into"),
        "{said}"
    );

    let right = dir.path().join("right.json");
    let out = solve_into(&right, "right", cal_s);
    assert!(out.status.success(), "{}", text(&out));
    let file = CalibrationFile::load(&cal).expect("valid file");
    let names: Vec<&str> = file.cameras.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["left", "right"]);
    let record = file.cameras[1].fit.as_ref().expect("fit kept");
    assert!(record.held_out_cm.is_some() && record.held_out_expected_cm.is_some());
    let left_out = record
        .points
        .iter()
        .filter(|p| p.left_out.is_some())
        .count();
    assert_eq!(left_out, 1, "{:?}", record.points);

    // Solving a camera again replaces it and keeps the other one.
    let out = solve_into(&left, "left", cal_s);
    assert!(out.status.success(), "{}", text(&out));
    let file = CalibrationFile::load(&cal).expect("valid file");
    assert_eq!(file.cameras.len(), 2);

    let out = calibrate(&[
        "solve",
        "--points",
        left.to_str().expect("utf-8"),
        "--threshold-px=0",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--threshold-px must be a positive number"));
}
