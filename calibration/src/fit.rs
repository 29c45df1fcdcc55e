//! Field homography from clicked pixel ↔ pitch point pairs.
//!
//! The estimate is the image-from-pitch map `G` (pitch metres → pixels): landmark positions are
//! exact and the clicks carry the noise, so minimising the reprojection error in pixels is the
//! maximum-likelihood fit for Gaussian click noise. The steps:
//!
//! 1. **Checks** that name the offending point: at least four points, finite numbers, pixels
//!    inside the image, no duplicates, not (nearly) all on one line.
//! 2. **Normalised DLT** (Hartley): both point sets are shifted to their centroid and scaled to a
//!    mean distance of √2, the 2n×9 system is solved by the eigenvector of `AᵀA` with the
//!    smallest eigenvalue.
//! 3. **RANSAC**: minimal four-point samples (skipping samples with three collinear points),
//!    inliers within a threshold in pixels, adaptive number of iterations for a 99.9 % chance of
//!    one clean sample, deterministic seed.
//! 4. **Levenberg–Marquardt** on the inliers: eight parameters of the normalised matrix, residuals
//!    in pixels; the inlier set is recomputed with the refined model until it settles.
//! 5. **Uncertainty**: the parameter covariance `(JᵀΣ⁻¹J)⁻¹` from the final Jacobian, with Σ the
//!    clicks' 2×2 noise covariance estimated from the residual vectors (each axis at least the
//!    assumed click precision), propagated to a pitch
//!    position for every point of a grid over the visible pitch. That is the expected error of
//!    the *map* (not of a detection) in centimetres, so a technician sees whether the far
//!    touchline is good enough before saving. Because Σ comes from the residuals, whatever the
//!    lens model gets wrong shows up in it too.
//! 6. **Held-out check**: each inlier in turn is left out, the map refitted from the others, and
//!    the distance between where that map puts the click and the point's pitch position is
//!    measured in metres. Beside it the same distance as the uncertainty model predicts it (map
//!    error plus the held-out click's own noise), so a fit that claims more than it delivers
//!    shows it.

use crate::homography::Homography;
use crate::lens::LensModel;
use crate::pitch::PitchSize;
use nalgebra::{Matrix2, SMatrix, SVector, Vector2};
use serde::Serialize;

/// One clicked correspondence.
#[derive(Debug, Clone, PartialEq)]
pub struct PointPair {
    /// Where the point is in the image, pixels (undistorted when the camera has a lens model).
    pub pixel: [f64; 2],
    /// Where it is on the pitch, metres.
    pub pitch: [f64; 2],
    /// How errors name it: the landmark's name, or `points[i]`.
    pub label: String,
}

/// Settings of the fit.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// A point whose reprojection error exceeds this is an outlier, pixels.
    pub ransac_threshold_px: f64,
    /// How precisely a person clicks, pixels (1σ); the floor of the noise in the uncertainty.
    pub click_sigma_px: f64,
    /// Upper bound on RANSAC samples.
    pub max_iterations: usize,
    /// Seed of RANSAC's sampler, so that a fit is reproducible.
    pub seed: u64,
    /// Spacing of the uncertainty grid, metres.
    pub grid_step_m: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            ransac_threshold_px: 4.0,
            click_sigma_px: 1.0,
            max_iterations: 2000,
            seed: 0x5eed,
            grid_step_m: 2.5,
        }
    }
}

/// The image width the default pixel thresholds are meant for.
pub const REFERENCE_WIDTH_PX: f64 = 1280.0;

impl FitOptions {
    /// The defaults scaled to an image of `size`: clicks on a 4K frame are made on a screen that
    /// shows it shrunk, so their error in sensor pixels grows with the image (4 px and 1 px per
    /// 1,280 px of the longer side, never less).
    pub fn for_image(size: [u32; 2]) -> Self {
        let scale = (f64::from(size[0].max(size[1])) / REFERENCE_WIDTH_PX).max(1.0);
        let d = FitOptions::default();
        FitOptions {
            ransac_threshold_px: d.ransac_threshold_px * scale,
            click_sigma_px: d.click_sigma_px * scale,
            ..d
        }
    }
}

/// Why no homography could be fitted; each names the point at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FitError {
    /// Fewer than four point pairs.
    #[error("{got} point(s) given; a homography needs at least 4")]
    TooFewPoints {
        /// How many were given.
        got: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error("{label}: {what} coordinate is not a finite number")]
    NonFinite {
        /// The point.
        label: String,
        /// `pixel` or `pitch`.
        what: &'static str,
    },
    /// A pixel lies outside the image.
    #[error("{label}: pixel ({u}, {v}) is outside the {width}×{height} image")]
    OutsideImage {
        /// The point.
        label: String,
        /// Pixel column.
        u: f64,
        /// Pixel row.
        v: f64,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
    /// Two points have the same pixel or the same pitch position.
    #[error("{first} and {second} have the same {what} position")]
    Duplicate {
        /// The earlier point.
        first: String,
        /// The later point.
        second: String,
        /// `pixel` or `pitch`.
        what: &'static str,
    },
    /// All points, or all but one, lie on one line: the map is not determined.
    #[error(
        "points {labels} lie on one line; add points off that line (a homography needs four points with no three in a row)"
    )]
    Collinear {
        /// The points on the line, comma-separated.
        labels: String,
    },
    /// No four points agree on one map.
    #[error(
        "no consistent homography: the best model explains only {inliers} of {total} points within {threshold_px} px; check the landmark names of the clicks"
    )]
    NoConsensus {
        /// Largest consensus set found.
        inliers: usize,
        /// Number of points.
        total: usize,
        /// The RANSAC threshold.
        threshold_px: f64,
    },
}

/// The fit's verdict on one point.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointReport {
    /// The point's label.
    pub label: String,
    /// The pixel the fit used (undistorted for a camera with a lens model).
    pub pixel: [f64; 2],
    /// The pixel as clicked on the sensor image, when it differs from `pixel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_clicked: Option<[f64; 2]>,
    /// The pitch position it was given, metres.
    pub pitch: [f64; 2],
    /// Whether RANSAC kept it.
    pub inlier: bool,
    /// Distance between the click and where the fit puts the pitch point, pixels.
    pub error_px: f64,
    /// Distance between the pitch point and where the fit puts the click, centimetres.
    pub error_cm: f64,
    /// Why the point was not offered to the fit at all (the lens cannot undistort it, or it
    /// repeats another point's pitch position and disagrees with the fit more than that one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out: Option<String>,
    /// A warning about the click: it lands a metre or more from the pitch position it names,
    /// with the landmark it most likely shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Expected position error of the fitted map at one place on the pitch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UncertaintyCell {
    /// Pitch position, metres.
    pub pitch: [f64; 2],
    /// Expected (1σ, radial) error of the mapped position, centimetres.
    pub error_cm: f64,
}

/// Expected error over the visible part of the pitch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uncertainty {
    /// Grid spacing, metres.
    pub step_m: f64,
    /// One cell per visible grid point.
    pub cells: Vec<UncertaintyCell>,
    /// Median over the cells, centimetres.
    pub median_cm: f64,
    /// 95th percentile over the cells, centimetres.
    pub p95_cm: f64,
    /// Largest over the cells, centimetres.
    pub max_cm: f64,
}

/// One inlier's held-out error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldOutPoint {
    /// The point's label.
    pub label: String,
    /// Distance between its pitch position and where the map fitted without it puts the
    /// click, metres.
    pub error_m: f64,
    /// The same distance as the uncertainty model expects it (1σ, radial), metres.
    pub expected_m: f64,
}

/// Leave-one-out errors over the inliers, measured and as the uncertainty model expects them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldOut {
    /// One entry per inlier.
    pub points: Vec<HeldOutPoint>,
    /// Median of the measured errors, metres.
    pub median_m: f64,
    /// 90th percentile of the measured errors, metres.
    pub p90_m: f64,
    /// Median the uncertainty model predicts for the same points, metres.
    pub expected_median_m: f64,
    /// 90th percentile the uncertainty model predicts, metres.
    pub expected_p90_m: f64,
}

/// A fitted field homography with its diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldFit {
    /// Image pixels → pitch metres.
    pub pitch_from_image: Homography,
    /// One report per input point, in input order.
    pub points: Vec<PointReport>,
    /// Number of inliers.
    pub inliers: usize,
    /// Root-mean-square reprojection error over the inliers, pixels.
    pub rms_px: f64,
    /// The click noise used for the uncertainty, pixels (root mean square over the two axes of
    /// its covariance).
    pub sigma_px: f64,
    /// Expected error over the visible pitch.
    pub uncertainty: Uncertainty,
    /// Leave-one-out check of the map and of its expected error; `None` with fewer than six
    /// inliers (five would leave no redundancy).
    pub held_out: Option<HeldOut>,
}

/// The image the points were clicked on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageView {
    /// Width and height, pixels.
    pub size: [u32; 2],
    /// The camera's lens when the image is distorted; the points' pixels are then undistorted
    /// ones, and "inside the image" is judged after distorting them back.
    pub lens: Option<LensModel>,
}

impl ImageView {
    /// An image without distortion.
    pub fn plain(size: [u32; 2]) -> Self {
        ImageView { size, lens: None }
    }

    /// Whether an undistorted pixel shows on the sensor.
    fn shows(&self, undistorted: [f64; 2]) -> bool {
        let [u, v] = match &self.lens {
            Some(lens) => lens.distort_pixel(undistorted),
            None => undistorted,
        };
        (0.0..=self.size[0] as f64).contains(&u) && (0.0..=self.size[1] as f64).contains(&v)
    }
}

/// Fits the field homography of an image showing `pitch`.
pub fn fit_field_homography(
    points: &[PointPair],
    view: &ImageView,
    pitch: &PitchSize,
    options: &FitOptions,
) -> Result<FieldFit, FitError> {
    check_points(points, view)?;
    let norm = Normalisation::new(points);
    let all: Vec<usize> = (0..points.len()).collect();
    let mut inliers = ransac(points, &norm, options)?;
    let mut model = dlt(points, &inliers, &norm).ok_or_else(|| no_consensus(0, points, options))?;
    for _ in 0..5 {
        model = refine(points, &inliers, &norm, model);
        let next: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| reprojection_px(&model, &norm, &points[i]) < options.ransac_threshold_px)
            .collect();
        if next == inliers || next.len() < 4 {
            break;
        }
        inliers = next;
    }
    // A good point left out of the fit looks worse than it is: its residual includes the
    // model's own error where no other point constrains it. Give each rejected point a second
    // look with a model that includes it, and keep it when everything then fits.
    let mut rejected: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| !inliers.contains(i))
        .collect();
    rejected.sort_by(|&a, &b| {
        reprojection_px(&model, &norm, &points[a])
            .total_cmp(&reprojection_px(&model, &norm, &points[b]))
    });
    for candidate in rejected {
        let mut trial: Vec<usize> = inliers.clone();
        trial.push(candidate);
        trial.sort_unstable();
        let with = refine(points, &trial, &norm, model);
        if trial
            .iter()
            .all(|&i| reprojection_px(&with, &norm, &points[i]) < options.ransac_threshold_px)
        {
            inliers = trial;
            model = with;
        }
    }
    let image_from_pitch = norm.denormalise(&model);
    let pitch_from_image = image_from_pitch.inverse();
    let reports: Vec<PointReport> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let error_cm = pitch_from_image.apply(p.pixel).map_or(f64::INFINITY, |q| {
                100.0 * (q[0] - p.pitch[0]).hypot(q[1] - p.pitch[1])
            });
            PointReport {
                label: p.label.clone(),
                pixel: p.pixel,
                pixel_clicked: None,
                pitch: p.pitch,
                inlier: inliers.contains(&i),
                error_px: reprojection_px(&model, &norm, p),
                error_cm,
                left_out: None,
                note: None,
            }
        })
        .collect();
    let sum_sq: f64 = inliers
        .iter()
        .map(|&i| reprojection_px(&model, &norm, &points[i]).powi(2))
        .sum();
    let rms_px = (sum_sq / inliers.len() as f64).sqrt();
    let noise = click_noise(points, &inliers, &norm, &model, options.click_sigma_px);
    let sigma_px = (noise.trace() / 2.0).sqrt();
    let uncertainty = uncertainty(
        points,
        &inliers,
        &norm,
        &model,
        &noise,
        view,
        pitch,
        options.grid_step_m,
    );
    let held_out = held_out(points, &inliers, &norm, &model, &noise);
    Ok(FieldFit {
        pitch_from_image,
        points: reports,
        inliers: inliers.len(),
        rms_px,
        sigma_px,
        uncertainty,
        held_out,
    })
}

fn no_consensus(inliers: usize, points: &[PointPair], options: &FitOptions) -> FitError {
    FitError::NoConsensus {
        inliers,
        total: points.len(),
        threshold_px: options.ransac_threshold_px,
    }
}

fn check_points(points: &[PointPair], view: &ImageView) -> Result<(), FitError> {
    for p in points {
        for (what, v) in [("pixel", p.pixel), ("pitch", p.pitch)] {
            if !(v[0].is_finite() && v[1].is_finite()) {
                return Err(FitError::NonFinite {
                    label: p.label.clone(),
                    what,
                });
            }
        }
        let [w, h] = view.size;
        if !view.shows(p.pixel) {
            let [u, v] = match &view.lens {
                Some(lens) => lens.distort_pixel(p.pixel),
                None => p.pixel,
            };
            return Err(FitError::OutsideImage {
                label: p.label.clone(),
                u,
                v,
                width: w,
                height: h,
            });
        }
    }
    if points.len() < 4 {
        return Err(FitError::TooFewPoints { got: points.len() });
    }
    for (j, b) in points.iter().enumerate() {
        for a in &points[..j] {
            for (what, pa, pb, tol) in [
                ("pixel", a.pixel, b.pixel, 0.5),
                ("pitch", a.pitch, b.pitch, 0.01),
            ] {
                if (pa[0] - pb[0]).hypot(pa[1] - pb[1]) < tol {
                    return Err(FitError::Duplicate {
                        first: a.label.clone(),
                        second: b.label.clone(),
                        what,
                    });
                }
            }
        }
    }
    // Degenerate when one line holds all points but at most one; pitch positions are exact, so
    // a tight tolerance there; clicks are noisy, so a pixel tolerance in the image.
    for (coords, tol) in [
        (points.iter().map(|p| p.pitch).collect::<Vec<_>>(), 0.05),
        (points.iter().map(|p| p.pixel).collect::<Vec<_>>(), 1.0),
    ] {
        if let Some(on_line) = largest_collinear_set(&coords, tol)
            && on_line.len() + 1 >= points.len()
        {
            let labels: Vec<&str> = on_line.iter().map(|&i| points[i].label.as_str()).collect();
            return Err(FitError::Collinear {
                labels: labels.join(", "),
            });
        }
    }
    Ok(())
}

/// The indices of the largest set of points within `tol` of one line through two of them.
fn largest_collinear_set(p: &[[f64; 2]], tol: f64) -> Option<Vec<usize>> {
    let mut best: Option<Vec<usize>> = None;
    for i in 0..p.len() {
        for j in i + 1..p.len() {
            let (dx, dy) = (p[j][0] - p[i][0], p[j][1] - p[i][1]);
            let len = dx.hypot(dy);
            if len == 0.0 {
                continue;
            }
            let on: Vec<usize> = (0..p.len())
                .filter(|&k| {
                    ((p[k][0] - p[i][0]) * dy - (p[k][1] - p[i][1]) * dx).abs() / len < tol
                })
                .collect();
            if best.as_ref().is_none_or(|b| on.len() > b.len()) {
                best = Some(on);
            }
        }
    }
    best
}

/// Hartley normalisation of both point sets: `x̂ = s·(x − m)`.
#[derive(Debug, Clone, Copy)]
struct Normalisation {
    pitch_mean: [f64; 2],
    pitch_scale: f64,
    pixel_mean: [f64; 2],
    pixel_scale: f64,
}

impl Normalisation {
    fn new(points: &[PointPair]) -> Self {
        let (pitch_mean, pitch_scale) = similarity(points.iter().map(|p| p.pitch));
        let (pixel_mean, pixel_scale) = similarity(points.iter().map(|p| p.pixel));
        Normalisation {
            pitch_mean,
            pitch_scale,
            pixel_mean,
            pixel_scale,
        }
    }

    fn pitch(&self, x: [f64; 2]) -> [f64; 2] {
        [
            self.pitch_scale * (x[0] - self.pitch_mean[0]),
            self.pitch_scale * (x[1] - self.pitch_mean[1]),
        ]
    }

    fn pixel(&self, u: [f64; 2]) -> [f64; 2] {
        [
            self.pixel_scale * (u[0] - self.pixel_mean[0]),
            self.pixel_scale * (u[1] - self.pixel_mean[1]),
        ]
    }

    /// The pitch→pixel homography in real units from the normalised model.
    fn denormalise(&self, g: &Model) -> Homography {
        let m = g.matrix();
        let t_pitch = nalgebra::Matrix3::new(
            self.pitch_scale,
            0.0,
            -self.pitch_scale * self.pitch_mean[0],
            0.0,
            self.pitch_scale,
            -self.pitch_scale * self.pitch_mean[1],
            0.0,
            0.0,
            1.0,
        );
        let s = 1.0 / self.pixel_scale;
        let t_pixel_inv = nalgebra::Matrix3::new(
            s,
            0.0,
            self.pixel_mean[0],
            0.0,
            s,
            self.pixel_mean[1],
            0.0,
            0.0,
            1.0,
        );
        let full = t_pixel_inv * m * t_pitch;
        let rows = [
            [full[(0, 0)], full[(0, 1)], full[(0, 2)]],
            [full[(1, 0)], full[(1, 1)], full[(1, 2)]],
            [full[(2, 0)], full[(2, 1)], full[(2, 2)]],
        ];
        // The model comes from a non-degenerate fit; a singular result would be a bug, and the
        // identity keeps the error visible in the reports instead of panicking.
        Homography::from_rows(rows)
            .unwrap_or(Homography::IDENTITY)
            .normalized()
    }
}

fn similarity(points: impl Iterator<Item = [f64; 2]> + Clone) -> ([f64; 2], f64) {
    let n = points.clone().count().max(1) as f64;
    let mean = points
        .clone()
        .fold([0.0, 0.0], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
    let spread = points
        .map(|p| (p[0] - mean[0]).hypot(p[1] - mean[1]))
        .sum::<f64>()
        / n;
    let scale = if spread > 0.0 {
        std::f64::consts::SQRT_2 / spread
    } else {
        1.0
    };
    (mean, scale)
}

/// The normalised pitch→pixel matrix with its last entry fixed to 1: eight parameters.
#[derive(Debug, Clone, Copy)]
struct Model(SVector<f64, 8>);

impl Model {
    fn from_matrix(m: &nalgebra::Matrix3<f64>) -> Option<Self> {
        let s = m[(2, 2)];
        if s.abs() < 1e-12 || !s.is_finite() {
            return None;
        }
        let r = |i: usize, j: usize| m[(i, j)] / s;
        Some(Model(SVector::<f64, 8>::from_column_slice(&[
            r(0, 0),
            r(0, 1),
            r(0, 2),
            r(1, 0),
            r(1, 1),
            r(1, 2),
            r(2, 0),
            r(2, 1),
        ])))
    }

    fn matrix(&self) -> nalgebra::Matrix3<f64> {
        let h = &self.0;
        nalgebra::Matrix3::new(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0)
    }

    /// Normalised pixel of a normalised pitch point, and its derivative by the parameters.
    fn project(&self, x: [f64; 2]) -> Option<([f64; 2], SMatrix<f64, 2, 8>)> {
        let h = &self.0;
        let a = h[0] * x[0] + h[1] * x[1] + h[2];
        let b = h[3] * x[0] + h[4] * x[1] + h[5];
        let c = h[6] * x[0] + h[7] * x[1] + 1.0;
        if c.abs() < 1e-12 {
            return None;
        }
        let (u, v) = (a / c, b / c);
        let mut j = SMatrix::<f64, 2, 8>::zeros();
        j[(0, 0)] = x[0] / c;
        j[(0, 1)] = x[1] / c;
        j[(0, 2)] = 1.0 / c;
        j[(1, 3)] = x[0] / c;
        j[(1, 4)] = x[1] / c;
        j[(1, 5)] = 1.0 / c;
        j[(0, 6)] = -u * x[0] / c;
        j[(0, 7)] = -u * x[1] / c;
        j[(1, 6)] = -v * x[0] / c;
        j[(1, 7)] = -v * x[1] / c;
        Some(([u, v], j))
    }
}

/// Residual (predicted − clicked) in pixels, and its Jacobian in pixels per parameter.
fn residual(
    model: &Model,
    norm: &Normalisation,
    p: &PointPair,
) -> Option<(Vector2<f64>, SMatrix<f64, 2, 8>)> {
    let (uv, j) = model.project(norm.pitch(p.pitch))?;
    let s = 1.0 / norm.pixel_scale;
    let predicted = [
        uv[0] * s + norm.pixel_mean[0],
        uv[1] * s + norm.pixel_mean[1],
    ];
    Some((
        Vector2::new(predicted[0] - p.pixel[0], predicted[1] - p.pixel[1]),
        j * s,
    ))
}

fn reprojection_px(model: &Model, norm: &Normalisation, p: &PointPair) -> f64 {
    residual(model, norm, p).map_or(f64::INFINITY, |(r, _)| r.norm())
}

/// Direct linear transform over the chosen points, in normalised coordinates.
fn dlt(points: &[PointPair], chosen: &[usize], norm: &Normalisation) -> Option<Model> {
    let mut ata = SMatrix::<f64, 9, 9>::zeros();
    for &i in chosen {
        let [x, y] = norm.pitch(points[i].pitch);
        let [u, v] = norm.pixel(points[i].pixel);
        let rows = [
            [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, -u],
            [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, -v],
        ];
        for r in rows {
            let r = SVector::<f64, 9>::from_row_slice(&r);
            ata += r * r.transpose();
        }
    }
    let eigen = ata.symmetric_eigen();
    let (k, _) = eigen
        .eigenvalues
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))?;
    let h = eigen.eigenvectors.column(k);
    let m = nalgebra::Matrix3::new(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]);
    Model::from_matrix(&m)
}

fn ransac(
    points: &[PointPair],
    norm: &Normalisation,
    options: &FitOptions,
) -> Result<Vec<usize>, FitError> {
    let n = points.len();
    let mut rng = options.seed;
    let mut best: Vec<usize> = Vec::new();
    let mut best_cost = f64::INFINITY;
    let mut needed = options.max_iterations;
    let mut iteration = 0;
    let pitch: Vec<[f64; 2]> = points.iter().map(|p| p.pitch).collect();
    while iteration < needed.min(options.max_iterations) {
        iteration += 1;
        let mut sample = [0usize; 4];
        let mut k = 0;
        while k < 4 {
            let i = (split_mix(&mut rng) % n as u64) as usize;
            if !sample[..k].contains(&i) {
                sample[k] = i;
                k += 1;
            }
        }
        if has_three_collinear(&sample.map(|i| pitch[i])) {
            continue;
        }
        let Some(model) = dlt(points, &sample, norm) else {
            continue;
        };
        // MSAC scoring: inliers count by their error, so ties between equal-size sets go to the
        // tighter model.
        let t2 = options.ransac_threshold_px.powi(2);
        let mut inliers = Vec::new();
        let mut cost = 0.0;
        for (i, p) in points.iter().enumerate() {
            let e2 = reprojection_px(&model, norm, p).powi(2);
            if e2 < t2 {
                inliers.push(i);
                cost += e2;
            } else {
                cost += t2;
            }
        }
        if cost < best_cost && inliers.len() >= 4 {
            best_cost = cost;
            best = inliers;
            let w = best.len() as f64 / n as f64;
            let clean = w.powi(4);
            needed = if clean >= 1.0 - 1e-12 {
                iteration
            } else {
                ((1.0f64 - 0.999).ln() / (1.0 - clean).ln()).ceil() as usize
            };
            // Small sets are cheap: always try a few dozen samples.
            needed = needed.max(50);
        }
    }
    if best.len() < 4 {
        return Err(no_consensus(best.len(), points, options));
    }
    Ok(best)
}

fn has_three_collinear(p: &[[f64; 2]; 4]) -> bool {
    let area = |a: [f64; 2], b: [f64; 2], c: [f64; 2]| {
        ((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])).abs()
    };
    // Twice the triangle area against the squared longest side: a thin triangle.
    let thin = |a, b, c| {
        let d = |p: [f64; 2], q: [f64; 2]| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2);
        let longest = d(a, b).max(d(b, c)).max(d(a, c));
        area(a, b, c) < 1e-3 * longest
    };
    thin(p[0], p[1], p[2])
        || thin(p[0], p[1], p[3])
        || thin(p[0], p[2], p[3])
        || thin(p[1], p[2], p[3])
}

fn split_mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn normal_equations(
    points: &[PointPair],
    chosen: &[usize],
    norm: &Normalisation,
    model: &Model,
) -> Option<(SMatrix<f64, 8, 8>, SVector<f64, 8>, f64)> {
    let mut jtj = SMatrix::<f64, 8, 8>::zeros();
    let mut jtr = SVector::<f64, 8>::zeros();
    let mut cost = 0.0;
    for &i in chosen {
        let (r, j) = residual(model, norm, &points[i])?;
        jtj += j.transpose() * j;
        jtr += j.transpose() * r;
        cost += r.norm_squared();
    }
    Some((jtj, jtr, cost))
}

/// Levenberg–Marquardt on the reprojection error of the chosen points.
fn refine(points: &[PointPair], chosen: &[usize], norm: &Normalisation, start: Model) -> Model {
    let mut model = start;
    let Some((mut jtj, mut jtr, mut cost)) = normal_equations(points, chosen, norm, &model) else {
        return model;
    };
    let mut lambda = 1e-3;
    for _ in 0..100 {
        let mut damped = jtj;
        for k in 0..8 {
            damped[(k, k)] += lambda * jtj[(k, k)].max(1e-12);
        }
        let Some(step) = damped.cholesky().map(|c| c.solve(&(-jtr))) else {
            lambda *= 10.0;
            continue;
        };
        let candidate = Model(model.0 + step);
        match normal_equations(points, chosen, norm, &candidate) {
            Some((j2, r2, c2)) if c2 < cost => {
                let converged = cost - c2 < 1e-12 * cost.max(1e-30) || step.norm() < 1e-12;
                model = candidate;
                (jtj, jtr, cost) = (j2, r2, c2);
                lambda = (lambda / 10.0).max(1e-12);
                if converged {
                    break;
                }
            }
            _ => {
                lambda *= 10.0;
                if lambda > 1e12 {
                    break;
                }
            }
        }
    }
    model
}

#[allow(clippy::too_many_arguments)]
fn uncertainty(
    points: &[PointPair],
    inliers: &[usize],
    norm: &Normalisation,
    model: &Model,
    noise: &Matrix2<f64>,
    view: &ImageView,
    pitch: &PitchSize,
    step_m: f64,
) -> Uncertainty {
    let covariance = parameter_covariance(points, inliers, norm, model, noise);
    let [hl, hw] = pitch.half_extents();
    let step = if step_m > 0.0 { step_m } else { 2.5 };
    let (nx, ny) = (
        (2.0 * hl / step).round() as usize,
        (2.0 * hw / step).round() as usize,
    );
    let mut cells = Vec::new();
    if let Some(cov) = covariance {
        for iy in 0..=ny {
            for ix in 0..=nx {
                let x = [
                    -hl + 2.0 * hl * ix as f64 / nx as f64,
                    -hw + 2.0 * hw * iy as f64 / ny as f64,
                ];
                if let Some(e) = position_error_m(model, norm, &cov, x, view) {
                    cells.push(UncertaintyCell {
                        pitch: x,
                        error_cm: 100.0 * e,
                    });
                }
            }
        }
    }
    let mut sorted: Vec<f64> = cells.iter().map(|c| c.error_cm).collect();
    sorted.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        if sorted.is_empty() {
            f64::NAN
        } else {
            sorted[((sorted.len() - 1) as f64 * q).round() as usize]
        }
    };
    Uncertainty {
        step_m: step,
        median_cm: pick(0.5),
        p95_cm: pick(0.95),
        max_cm: sorted.last().copied().unwrap_or(f64::NAN),
        cells,
    }
}

/// 1σ radial error of the pitch position of the pixel that shows pitch point `x`, metres;
/// `None` when the point is not in the image.
fn position_error_m(
    model: &Model,
    norm: &Normalisation,
    cov: &SMatrix<f64, 8, 8>,
    x: [f64; 2],
    view: &ImageView,
) -> Option<f64> {
    let (pixel, pitch_cov, _) = position_covariance(model, norm, cov, x)?;
    if !view.shows(pixel) {
        return None;
    }
    Some(pitch_cov.trace().max(0.0).sqrt())
}

/// Where the map puts pitch point `x` in the image, the covariance (m²) of the pitch position
/// read back from that pixel due to the map's parameter covariance `cov`, and the local
/// pixel → pitch Jacobian there. `None` past the horizon.
fn position_covariance(
    model: &Model,
    norm: &Normalisation,
    cov: &SMatrix<f64, 8, 8>,
    x: [f64; 2],
) -> Option<([f64; 2], Matrix2<f64>, Matrix2<f64>)> {
    let xn = norm.pitch(x);
    // Behind the camera: the map sends the point past the horizon.
    if model.0[6] * xn[0] + model.0[7] * xn[1] + 1.0 <= 0.0 {
        return None;
    }
    let probe = |p: [f64; 2]| PointPair {
        pixel: [0.0, 0.0],
        pitch: p,
        label: String::new(),
    };
    let (r, j) = residual(model, norm, &probe(x))?;
    let pixel_cov = j * cov * j.transpose();
    // Pixel covariance → pitch covariance through the local inverse Jacobian of the map.
    let d = 1e-3;
    let at =
        |dx: f64, dy: f64| residual(model, norm, &probe([x[0] + dx, x[1] + dy])).map(|(r, _)| r);
    let (px, mx, py, my) = (at(d, 0.0)?, at(-d, 0.0)?, at(0.0, d)?, at(0.0, -d)?);
    let image_from_pitch = Matrix2::from_columns(&[(px - mx) / (2.0 * d), (py - my) / (2.0 * d)]);
    let a = image_from_pitch.try_inverse()?;
    Some(([r[0], r[1]], a * pixel_cov * a.transpose(), a))
}

/// Leave-one-out over the inliers: refit without each, measure how far its click lands from
/// its pitch position, and what the uncertainty model expects for that distance.
fn held_out(
    points: &[PointPair],
    inliers: &[usize],
    norm: &Normalisation,
    model: &Model,
    noise: &Matrix2<f64>,
) -> Option<HeldOut> {
    if inliers.len() < 6 {
        return None;
    }
    let mut out = Vec::with_capacity(inliers.len());
    // Pooled draws of the predicted error distribution: a fixed stratified grid of standard
    // normal pairs (Box–Muller), the same for every point, so the figures are reproducible.
    const GRID: usize = 12;
    let normals: Vec<[f64; 2]> = (0..GRID * GRID)
        .map(|k| {
            let u1 = ((k / GRID) as f64 + 0.5) / GRID as f64;
            let u2 = ((k % GRID) as f64 + 0.5) / GRID as f64;
            let r = (-2.0 * u1.ln()).sqrt();
            let t = std::f64::consts::TAU * u2;
            [r * t.cos(), r * t.sin()]
        })
        .collect();
    let mut predicted = Vec::with_capacity(inliers.len() * normals.len());
    for &i in inliers {
        let rest: Vec<usize> = inliers.iter().copied().filter(|&k| k != i).collect();
        let without = refine(points, &rest, norm, *model);
        let error_m = norm
            .denormalise(&without)
            .inverse()
            .apply(points[i].pixel)
            .map_or(f64::INFINITY, |q| {
                (q[0] - points[i].pitch[0]).hypot(q[1] - points[i].pitch[1])
            });
        let Some(cov) = parameter_covariance(points, &rest, norm, &without, noise) else {
            continue;
        };
        let Some((_, map_cov, a)) = position_covariance(&without, norm, &cov, points[i].pitch)
        else {
            continue;
        };
        // The held-out click's own noise adds to the map's error.
        let total = map_cov + a * noise * a.transpose();
        let eigen = total.symmetric_eigen();
        let axes = eigen.eigenvalues.map(|v| v.max(0.0).sqrt());
        for n in &normals {
            let e = eigen.eigenvectors * Vector2::new(n[0] * axes[0], n[1] * axes[1]);
            predicted.push(e.norm());
        }
        out.push(HeldOutPoint {
            label: points[i].label.clone(),
            error_m,
            expected_m: total.trace().max(0.0).sqrt(),
        });
    }
    if out.is_empty() {
        return None;
    }
    let mut measured: Vec<f64> = out.iter().map(|p| p.error_m).collect();
    Some(HeldOut {
        median_m: quantile(&mut measured, 0.5),
        p90_m: quantile(&mut measured, 0.9),
        expected_median_m: quantile(&mut predicted, 0.5),
        expected_p90_m: quantile(&mut predicted, 0.9),
        points: out,
    })
}

/// The clicks' noise covariance (px²) from the inliers' residual vectors. Clicks are not
/// equally good in every direction (a mark where two lines meet at a shallow angle in the image
/// is vague along them), so the noise gets a full 2×2 covariance; each axis is floored at the
/// assumed click precision. The residuals include what the lens model gets wrong.
fn click_noise(
    points: &[PointPair],
    inliers: &[usize],
    norm: &Normalisation,
    model: &Model,
    floor_px: f64,
) -> Matrix2<f64> {
    let floor = Matrix2::identity() * floor_px * floor_px;
    // 2n residual components, 8 parameters: n − 4 degrees of freedom per axis.
    let dof = inliers.len() as f64 - 4.0;
    if dof <= 0.0 {
        return floor;
    }
    let mut sum = Matrix2::zeros();
    for &i in inliers {
        if let Some((r, _)) = residual(model, norm, &points[i]) {
            sum += r * r.transpose();
        }
    }
    let sample = sum / dof;
    // A few poor clicks among good ones inflate the sample covariance: rescale it so that the
    // median Mahalanobis distance of the residuals is a Gaussian's (χ² with 2 degrees of
    // freedom: median 2·ln 2), the scale the typical click shows.
    let sample = match sample.try_inverse() {
        Some(inverse) => {
            let mut d2: Vec<f64> = inliers
                .iter()
                .filter_map(|&i| residual(model, norm, &points[i]))
                .map(|(r, _)| (r.transpose() * inverse * r)[(0, 0)])
                .collect();
            let median = quantile(&mut d2, 0.5);
            let gaussian = 2.0 * std::f64::consts::LN_2 * (dof / inliers.len() as f64);
            if median.is_finite() && median > 0.0 {
                sample * (median / gaussian)
            } else {
                sample
            }
        }
        None => sample,
    };
    let eigen = sample.symmetric_eigen();
    let clamped = eigen.eigenvalues.map(|v| v.max(floor_px * floor_px));
    eigen.eigenvectors * Matrix2::from_diagonal(&clamped) * eigen.eigenvectors.transpose()
}

/// Covariance of the eight parameters for clicks with noise covariance `noise` (px²).
fn parameter_covariance(
    points: &[PointPair],
    chosen: &[usize],
    norm: &Normalisation,
    model: &Model,
    noise: &Matrix2<f64>,
) -> Option<SMatrix<f64, 8, 8>> {
    let weight = noise.try_inverse()?;
    let mut information = SMatrix::<f64, 8, 8>::zeros();
    for &i in chosen {
        let (_, j) = residual(model, norm, &points[i])?;
        information += j.transpose() * weight * j;
    }
    information.try_inverse()
}

/// The `q` quantile (nearest rank) of `values`, which it sorts.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n => values[((n - 1) as f64 * q).round() as usize],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A camera 13 m up, 12 m behind the near touchline, tilted 25° down, f = 400 px: the
    /// pitch → pixel map `K·[r1 r2 t]`.
    fn truth() -> Homography {
        let (f, cx, cy) = (400.0, 640.0, 360.0);
        let tilt = 25f64.to_radians();
        let centre = [0.0, -46.0, 13.0];
        let right = [1.0, 0.0, 0.0];
        let forward = [0.0, tilt.cos(), -tilt.sin()];
        let down = [0.0, -tilt.sin(), -tilt.cos()];
        let rows = [right, down, forward];
        let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        let t = rows.map(|r| -dot(r, centre));
        let k = [[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]];
        let mut m = [[0.0; 3]; 3];
        for i in 0..3 {
            for (j, col) in [
                [rows[0][0], rows[1][0], rows[2][0]],
                [rows[0][1], rows[1][1], rows[2][1]],
                t,
            ]
            .iter()
            .enumerate()
            {
                m[i][j] = (0..3).map(|q| k[i][q] * col[q]).sum();
            }
        }
        Homography::from_rows(m).expect("valid")
    }

    fn pairs(names: &[&str], h: &Homography) -> Vec<PointPair> {
        let pitch = PitchSize::default();
        names
            .iter()
            .map(|n| {
                let x = pitch.landmark(n).expect("landmark");
                PointPair {
                    pixel: h.apply(x).expect("finite"),
                    pitch: x,
                    label: (*n).to_string(),
                }
            })
            .collect()
    }

    const NAMES: [&str; 8] = [
        "centre_spot",
        "halfway_near",
        "halfway_far",
        "penalty_spot_left",
        "penalty_spot_right",
        "centre_circle_left",
        "penalty_area_left_near",
        "penalty_area_right_far",
    ];

    #[test]
    fn exact_points_give_the_exact_map() {
        let h = truth();
        let pts = pairs(&NAMES, &h);
        let fit = fit_field_homography(
            &pts,
            &ImageView::plain([1280, 720]),
            &PitchSize::default(),
            &FitOptions::default(),
        )
        .expect("fit");
        assert_eq!(fit.inliers, NAMES.len());
        for p in &fit.points {
            assert!(p.error_px < 1e-6 && p.error_cm < 1e-5, "{p:?}");
        }
        assert!(!fit.uncertainty.cells.is_empty());
    }

    #[test]
    fn degenerate_input_names_the_point() {
        let h = truth();
        let opts = FitOptions::default();
        let pitch = PitchSize::default();
        let mut pts = pairs(&NAMES[..3], &h);
        assert_eq!(
            fit_field_homography(&pts, &ImageView::plain([1280, 720]), &pitch, &opts),
            Err(FitError::TooFewPoints { got: 3 })
        );
        pts = pairs(&NAMES, &h);
        pts[4].pixel[1] = f64::NAN;
        let err =
            fit_field_homography(&pts, &ImageView::plain([1280, 720]), &pitch, &opts).unwrap_err();
        assert!(err.to_string().contains("penalty_spot_right"), "{err}");
        pts = pairs(&NAMES, &h);
        pts[2].pixel = [1500.0, 10.0];
        let err =
            fit_field_homography(&pts, &ImageView::plain([1280, 720]), &pitch, &opts).unwrap_err();
        assert!(matches!(err, FitError::OutsideImage { ref label, .. } if label == "halfway_far"));
        pts = pairs(&NAMES, &h);
        pts[5] = pts[1].clone();
        pts[5].label = "points[5]".into();
        let err =
            fit_field_homography(&pts, &ImageView::plain([1280, 720]), &pitch, &opts).unwrap_err();
        assert!(
            err.to_string().contains("halfway_near and points[5]"),
            "{err}"
        );
        // The halfway line plus one point off it.
        let pts = pairs(
            &[
                "halfway_near",
                "centre_circle_near",
                "centre_spot",
                "halfway_far",
                "penalty_spot_left",
            ],
            &h,
        );
        let err =
            fit_field_homography(&pts, &ImageView::plain([1280, 720]), &pitch, &opts).unwrap_err();
        assert!(matches!(err, FitError::Collinear { .. }), "{err}");
        assert!(err.to_string().contains("centre_circle_near"), "{err}");
    }

    #[test]
    fn ransac_rejects_a_wrong_landmark() {
        let h = truth();
        let mut pts = pairs(&NAMES, &h);
        // A click 20 m away from the landmark it was named as.
        pts[3].pixel = h.apply([-20.0, 8.0]).expect("finite");
        let fit = fit_field_homography(
            &pts,
            &ImageView::plain([1280, 720]),
            &PitchSize::default(),
            &FitOptions::default(),
        )
        .expect("fit");
        assert!(!fit.points[3].inlier);
        assert_eq!(fit.inliers, NAMES.len() - 1);
        for (i, p) in fit.points.iter().enumerate() {
            if i != 3 {
                assert!(p.error_px < 1e-6, "{p:?}");
            }
        }
    }

    #[test]
    fn held_out_errors_agree_with_the_expected_ones_on_gaussian_clicks() {
        let h = truth();
        let pitch = PitchSize::default();
        let view = ImageView::plain([1280, 720]);
        let visible: Vec<String> = pitch
            .landmarks()
            .into_iter()
            .filter(|l| h.apply(l.position).is_some_and(|u| view.shows(u)))
            .map(|l| l.name)
            .collect();
        let names: Vec<&str> = visible.iter().map(String::as_str).collect();
        assert!(names.len() >= 15, "{names:?}");
        let (mut measured, mut expected) = (Vec::new(), Vec::new());
        for seed in 1..=6u64 {
            let mut rng = seed;
            let mut gauss = || {
                let u1 = (split_mix(&mut rng) >> 11) as f64 / (1u64 << 53) as f64 + 1e-12;
                let u2 = (split_mix(&mut rng) >> 11) as f64 / (1u64 << 53) as f64;
                (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            };
            let mut pts = pairs(&names, &h);
            for p in &mut pts {
                p.pixel = [p.pixel[0] + 1.5 * gauss(), p.pixel[1] + 1.5 * gauss()];
            }
            let fit =
                fit_field_homography(&pts, &view, &pitch, &FitOptions::default()).expect("fit");
            let held = fit.held_out.expect("enough inliers");
            assert_eq!(held.points.len(), fit.inliers);
            measured.push(held.median_m);
            expected.push(held.expected_median_m);
        }
        // Over six noise draws the model's median must match the measured one within 25 %.
        let ratio = expected.iter().sum::<f64>() / measured.iter().sum::<f64>();
        assert!(
            (0.8..1.25).contains(&ratio),
            "expected/measured {ratio:.3}: {expected:?} {measured:?}"
        );
    }

    #[test]
    fn thresholds_scale_with_the_image() {
        assert_eq!(FitOptions::for_image([1280, 720]), FitOptions::default());
        assert_eq!(FitOptions::for_image([640, 480]), FitOptions::default());
        let four_k = FitOptions::for_image([3072, 1728]);
        assert!((four_k.ransac_threshold_px - 9.6).abs() < 1e-9);
        assert!((four_k.click_sigma_px - 2.4).abs() < 1e-9);
    }
}
