//! Simulated technicians: landmark clicks with known noise and gross errors, and the grid of
//! true correspondences that a fitted homography is scored on.
//!
//! A physical camera's clicks are sensor (distorted) pixels and the points document carries the
//! camera's true lens, as after a plumb-line lens fit; the panorama has no distortion.

use crate::camera::Camera;
use crate::scene::Rng;
use polyvision_calibration::points::ClickedPoint;
use polyvision_calibration::{Homography, PitchSize, PointsFile};
use serde::Serialize;

/// How a simulated technician clicks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClickModel {
    /// Number of landmarks clicked.
    pub points: usize,
    /// Click noise, pixels (1σ per axis).
    pub sigma_px: f64,
    /// Fraction of clicks that are gross errors (a random spot at least 50 px from the truth).
    pub outlier_fraction: f64,
}

/// Landmarks a technician can click in this view: inside the image with a 10 px border.
fn visible_landmarks(camera: &Camera, pitch: &PitchSize) -> Vec<(String, [f64; 2], [f64; 2])> {
    pitch
        .landmarks()
        .into_iter()
        .filter_map(|l| {
            let px = camera.project([l.position[0], l.position[1], 0.0])?;
            let inside = px[0] > 10.0
                && px[1] > 10.0
                && px[0] < camera.width as f64 - 10.0
                && px[1] < camera.height as f64 - 10.0;
            inside.then_some((l.name, l.position, px))
        })
        .collect()
}

/// One technician's clicks on `camera`'s image.
pub fn simulate_clicks(
    camera: &Camera,
    pitch: &PitchSize,
    model: &ClickModel,
    seed: u64,
) -> PointsFile {
    let mut rng = Rng::new(seed);
    let candidates = visible_landmarks(camera, pitch);
    // Spread the clicks out as a technician would: farthest-point order from a random start.
    let mut chosen: Vec<usize> = Vec::new();
    if !candidates.is_empty() {
        chosen.push(rng.index(candidates.len()));
    }
    while chosen.len() < model.points.min(candidates.len()) {
        let next = (0..candidates.len())
            .filter(|i| !chosen.contains(i))
            .max_by(|&a, &b| {
                let gap = |i: usize| {
                    chosen
                        .iter()
                        .map(|&c| {
                            let (p, q) = (candidates[i].1, candidates[c].1);
                            (p[0] - q[0]).hypot(p[1] - q[1])
                        })
                        .fold(f64::INFINITY, f64::min)
                };
                gap(a).total_cmp(&gap(b))
            });
        match next {
            Some(i) => chosen.push(i),
            None => break,
        }
    }
    let outliers = (model.outlier_fraction * chosen.len() as f64).round() as usize;
    let (w, h) = (camera.width as f64, camera.height as f64);
    let points = chosen
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let (name, _, px) = &candidates[i];
            let pixel = if k < outliers {
                loop {
                    let p = [rng.range(5.0, w - 5.0), rng.range(5.0, h - 5.0)];
                    if (p[0] - px[0]).hypot(p[1] - px[1]) > 50.0 {
                        break p;
                    }
                }
            } else {
                [
                    (px[0] + model.sigma_px * rng.normal()).clamp(0.0, w),
                    (px[1] + model.sigma_px * rng.normal()).clamp(0.0, h),
                ]
            };
            ClickedPoint {
                pixel,
                landmark: Some(name.clone()),
                pitch: None,
            }
        })
        .collect();
    PointsFile {
        image_size: [camera.width, camera.height],
        points,
        pitch_size: Some(*pitch),
        lens: (!camera.lens.is_pinhole()).then_some(camera.lens),
        camera: Some(camera.name.clone()),
    }
}

/// A true correspondence on the scoring grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GridPoint {
    /// Pitch position, metres.
    pub pitch: [f64; 2],
    /// Where the view shows it, undistorted pixels.
    pub pixel: [f64; 2],
}

/// Every point of a 1 m grid over the pitch that `camera` shows.
pub fn scoring_grid(camera: &Camera, pitch: &PitchSize) -> Vec<GridPoint> {
    let [hl, hw] = pitch.half_extents();
    let mut out = Vec::new();
    for iy in 0..=(2.0 * hw).round() as i32 {
        for ix in 0..=(2.0 * hl).round() as i32 {
            let p = [-hl + ix as f64, -hw + iy as f64];
            let seen = camera
                .project([p[0], p[1], 0.0])
                .is_some_and(|q| camera.contains(q));
            if let (true, Some(pixel)) = (seen, camera.project_undistorted([p[0], p[1], 0.0])) {
                out.push(GridPoint { pitch: p, pixel });
            }
        }
    }
    out
}

/// Position errors of a fitted pitch-from-image map over the grid, centimetres.
pub fn position_errors_cm(fitted: &Homography, grid: &[GridPoint]) -> Vec<f64> {
    grid.iter()
        .map(|g| {
            fitted.apply(g.pixel).map_or(f64::INFINITY, |q| {
                100.0 * (q[0] - g.pitch[0]).hypot(q[1] - g.pitch[1])
            })
        })
        .collect()
}

/// The value at quantile `q` (0–1) of `values`, by nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}
