//! Real trajectories from `../shared/data`. The data is not part of the repository: when it is
//! absent these tests say so and pass without checking anything else.

use polyvision_calibration::PitchSize;
use rig_sim::motion::Motion;
use rig_sim::motion::metrica::{EXCERPT, MetricaMotion, find_data_dir, read_tracking};

fn excerpt() -> Option<std::path::PathBuf> {
    let found = find_data_dir()
        .map(|d| d.join(EXCERPT))
        .filter(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "SKIPPED: Metrica data not found (expected ../shared/data/{EXCERPT} or $POLYVISION_DATA)"
        );
    }
    found
}

#[test]
fn excerpt_reads_as_documented() {
    let Some(path) = excerpt() else { return };
    let frames = read_tracking(&path, &PitchSize::default()).expect("reads");
    assert_eq!(frames.len(), 2100);
    assert_eq!(frames[0].frame, 1);
    assert!(
        frames
            .iter()
            .all(|f| f.players.len() == 22 && f.players.iter().all(|p| p[0].is_finite()))
    );
    assert_eq!(frames.iter().filter(|f| f.ball.is_none()).count(), 526);
    // Kick-off at frame 361, ball on the centre spot.
    let b = frames[360].ball.expect("ball at kick-off");
    assert!(b[0].abs() < 0.5 && b[1].abs() < 1.0, "{b:?}");
    // Team A's goalkeeper starts at x ≈ 0.85 of the length.
    assert!((frames[0].players[0][0] - 0.35 * 105.0).abs() < 1.0);
}

#[test]
fn resampled_motion_is_smooth_and_complete() {
    let Some(path) = excerpt() else { return };
    let mut m = MetricaMotion::open(&path, PitchSize::default(), 30, 14.4, 10.0).expect("opens");
    assert_eq!(m.frame_count(), 300);
    let mut n = 0;
    let mut prev: Option<Vec<[f64; 2]>> = None;
    while let Some(f) = m.next_frame() {
        assert_eq!(f.people.len(), 25);
        let pos: Vec<[f64; 2]> = f.people.iter().map(|p| p.pos).collect();
        if let Some(prev) = &prev {
            for (a, b) in prev.iter().zip(&pos) {
                // 30 fps: nobody moves more than ~13 m/s between frames (raw data glitches aside).
                assert!((a[0] - b[0]).hypot(a[1] - b[1]) < 0.75, "{a:?} → {b:?}");
            }
        }
        prev = Some(pos);
        n += 1;
    }
    assert_eq!(n, 300);
    let err = MetricaMotion::open(&path, PitchSize::default(), 25, 80.0, 10.0).unwrap_err();
    assert!(err.to_string().contains("covers"), "{err}");
}

#[test]
fn malformed_lines_are_reported_with_their_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.txt");
    let good = format!("1:{}:0.5,0.5", vec!["0.1,0.2"; 22].join(";"));
    std::fs::write(
        &p,
        format!("{good}\n2:{}:0.5\n", vec!["0.1,0.2"; 22].join(";")),
    )
    .expect("write");
    let err = read_tracking(&p, &PitchSize::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(":2:"), "{err}");
}
