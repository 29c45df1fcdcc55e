//! The lens model of one camera: pinhole intrinsics plus Brown–Conrady distortion.
//!
//! Pixels come in two kinds. A *distorted* pixel is what the sensor records. An *undistorted*
//! pixel is where an ideal pinhole camera with the same intrinsics would have put the same ray.
//! Homographies of a camera always work on undistorted pixels; [`LensModel::distort_pixel`] and
//! [`LensModel::undistort_pixel`] move between the two.
//!
//! On normalised coordinates `(x, y) = ((u − cx)/fx, (v − cy)/fy)` with `r² = x² + y²`:
//!
//! ```text
//! x_d = x·(1 + k1·r² + k2·r⁴ + k3·r⁶) + 2·p1·x·y + p2·(r² + 2x²)
//! y_d = y·(1 + k1·r² + k2·r⁴ + k3·r⁶) + p1·(r² + 2y²) + 2·p2·x·y
//! ```
//!
//! which is the model OpenCV calls `(k1, k2, p1, p2, k3)`. Undistortion has no closed form and is
//! solved by Newton iteration.

use serde::{Deserialize, Serialize};

/// Intrinsics and distortion of one camera, in pixels of its full-resolution image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LensModel {
    /// Focal length along x, pixels.
    pub fx: f64,
    /// Focal length along y, pixels.
    pub fy: f64,
    /// Principal point x, pixels.
    pub cx: f64,
    /// Principal point y, pixels.
    pub cy: f64,
    /// Radial coefficient of r².
    #[serde(default)]
    pub k1: f64,
    /// Radial coefficient of r⁴.
    #[serde(default)]
    pub k2: f64,
    /// Radial coefficient of r⁶.
    #[serde(default)]
    pub k3: f64,
    /// First tangential coefficient.
    #[serde(default)]
    pub p1: f64,
    /// Second tangential coefficient.
    #[serde(default)]
    pub p2: f64,
}

impl LensModel {
    /// A pinhole camera without distortion: distort and undistort are the identity.
    pub fn pinhole(fx: f64, fy: f64, cx: f64, cy: f64) -> Self {
        LensModel {
            fx,
            fy,
            cx,
            cy,
            k1: 0.0,
            k2: 0.0,
            k3: 0.0,
            p1: 0.0,
            p2: 0.0,
        }
    }

    /// True when all distortion coefficients are zero.
    pub fn is_pinhole(&self) -> bool {
        [self.k1, self.k2, self.k3, self.p1, self.p2]
            .iter()
            .all(|c| *c == 0.0)
    }

    /// Applies the distortion to normalised coordinates.
    pub fn distort_normalized(&self, p: [f64; 2]) -> [f64; 2] {
        let [x, y] = p;
        let r2 = x * x + y * y;
        let radial = 1.0 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3));
        [
            x * radial + 2.0 * self.p1 * x * y + self.p2 * (r2 + 2.0 * x * x),
            y * radial + self.p1 * (r2 + 2.0 * y * y) + 2.0 * self.p2 * x * y,
        ]
    }

    /// Removes the distortion from normalised coordinates (Newton iteration).
    ///
    /// Returns `None` when the iteration does not converge, which happens only far outside the
    /// region where the model is invertible.
    pub fn undistort_normalized(&self, d: [f64; 2]) -> Option<[f64; 2]> {
        if self.is_pinhole() {
            return Some(d);
        }
        let mut p = d;
        for _ in 0..30 {
            let [x, y] = p;
            let r2 = x * x + y * y;
            let radial = 1.0 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3));
            // d(radial)/d(r²)
            let dradial = self.k1 + r2 * (2.0 * self.k2 + 3.0 * r2 * self.k3);
            let f = self.distort_normalized(p);
            let ex = f[0] - d[0];
            let ey = f[1] - d[1];
            if ex.abs() < 1e-14 && ey.abs() < 1e-14 {
                return Some(p);
            }
            let j00 = radial + 2.0 * x * x * dradial + 2.0 * self.p1 * y + 6.0 * self.p2 * x;
            let j01 = 2.0 * x * y * dradial + 2.0 * self.p1 * x + 2.0 * self.p2 * y;
            let j10 = 2.0 * x * y * dradial + 2.0 * self.p1 * x + 2.0 * self.p2 * y;
            let j11 = radial + 2.0 * y * y * dradial + 6.0 * self.p1 * y + 2.0 * self.p2 * x;
            let det = j00 * j11 - j01 * j10;
            if det.abs() < 1e-12 || !det.is_finite() {
                return None;
            }
            p = [
                x - (j11 * ex - j01 * ey) / det,
                y - (-j10 * ex + j00 * ey) / det,
            ];
        }
        let f = self.distort_normalized(p);
        ((f[0] - d[0]).abs() < 1e-9 && (f[1] - d[1]).abs() < 1e-9).then_some(p)
    }

    /// Pixel → normalised coordinates (no distortion handling).
    pub fn normalize(&self, px: [f64; 2]) -> [f64; 2] {
        [(px[0] - self.cx) / self.fx, (px[1] - self.cy) / self.fy]
    }

    /// Normalised coordinates → pixel (no distortion handling).
    pub fn denormalize(&self, n: [f64; 2]) -> [f64; 2] {
        [n[0] * self.fx + self.cx, n[1] * self.fy + self.cy]
    }

    /// Undistorted pixel → distorted (sensor) pixel.
    pub fn distort_pixel(&self, px: [f64; 2]) -> [f64; 2] {
        self.denormalize(self.distort_normalized(self.normalize(px)))
    }

    /// Distorted (sensor) pixel → undistorted pixel.
    pub fn undistort_pixel(&self, px: [f64; 2]) -> Option<[f64; 2]> {
        self.undistort_normalized(self.normalize(px))
            .map(|n| self.denormalize(n))
    }

    /// Checks that undistortion is well defined for every *distorted* normalised radius up to
    /// `r_distorted`: walking outwards from the centre, the radial map keeps growing until it
    /// reaches that radius. A strong barrel lens can fail this even where it is monotonic,
    /// when its image never reaches the corners of the sensor.
    pub fn is_invertible_to(&self, r_distorted: f64) -> bool {
        let step = 1e-3;
        let mut r: f64 = 0.0;
        while r < 10.0 {
            let r2 = r * r;
            let slope =
                1.0 + 3.0 * self.k1 * r2 + 5.0 * self.k2 * r2 * r2 + 7.0 * self.k3 * r2 * r2 * r2;
            if slope <= 0.0 {
                return false;
            }
            let reached = r * (1.0 + r2 * (self.k1 + r2 * (self.k2 + r2 * self.k3)));
            if reached >= r_distorted {
                return true;
            }
            r += step;
        }
        false
    }

    /// Checks that the radial part is monotonic out to normalised radius `r_max`, i.e. that the
    /// model is invertible over an image whose corners lie at that radius.
    pub fn is_monotonic_to(&self, r_max: f64) -> bool {
        let steps = 200;
        (0..=steps).all(|i| {
            let r = r_max * i as f64 / steps as f64;
            let r2 = r * r;
            // d/dr [r(1 + k1 r² + k2 r⁴ + k3 r⁶)]
            1.0 + 3.0 * self.k1 * r2 + 5.0 * self.k2 * r2 * r2 + 7.0 * self.k3 * r2 * r2 * r2 > 0.0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide() -> LensModel {
        LensModel {
            k1: -0.21,
            k2: 0.045,
            k3: -0.003,
            p1: 0.0007,
            p2: -0.0004,
            ..LensModel::pinhole(760.0, 760.0, 641.3, 358.2)
        }
    }

    #[test]
    fn undistort_inverts_distort_over_the_image() {
        let lens = wide();
        let mut worst: f64 = 0.0;
        for v in (0..=720).step_by(24) {
            for u in (0..=1280).step_by(32) {
                let d = [u as f64, v as f64];
                let p = lens.undistort_pixel(d).expect("converges inside the image");
                let back = lens.distort_pixel(p);
                worst = worst.max((back[0] - d[0]).hypot(back[1] - d[1]));
            }
        }
        assert!(worst < 1e-3, "worst round-trip error {worst} px");
    }

    #[test]
    fn pinhole_is_the_identity() {
        let lens = LensModel::pinhole(800.0, 800.0, 640.0, 360.0);
        let p = [17.25, 701.5];
        assert_eq!(lens.distort_pixel(p), p);
        assert_eq!(lens.undistort_pixel(p), Some(p));
    }

    #[test]
    fn monotonicity_check_rejects_a_folding_lens() {
        assert!(wide().is_monotonic_to(1.0));
        let folding = LensModel {
            k1: -0.6,
            ..LensModel::pinhole(700.0, 700.0, 640.0, 360.0)
        };
        assert!(!folding.is_monotonic_to(1.0));
    }
}
