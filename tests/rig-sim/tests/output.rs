//! A short rendering through the real binary: the videos decode with GStreamer to the expected
//! frame count and size, and the truth files agree with each other and with the calibration.

use polyvision_calibration::CalibrationFile;
use rig_sim::encode::probe_video;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

const SMALL_RIG: &str = "[cameras.left]\nwidth = 640\nheight = 360\n[cameras.right]\nwidth = 640\nheight = 360\n[panorama]\nwidth = 1600\n";

fn render(dir: &Path, extra: &[&str]) -> std::process::Output {
    let rig = dir.join("small.toml");
    std::fs::write(&rig, SMALL_RIG).expect("write rig");
    Command::new(env!("CARGO_BIN_EXE_rig-sim"))
        .args(["render", "--quiet", "--rig"])
        .arg(&rig)
        .arg("--out")
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .expect("run rig-sim")
}

struct GtRow {
    frame: u64,
    id: u32,
    bbox: [f64; 4],
    class: u8,
    visibility: f64,
}

fn read_gt(path: &Path) -> Vec<GtRow> {
    std::fs::read_to_string(path)
        .expect("gt.txt")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 9, "{l}");
            let n = |i: usize| f[i].parse::<f64>().expect("number");
            GtRow {
                frame: n(0) as u64,
                id: n(1) as u32,
                bbox: [n(2), n(3), n(4), n(5)],
                class: n(7) as u8,
                visibility: n(8),
            }
        })
        .collect()
}

#[test]
fn videos_decode_and_truth_is_consistent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = render(dir.path(), &["--seconds", "2", "--seed", "5"]);
    assert!(
        out.status.success(),
        "rig-sim failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out_dir = dir.path().join("out");
    let frames = 50u64;

    for cam in ["left", "right"] {
        let (n, w, h) = probe_video(&out_dir.join(format!("camera-{cam}.mkv"))).expect("decodes");
        assert_eq!((n, w, h), (frames, 640, 360), "camera-{cam}.mkv");
    }

    let cal =
        CalibrationFile::load(&out_dir.join("truth/calibration.json")).expect("calibration loads");
    assert_eq!(cal.cameras.len(), 2);
    let pano = cal.panorama.as_ref().expect("panorama");
    assert_eq!(pano.image_size[0], 1600);

    // positions.csv: every frame has 25 people and the ball.
    let csv = std::fs::read_to_string(out_dir.join("truth/positions.csv")).expect("positions");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("frame,time_s,id,role,team,x_m,y_m,z_m,vx_mps,vy_mps")
    );
    let mut pos: HashMap<(u64, u32), [f64; 3]> = HashMap::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let n = |i: usize| f[i].parse::<f64>().expect("number");
        pos.insert((n(0) as u64, n(2) as u32), [n(5), n(6), n(7)]);
    }
    assert_eq!(pos.len() as u64, frames * 26);

    for (view, size) in [
        ("left", [640.0, 360.0]),
        ("right", [640.0, 360.0]),
        (
            "panorama",
            [pano.image_size[0] as f64, pano.image_size[1] as f64],
        ),
    ] {
        let ini = std::fs::read_to_string(out_dir.join(format!("truth/{view}/seqinfo.ini")))
            .expect("seqinfo");
        assert!(ini.contains(&format!("seqLength={frames}")), "{ini}");
        let rows = read_gt(&out_dir.join(format!("truth/{view}/gt/gt.txt")));
        assert!(
            rows.len() as u64 > frames * 5,
            "{view}: only {} rows",
            rows.len()
        );
        let (lens, image_from_pitch) = match cal.camera(view) {
            Some(c) => (Some(c.lens), c.pitch_from_image.inverse()),
            None => (None, pano.pitch_from_image.inverse()),
        };
        let mut checked = 0;
        for r in &rows {
            assert!(
                (1..=frames).contains(&r.frame) && (1..=26).contains(&r.id),
                "{view}: frame {} id {}",
                r.frame,
                r.id
            );
            assert!((0.0..=1.0).contains(&r.visibility));
            let [x, y, w, h] = r.bbox;
            assert!(
                x >= 0.0 && y >= 0.0 && x + w <= size[0] + 0.01 && y + h <= size[1] + 0.01,
                "{view}: box {:?} outside the image",
                r.bbox
            );
            let Some(p) = pos.get(&(r.frame, r.id)) else {
                panic!(
                    "{view}: frame {} id {} has a box but no position",
                    r.frame, r.id
                )
            };
            let project = |q: [f64; 2]| {
                let u = image_from_pitch.apply(q).expect("finite");
                lens.map(|l| l.distort_pixel(u)).unwrap_or(u)
            };
            let inside = x > 1.0 && y > 1.0 && x + w < size[0] - 1.0 && y + h < size[1] - 1.0;
            if r.class == 4 || !inside || r.visibility < 0.9 {
                continue;
            }
            // A fully visible person stands on the projection of their position: the box's
            // bottom centre is at the foot point, up to the stride.
            let foot = project([p[0], p[1]]);
            assert!(
                (y + h - foot[1]).abs() < 0.15 * h + 1.5,
                "{view} frame {} id {}: box bottom {} vs foot {:?}",
                r.frame,
                r.id,
                y + h,
                foot
            );
            assert!(
                (x + w / 2.0 - foot[0]).abs() < 0.5 * w + 1.0,
                "{view} frame {} id {}: box centre {} vs foot {:?}",
                r.frame,
                r.id,
                x + w / 2.0,
                foot
            );
            checked += 1;
        }
        assert!(
            checked as u64 > frames,
            "{view}: only {checked} boxes checked against positions"
        );
    }
}

#[test]
fn bad_rig_file_is_refused_with_the_field_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rig = dir.path().join("bad.toml");
    std::fs::write(&rig, "[mast]\nbaseline_m = -1\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_rig-sim"))
        .args(["render", "--quiet", "--rig"])
        .arg(&rig)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mast.baseline_m"), "{err}");
    assert!(
        !dir.path().join("out").exists(),
        "nothing is written for a bad rig"
    );
}
