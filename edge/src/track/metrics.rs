//! Physical metrics per track, from a smoothed trajectory.
//!
//! Raw positions jitter by centimetres from frame to frame, and summing jittery steps inflates
//! distance (a 5 cm jitter at 25 fps adds about a kilometre per match). Each track is smoothed
//! by a Rauch–Tung–Striebel smoother (the forward constant-velocity Kalman filter, then a
//! backward pass over the whole track), which uses every measurement before and after a frame
//! and gives velocity directly. The metrics come from the smoothed positions and speeds:
//!
//! - distance covered: sum of smoothed steps;
//! - distance per speed zone: walking < 7.2 km/h ≤ jogging < 14.4 ≤ running < 19.8 ≤ high-speed
//!   running < 25.2 ≤ sprinting (`high_speed_m` is everything ≥ 19.8 km/h);
//! - top speed;
//! - sprints: runs above 25.2 km/h lasting at least 1 s;
//! - accelerations and decelerations: runs of |dv/dt| > 3 m/s² lasting at least 0.5 s.
//!
//! All thresholds are [`MetricsConfig`] fields with these defaults.

use super::kalman::Kalman;
use super::tracker::{Class, TrackPoint};
use std::collections::BTreeMap;

/// Thresholds of the metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricsConfig {
    /// Upper bounds of walking, jogging, running and high-speed running, m/s (above the last:
    /// sprinting).
    pub zones_mps: [f64; 4],
    /// Sprint threshold, m/s.
    pub sprint_mps: f64,
    /// Shortest sprint, s.
    pub sprint_min_s: f64,
    /// Acceleration threshold, m/s².
    pub accel_mps2: f64,
    /// Shortest acceleration, s.
    pub accel_min_s: f64,
    /// Acceleration noise of the smoother, m/s².
    pub smoothing_sigma_accel: f64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        let kmh = |v: f64| v / 3.6;
        MetricsConfig {
            zones_mps: [kmh(7.2), kmh(14.4), kmh(19.8), kmh(25.2)],
            sprint_mps: kmh(25.2),
            sprint_min_s: 1.0,
            accel_mps2: 3.0,
            accel_min_s: 0.5,
            smoothing_sigma_accel: 4.0,
        }
    }
}

/// A smoothed trajectory: one sample per frame from the track's first to its last measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// First frame.
    pub first_frame: u64,
    /// Positions, metres.
    pub positions: Vec<[f64; 2]>,
    /// Velocities, m/s.
    pub velocities: Vec<[f64; 2]>,
}

/// Smooths one track's points (any order; coasting points are ignored).
pub fn smooth(points: &[TrackPoint], fps: f64, sigma_accel: f64) -> Option<Trajectory> {
    let mut measured: Vec<(u64, [f64; 2], [[f64; 2]; 2])> = points
        .iter()
        .filter_map(|p| Some((p.frame, p.measured?, p.cov?)))
        .collect();
    measured.sort_by_key(|m| m.0);
    measured.dedup_by_key(|m| m.0);
    let (first, last) = (measured.first()?.0, measured.last()?.0);
    let dt = 1.0 / fps;
    let n = (last - first + 1) as usize;
    // Forward pass, keeping predicted and filtered states for the backward pass.
    let mut filtered: Vec<Kalman> = Vec::with_capacity(n);
    let mut predicted: Vec<Kalman> = Vec::with_capacity(n);
    let mut kf = Kalman::new(measured[0].1, measured[0].2);
    let mut next = 0;
    for k in 0..n {
        let frame = first + k as u64;
        if k > 0 {
            kf.predict(dt, sigma_accel);
        }
        predicted.push(kf);
        if next < measured.len() && measured[next].0 == frame {
            if k > 0 {
                kf.update(measured[next].1, measured[next].2);
            }
            next += 1;
        }
        filtered.push(kf);
    }
    // Backward (RTS): x_s[k] = x_f[k] + C (x_s[k+1] − x_p[k+1]), C = P_f F' P_p⁻¹.
    let mut xs: Vec<[f64; 4]> = filtered.iter().map(|f| f.x).collect();
    for k in (0..n.saturating_sub(1)).rev() {
        let pf = filtered[k].p;
        let pp = predicted[k + 1].p;
        let Some(pp_inv) = invert4(&pp) else {
            continue;
        };
        // P_f Fᵀ
        let mut pft = [[0.0; 4]; 4];
        for i in 0..4 {
            pft[i][0] = pf[i][0] + dt * pf[i][2];
            pft[i][1] = pf[i][1] + dt * pf[i][3];
            pft[i][2] = pf[i][2];
            pft[i][3] = pf[i][3];
        }
        let mut c = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                c[i][j] = (0..4).map(|q| pft[i][q] * pp_inv[q][j]).sum();
            }
        }
        let diff: [f64; 4] = std::array::from_fn(|i| xs[k + 1][i] - predicted[k + 1].x[i]);
        for i in 0..4 {
            xs[k][i] = filtered[k].x[i] + (0..4).map(|j| c[i][j] * diff[j]).sum::<f64>();
        }
    }
    Some(Trajectory {
        first_frame: first,
        positions: xs.iter().map(|x| [x[0], x[1]]).collect(),
        velocities: xs.iter().map(|x| [x[2], x[3]]).collect(),
    })
}

/// Gauss–Jordan inverse with partial pivoting.
fn invert4(m: &[[f64; 4]; 4]) -> Option<[[f64; 4]; 4]> {
    let mut a = *m;
    let mut inv = [[0.0; 4]; 4];
    for (i, row) in inv.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for col in 0..4 {
        let pivot = (col..4).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() < 1e-15 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let d = a[col][col];
        for j in 0..4 {
            a[col][j] /= d;
            inv[col][j] /= d;
        }
        for r in 0..4 {
            if r != col {
                let f = a[r][col];
                for j in 0..4 {
                    a[r][j] -= f * a[col][j];
                    inv[r][j] -= f * inv[col][j];
                }
            }
        }
    }
    Some(inv)
}

/// The metrics of one track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackMetrics {
    /// Track id.
    pub id: u32,
    /// Class.
    pub class: Class,
    /// Frames from the first to the last measurement.
    pub frames: usize,
    /// Distance covered, m.
    pub distance_m: f64,
    /// Distance per zone (walking, jogging, running, high-speed running, sprinting), m.
    pub zone_m: [f64; 5],
    /// Distance at or above the high-speed threshold (19.8 km/h by default), m.
    pub high_speed_m: f64,
    /// Top speed, m/s.
    pub top_speed_mps: f64,
    /// Sprints.
    pub sprints: u32,
    /// Accelerations above the threshold.
    pub accelerations: u32,
    /// Decelerations above the threshold.
    pub decelerations: u32,
}

/// Counts runs where `above(i)` holds for at least `min_len` consecutive samples.
fn count_runs(n: usize, min_len: usize, above: impl Fn(usize) -> bool) -> u32 {
    let (mut runs, mut len) = (0, 0);
    for i in 0..n {
        if above(i) {
            len += 1;
            if len == min_len.max(1) {
                runs += 1;
            }
        } else {
            len = 0;
        }
    }
    runs
}

/// Metrics of a smoothed trajectory.
pub fn metrics_of(
    id: u32,
    class: Class,
    t: &Trajectory,
    fps: f64,
    cfg: &MetricsConfig,
) -> TrackMetrics {
    let n = t.positions.len();
    let speed: Vec<f64> = t.velocities.iter().map(|v| v[0].hypot(v[1])).collect();
    let mut zone_m = [0.0; 5];
    let mut distance_m = 0.0;
    for k in 1..n {
        let (a, b) = (t.positions[k - 1], t.positions[k]);
        let step = (b[0] - a[0]).hypot(b[1] - a[1]);
        distance_m += step;
        let v = (speed[k - 1] + speed[k]) / 2.0;
        let zone = cfg.zones_mps.iter().take_while(|&&edge| v >= edge).count();
        zone_m[zone] += step;
    }
    let accel: Vec<f64> = (0..n)
        .map(|k| {
            let (a, b) = (k.saturating_sub(1), (k + 1).min(n - 1));
            if b == a {
                0.0
            } else {
                (speed[b] - speed[a]) * fps / (b - a) as f64
            }
        })
        .collect();
    let sprint_len = (cfg.sprint_min_s * fps).round() as usize;
    let accel_len = (cfg.accel_min_s * fps).round() as usize;
    TrackMetrics {
        id,
        class,
        frames: n,
        distance_m,
        high_speed_m: zone_m[3] + zone_m[4],
        zone_m,
        top_speed_mps: speed.iter().copied().fold(0.0, f64::max),
        sprints: count_runs(n, sprint_len, |i| speed[i] > cfg.sprint_mps),
        accelerations: count_runs(n, accel_len, |i| accel[i] > cfg.accel_mps2),
        decelerations: count_runs(n, accel_len, |i| accel[i] < -cfg.accel_mps2),
    }
}

/// The smoothed trajectory and class of every track of people (the ball has none), by id.
pub fn smooth_tracks(
    points: &[TrackPoint],
    fps: f64,
    sigma_accel: f64,
) -> BTreeMap<u32, (Class, Trajectory)> {
    let mut by_id: BTreeMap<u32, Vec<TrackPoint>> = BTreeMap::new();
    for p in points.iter().filter(|p| p.class != Class::Ball) {
        by_id.entry(p.id).or_default().push(*p);
    }
    by_id
        .into_iter()
        .filter_map(|(id, pts)| Some((id, (pts.last()?.class, smooth(&pts, fps, sigma_accel)?))))
        .collect()
}

/// Metrics of every smoothed track.
pub fn match_metrics(
    tracks: &BTreeMap<u32, (Class, Trajectory)>,
    fps: f64,
    cfg: &MetricsConfig,
) -> Vec<TrackMetrics> {
    tracks
        .iter()
        .map(|(&id, (class, t))| metrics_of(id, *class, t, fps, cfg))
        .collect()
}

/// Replaces every point's position by its track's smoothed position (points outside a track's
/// measured span keep theirs). For offline output: the smoothed path uses the measurements
/// after a frame too.
pub fn smooth_positions(points: &mut [TrackPoint], tracks: &BTreeMap<u32, (Class, Trajectory)>) {
    for p in points.iter_mut() {
        let Some((_, t)) = tracks.get(&p.id) else {
            continue;
        };
        let k = p.frame.checked_sub(t.first_frame).map(|k| k as usize);
        if let Some(pos) = k.and_then(|k| t.positions.get(k)) {
            p.pitch = *pos;
        }
    }
}

/// The CSV header of [`TrackMetrics`] rows.
pub const CSV_HEADER: &str = "track_id,class,team,frames,distance_m,walking_m,jogging_m,running_m,high_speed_running_m,sprinting_m,high_speed_m,top_speed_mps,sprints,accelerations,decelerations";

impl TrackMetrics {
    /// One CSV row, with the track's team.
    pub fn csv(&self, team: &str) -> String {
        let z = self.zone_m;
        format!(
            "{},{},{team},{},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.3},{},{},{}",
            self.id,
            match self.class {
                Class::Player => "player",
                Class::Goalkeeper => "goalkeeper",
                Class::Referee => "referee",
                Class::Ball => "ball",
            },
            self.frames,
            self.distance_m,
            z[0],
            z[1],
            z[2],
            z[3],
            z[4],
            self.high_speed_m,
            self.top_speed_mps,
            self.sprints,
            self.accelerations,
            self.decelerations
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_removes_jitter_from_distance() {
        // 20 s at 3 m/s along x with ±10 cm noise: 60 m.
        let fps = 25.0;
        let mut seed = 1u64;
        let mut noise = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1442695040888963407);
            ((seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.2
        };
        let points: Vec<TrackPoint> = (0..=500)
            .map(|f| TrackPoint {
                frame: f,
                id: 1,
                bbox: [0.0; 4],
                pitch: [0.0; 2],
                measured: Some([3.0 * f as f64 / fps + noise(), noise()]),
                cov: Some([[0.0033, 0.0], [0.0, 0.0033]]),
                class: Class::Player,
                conf: 0.9,
                colour: None,
            })
            .collect();
        let raw: f64 = points
            .windows(2)
            .map(|w| {
                let (a, b) = (w[0].measured.expect("m"), w[1].measured.expect("m"));
                (b[0] - a[0]).hypot(b[1] - a[1])
            })
            .sum();
        let cfg = MetricsConfig::default();
        let m = &match_metrics(
            &smooth_tracks(&points, fps, cfg.smoothing_sigma_accel),
            fps,
            &cfg,
        )[0];
        assert!(raw > 70.0, "raw {raw}");
        assert!((m.distance_m - 60.0).abs() < 1.2, "{m:?}");
        assert!((m.top_speed_mps - 3.0).abs() < 0.3, "{m:?}");
        assert!(m.zone_m[1] > 57.0, "jogging zone {:?}", m.zone_m);
    }

    #[test]
    fn a_sprint_needs_a_full_second() {
        let speed: Vec<f64> = (0..100)
            .map(|i| {
                if (10..34).contains(&i) || (50..76).contains(&i) {
                    8.0
                } else {
                    3.0
                }
            })
            .collect();
        // 24 frames (< 1 s) and 26 frames (> 1 s) at 25 fps.
        assert_eq!(count_runs(speed.len(), 25, |i| speed[i] > 7.0), 1);
    }
}
