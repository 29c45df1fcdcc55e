//! Shared by the edge's integration tests: a procedural match as the rig's buffer holds it.
#![allow(dead_code, unreachable_pub)]

use polyvision_edge::store::PositionRow;
use polyvision_edge::track::tracker::{Class, TrackPoint};
use rig_sim::motion::Motion as _;
use rig_sim::motion::procedural::ProceduralMotion;
use rig_sim::scene::{BALL_ID, Cast};

/// Seed of the procedural match and its cast.
pub const MATCH_SEED: u64 = 4242;

/// Rows of a procedural match as the tracker stores them: 22 players, 3 officials and the
/// ball at 25 fps, positions with 4 cm of frame-to-frame jitter (a filtered track's noise),
/// detection scores spread like the detector's, 5 % coasted rows (score 0).
pub fn match_rows(rows_wanted: usize) -> Vec<PositionRow> {
    let pitch = polyvision_calibration::PitchSize::default();
    let per_frame = 26;
    let frames = rows_wanted.div_ceil(per_frame);
    let mut motion = ProceduralMotion::new(pitch, 25, frames as f64 / 25.0, MATCH_SEED);
    let cast = Cast::standard(MATCH_SEED);
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let gauss = move |r: &mut dyn FnMut() -> f64| {
        let (u, v) = (r().max(1e-12), r());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let mut out = Vec::with_capacity(frames * per_frame);
    while let Some(f) = motion.next_frame() {
        let mut objects: Vec<(u32, [f64; 2], Class)> = f
            .people
            .iter()
            .map(|p| {
                let class = match cast.person(p.id).map(|c| c.role.mot_class()) {
                    Some(2) => Class::Goalkeeper,
                    Some(3) => Class::Referee,
                    _ => Class::Player,
                };
                (p.id + 1, p.pos, class)
            })
            .collect();
        if let Some(b) = f.ball {
            objects.push((BALL_ID + 1, [b.pos[0], b.pos[1]], Class::Ball));
        }
        for (track, pos, class) in objects {
            let coasted = rnd() < 0.05;
            let conf = if coasted {
                0.0
            } else if class == Class::Ball {
                0.55 + 0.45 * rnd()
            } else {
                0.78 + 0.22 * rnd()
            };
            out.push(PositionRow {
                frame: f.index as u32,
                track,
                x_m: pos[0] + 0.04 * gauss(&mut rnd),
                y_m: pos[1] + 0.04 * gauss(&mut rnd),
                class,
                conf: conf as f32,
            });
        }
        if out.len() >= rows_wanted {
            break;
        }
    }
    out.truncate(rows_wanted);
    out
}

/// The rows as the tracker reported them: measured unless coasted (5 cm position noise), with
/// the shirt colour of the cast member (what the team clustering reads).
pub fn track_points(rows: &[PositionRow]) -> Vec<TrackPoint> {
    let cast = Cast::standard(MATCH_SEED);
    rows.iter()
        .map(|r| {
            let measured = (r.conf > 0.0).then_some([r.x_m, r.y_m]);
            TrackPoint {
                frame: r.frame as u64,
                id: r.track,
                bbox: [0.0; 4],
                pitch: [r.x_m, r.y_m],
                measured,
                cov: measured.map(|_| [[0.0025, 0.0], [0.0, 0.0025]]),
                class: r.class,
                conf: r.conf as f64,
                colour: cast
                    .person(r.track.saturating_sub(1))
                    .map(|p| p.look.shirt.map(f32::from)),
            }
        })
        .collect()
}
