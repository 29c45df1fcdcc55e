//! Lens distortion from lines that must be straight (plumb-line calibration).
//!
//! A rig on a pitch has no checkerboard, but it has long straight lines: touchlines, the halfway
//! line, the sides of the penalty areas. A technician (or a line detector) gives points along
//! each; the distortion coefficients are the ones that make every line straight after
//! undistortion. Levenberg–Marquardt minimises the perpendicular distances of the undistorted
//! points to each line's total-least-squares fit, in pixels.
//!
//! Straightness is unchanged by a scale about the principal point, so it cannot tell the focal
//! length: the intrinsics given as the starting model are kept, and the coefficients found make
//! the undistorted image a pinhole image *for those intrinsics*. The field homography then
//! absorbs the scale, which is all the pipeline needs.

use crate::lens::LensModel;
use nalgebra::{DMatrix, DVector};
use serde::Serialize;

/// The result of a plumb-line fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LineFit {
    /// The starting intrinsics with the fitted distortion.
    pub lens: LensModel,
    /// RMS distance of the points from their lines with the starting model, pixels.
    pub rms_before_px: f64,
    /// The same with the fitted model, pixels.
    pub rms_after_px: f64,
}

/// Which coefficients to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coefficients {
    /// k1 only.
    K1,
    /// k1 and k2.
    K1K2,
    /// k1, k2 and the tangential p1, p2.
    K1K2P1P2,
}

impl Coefficients {
    fn count(self) -> usize {
        match self {
            Coefficients::K1 => 1,
            Coefficients::K1K2 => 2,
            Coefficients::K1K2P1P2 => 4,
        }
    }

    fn apply(self, start: &LensModel, p: &DVector<f64>) -> LensModel {
        let mut lens = *start;
        lens.k1 = p[0];
        if p.len() > 1 {
            lens.k2 = p[1];
        }
        if p.len() > 3 {
            lens.p1 = p[2];
            lens.p2 = p[3];
        }
        lens
    }
}

/// Fits the distortion that straightens `lines` (distorted sensor pixels, several points per
/// line) of an image of `image_size`, starting from `start` (intrinsics, usually no distortion).
pub fn distortion_from_lines(
    lines: &[Vec<[f64; 2]>],
    image_size: [u32; 2],
    start: &LensModel,
    coefficients: Coefficients,
) -> Result<LineFit, String> {
    let [w, h] = image_size.map(f64::from);
    for (i, line) in lines.iter().enumerate() {
        if line.len() < 3 {
            return Err(format!(
                "lines[{i}]: {} point(s); a line needs at least 3 to show its curvature",
                line.len()
            ));
        }
        for (j, p) in line.iter().enumerate() {
            // Ranges reject NaN too.
            if !((0.0..=w).contains(&p[0]) && (0.0..=h).contains(&p[1])) {
                return Err(format!(
                    "lines[{i}][{j}]: pixel {p:?} is not inside the {w}×{h} image"
                ));
            }
        }
    }
    let constraints: usize = lines.iter().map(|l| l.len() - 2).sum();
    let unknowns = coefficients.count();
    if lines.len() < 2 || constraints < 2 * unknowns {
        return Err(format!(
            "{} line(s) with {constraints} point(s) beyond the two that fix each line; fitting {unknowns} coefficient(s) needs at least 2 lines and {} such points",
            lines.len(),
            2 * unknowns
        ));
    }
    let mut params = DVector::<f64>::zeros(unknowns);
    params[0] = start.k1;
    if unknowns > 1 {
        params[1] = start.k2;
    }
    if unknowns > 3 {
        params[2] = start.p1;
        params[3] = start.p2;
    }
    let residuals = |p: &DVector<f64>| straightness(lines, &coefficients.apply(start, p));
    let rms = |r: &DVector<f64>| (r.norm_squared() / r.len().max(1) as f64).sqrt();
    let mut r = residuals(&params).ok_or("the starting lens model cannot undistort the points")?;
    let rms_before_px = rms(&r);
    let mut lambda = 1e-3;
    for _ in 0..100 {
        // Forward differences: the residuals are smooth and cheap.
        let mut jac = DMatrix::<f64>::zeros(r.len(), unknowns);
        for k in 0..unknowns {
            let step = 1e-7;
            let mut q = params.clone();
            q[k] += step;
            let Some(rq) = residuals(&q) else { break };
            jac.set_column(k, &((rq - &r) / step));
        }
        let jtj = jac.transpose() * &jac;
        let jtr = jac.transpose() * &r;
        let mut improved = false;
        while lambda < 1e12 {
            let mut damped = jtj.clone();
            for k in 0..unknowns {
                damped[(k, k)] += lambda * jtj[(k, k)].max(1e-12);
            }
            let Some(step) = damped.cholesky().map(|c| c.solve(&(-&jtr))) else {
                lambda *= 10.0;
                continue;
            };
            let candidate = &params + &step;
            match residuals(&candidate) {
                Some(rc) if rc.norm_squared() < r.norm_squared() => {
                    let gain = r.norm_squared() - rc.norm_squared();
                    params = candidate;
                    r = rc;
                    lambda = (lambda / 10.0).max(1e-12);
                    improved = gain > 1e-12 * r.norm_squared().max(1e-18);
                    break;
                }
                _ => lambda *= 10.0,
            }
        }
        if !improved {
            break;
        }
    }
    let lens = coefficients.apply(start, &params);
    let r_max = [[0.0, 0.0], [w, 0.0], [0.0, h], [w, h]]
        .map(|c| {
            let n = lens.normalize(c);
            n[0].hypot(n[1])
        })
        .into_iter()
        .fold(0.0, f64::max);
    if !lens.is_invertible_to(r_max * 1.05) {
        return Err(
            "the fitted distortion cannot be inverted out to the image corners; add lines nearer the corners or fit fewer coefficients"
                .into(),
        );
    }
    Ok(LineFit {
        lens,
        rms_before_px,
        rms_after_px: rms(&r),
    })
}

/// Perpendicular distances of the undistorted points from each line's best fit, pixels.
fn straightness(lines: &[Vec<[f64; 2]>], lens: &LensModel) -> Option<DVector<f64>> {
    let mut out = Vec::new();
    for line in lines {
        let pts: Vec<[f64; 2]> = line
            .iter()
            .map(|p| lens.undistort_pixel(*p))
            .collect::<Option<_>>()?;
        let n = pts.len() as f64;
        let (mx, my) = pts
            .iter()
            .fold((0.0, 0.0), |a, p| (a.0 + p[0] / n, a.1 + p[1] / n));
        let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
        for p in &pts {
            let (dx, dy) = (p[0] - mx, p[1] - my);
            sxx += dx * dx;
            sxy += dx * dy;
            syy += dy * dy;
        }
        // Direction of the line: the principal axis of the scatter.
        let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
        let (nx, ny) = (-angle.sin(), angle.cos());
        out.extend(pts.iter().map(|p| (p[0] - mx) * nx + (p[1] - my) * ny));
    }
    Some(DVector::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn straightens_lines_bent_by_a_known_lens() {
        let truth = LensModel {
            k1: -0.19,
            k2: 0.035,
            ..LensModel::pinhole(711.0, 711.0, 640.0, 360.0)
        };
        // Straight lines in the undistorted image, seen through the lens.
        let mut lines = Vec::new();
        for (a, b) in [
            ([40.0, 80.0], [1250.0, 140.0]),
            ([60.0, 650.0], [1220.0, 600.0]),
            ([90.0, 40.0], [160.0, 690.0]),
            ([1180.0, 30.0], [1100.0, 700.0]),
        ] {
            let line: Vec<[f64; 2]> = (0..=20)
                .map(|i| {
                    let t = i as f64 / 20.0;
                    let p = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
                    truth.distort_pixel(p)
                })
                .filter(|p| p[0] >= 0.0 && p[1] >= 0.0 && p[0] <= 1280.0 && p[1] <= 720.0)
                .collect();
            lines.push(line);
        }
        let start = LensModel::pinhole(711.0, 711.0, 640.0, 360.0);
        let fit =
            distortion_from_lines(&lines, [1280, 720], &start, Coefficients::K1K2).expect("fit");
        assert!(fit.rms_before_px > 2.0, "{fit:?}");
        assert!(fit.rms_after_px < 0.01, "{fit:?}");
        assert!((fit.lens.k1 - truth.k1).abs() < 1e-3, "{fit:?}");
        let err =
            distortion_from_lines(&lines[..1], [1280, 720], &start, Coefficients::K1).unwrap_err();
        assert!(err.contains("at least 2 lines"), "{err}");
        let mut bad = lines.clone();
        bad[2][3] = [f64::NAN, 1.0];
        let err = distortion_from_lines(&bad, [1280, 720], &start, Coefficients::K1).unwrap_err();
        assert!(err.starts_with("lines[2][3]"), "{err}");
    }
}
