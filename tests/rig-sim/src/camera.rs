//! Camera geometry: a pinhole with lens distortion at a pose in pitch coordinates.
//!
//! World coordinates are pitch metres with z up. Camera coordinates follow the usual image
//! convention: x right, y down, z forward. A world point `P` maps to the camera as
//! `R·(P − C)`, then to normalised image coordinates by dividing by z, then through the lens.

use crate::rig::{CameraConfig, PanoramaConfig, RigConfig};
use polyvision_calibration::panorama::{PanoramaOptions, plan_from_cameras};
use polyvision_calibration::{CameraCalibration, Homography, LensModel, PitchSize};
use serde::Serialize;

/// A camera: pose, intrinsics, lens and colour response.
#[derive(Debug, Clone, Serialize)]
pub struct Camera {
    /// `left`, `right` or `panorama`.
    pub name: String,
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
    /// Centre of projection, metres.
    pub position: [f64; 3],
    /// World → camera rotation; rows are the camera's right, down and forward axes.
    pub rotation: [[f64; 3]; 3],
    /// Intrinsics and distortion.
    pub lens: LensModel,
    /// Per-channel gain (exposure × white balance) applied to scene colours.
    pub gain: [f64; 3],
}

/// The lens of a configured camera.
pub(crate) fn lens_of(c: &CameraConfig) -> LensModel {
    let f = (c.width as f64 / 2.0) / (c.hfov_deg.to_radians() / 2.0).tan();
    LensModel {
        k1: c.k1,
        k2: c.k2,
        k3: c.k3,
        p1: c.p1,
        p2: c.p2,
        ..LensModel::pinhole(
            f,
            f,
            c.width as f64 / 2.0 + c.principal_offset_px[0],
            c.height as f64 / 2.0 + c.principal_offset_px[1],
        )
    }
}

/// Rotation for a camera panned by `yaw`, tilted down by `tilt` and rolled by `roll` (radians).
fn rotation(yaw: f64, tilt: f64, roll: f64) -> [[f64; 3]; 3] {
    let forward = [yaw.sin() * tilt.cos(), yaw.cos() * tilt.cos(), -tilt.sin()];
    let right0 = [yaw.cos(), -yaw.sin(), 0.0];
    let down0 = cross(forward, right0);
    let (s, c) = roll.sin_cos();
    let right = add(scale(right0, c), scale(down0, s));
    let down = add(scale(down0, c), scale(right0, -s));
    [right, down, forward]
}

impl Camera {
    /// The two physical cameras of a rig.
    pub fn rig_cameras(rig: &RigConfig) -> [Camera; 2] {
        let mast = mast_position(rig);
        let half = rig.mast.baseline_m / 2.0;
        let make = |name: &str, c: &CameraConfig, dx: f64| Camera {
            name: name.to_string(),
            width: c.width,
            height: c.height,
            position: [mast[0] + dx, mast[1], mast[2]],
            rotation: rotation(
                c.yaw_deg.to_radians(),
                c.tilt_deg.to_radians(),
                c.roll_deg.to_radians(),
            ),
            lens: lens_of(c),
            gain: [0, 1, 2].map(|i| c.exposure * c.white_balance[i]),
        };
        [
            make("left", &rig.cameras.left, -half),
            make("right", &rig.cameras.right, half),
        ]
    }

    /// The virtual panorama camera, planned by the calibration crate from the cameras' true
    /// calibrations exactly as the rig plans it from a technician's (see
    /// [`polyvision_calibration::panorama`]): a pinhole at the middle of the baseline.
    pub fn panorama(rig: &RigConfig) -> Camera {
        let PanoramaConfig {
            width,
            tilt_deg,
            margin_m,
        } = rig.panorama;
        let cameras = Camera::rig_cameras(rig).map(|c| c.calibration());
        let options = PanoramaOptions {
            width,
            margin_m,
            tilt_deg,
            ..PanoramaOptions::default()
        };
        // `RigConfig::validate` runs the same plan and refuses a rig it fails on, so this only
        // fails for a rig that skipped validation: a programming error.
        let view = plan_from_cameras(&rig.pitch, &cameras, &options)
            .unwrap_or_else(|e| panic!("the rig was not validated: {e}"));
        Camera {
            name: "panorama".to_string(),
            width: view.image_size[0],
            height: view.image_size[1],
            position: view.pose.centre,
            rotation: view.pose.rotation,
            lens: LensModel::pinhole(
                view.focal_px,
                view.focal_px,
                view.principal[0],
                view.principal[1],
            ),
            gain: [1.0; 3],
        }
    }

    /// Downward tilt of the optical axis, degrees.
    pub fn tilt_deg(&self) -> f64 {
        (-self.rotation[2][2]).asin().to_degrees()
    }

    /// This camera's true calibration.
    pub fn calibration(&self) -> CameraCalibration {
        CameraCalibration {
            name: self.name.clone(),
            image_size: [self.width, self.height],
            lens: self.lens,
            pitch_from_image: self.pitch_from_image(),
            fit: None,
        }
    }

    /// World point → camera coordinates.
    pub fn to_camera(&self, p: [f64; 3]) -> [f64; 3] {
        let d = sub(p, self.position);
        [
            dot(self.rotation[0], d),
            dot(self.rotation[1], d),
            dot(self.rotation[2], d),
        ]
    }

    /// World point → undistorted pixel; `None` behind the camera.
    pub fn project_undistorted(&self, p: [f64; 3]) -> Option<[f64; 2]> {
        let c = self.to_camera(p);
        (c[2] > 1e-6).then(|| self.lens.denormalize([c[0] / c[2], c[1] / c[2]]))
    }

    /// World point → sensor pixel (with distortion); `None` behind the camera, and for a
    /// distorting lens `None` far outside the field of view, where the distortion polynomial
    /// no longer describes the lens (a shape with one corner there would otherwise be filled
    /// straight across the image).
    pub fn project(&self, p: [f64; 3]) -> Option<[f64; 2]> {
        let c = self.to_camera(p);
        if c[2] <= 1e-6 {
            return None;
        }
        let n = [c[0] / c[2], c[1] / c[2]];
        if !self.lens.is_pinhole() {
            let corner = |px: [f64; 2]| {
                let q = self.lens.normalize(px);
                q[0].hypot(q[1])
            };
            let reach =
                2.0 * corner([0.0, 0.0]).max(corner([self.width as f64, self.height as f64]));
            if n[0].hypot(n[1]) > reach {
                return None;
            }
        }
        Some(self.lens.denormalize(self.lens.distort_normalized(n)))
    }

    /// Sensor pixel → unit ray direction in world coordinates.
    pub fn ray(&self, px: [f64; 2]) -> Option<[f64; 3]> {
        let n = self.lens.undistort_normalized(self.lens.normalize(px))?;
        let r = &self.rotation;
        // Inverse rotation = transpose.
        let d = [
            r[0][0] * n[0] + r[1][0] * n[1] + r[2][0],
            r[0][1] * n[0] + r[1][1] * n[1] + r[2][1],
            r[0][2] * n[0] + r[1][2] * n[1] + r[2][2],
        ];
        Some(normalize(d))
    }

    /// Pitch metres → undistorted pixels: `K·[r1 r2 t]`.
    pub fn image_from_pitch(&self) -> Homography {
        let r = &self.rotation;
        let t = [
            -dot(r[0], self.position),
            -dot(r[1], self.position),
            -dot(r[2], self.position),
        ];
        let l = &self.lens;
        let k = [[l.fx, 0.0, l.cx], [0.0, l.fy, l.cy], [0.0, 0.0, 1.0]];
        let rt = [
            [r[0][0], r[0][1], t[0]],
            [r[1][0], r[1][1], t[1]],
            [r[2][0], r[2][1], t[2]],
        ];
        let mut m = [[0.0; 3]; 3];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|k_| k[i][k_] * rt[k_][j]).sum();
            }
        }
        // A camera above the pitch plane never gives a singular map.
        Homography::from_rows(m)
            .map(|h| h.normalized())
            .unwrap_or(Homography::IDENTITY)
    }

    /// Undistorted pixels → pitch metres.
    pub fn pitch_from_image(&self) -> Homography {
        self.image_from_pitch().inverse()
    }

    /// True when the sensor pixel lies inside the image.
    pub fn contains(&self, px: [f64; 2]) -> bool {
        px[0] >= 0.0 && px[1] >= 0.0 && px[0] < self.width as f64 && px[1] < self.height as f64
    }

    /// Fraction of a pitch-area grid (1 m) that this camera sees.
    pub fn pitch_coverage(&self, pitch: &PitchSize) -> f64 {
        let [hl, hw] = pitch.half_extents();
        let (mut seen, mut total) = (0usize, 0usize);
        let mut y = -hw;
        while y <= hw {
            let mut x = -hl;
            while x <= hl {
                total += 1;
                if self.project([x, y, 0.0]).is_some_and(|p| self.contains(p)) {
                    seen += 1;
                }
                x += 1.0;
            }
            y += 1.0;
        }
        seen as f64 / total.max(1) as f64
    }
}

/// Centre of the mast top.
pub fn mast_position(rig: &RigConfig) -> [f64; 3] {
    [
        rig.mast.x_m,
        -(rig.pitch.width_m / 2.0 + rig.mast.distance_m),
        rig.mast.height_m,
    ]
}

pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub(crate) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub(crate) fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub(crate) fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
pub(crate) fn normalize(a: [f64; 3]) -> [f64; 3] {
    let n = dot(a, a).sqrt();
    if n > 0.0 { scale(a, 1.0 / n) } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homography_agrees_with_projection_on_the_ground() {
        let rig = RigConfig::default();
        for cam in Camera::rig_cameras(&rig)
            .iter()
            .chain([&Camera::panorama(&rig)])
        {
            let h = cam.image_from_pitch();
            for p in [
                [0.0, 0.0],
                [-40.0, 20.0],
                [30.0, -30.0],
                [52.5, 34.0],
                [-52.5, -34.0],
            ] {
                // Points behind the camera have no image.
                let Some(b) = cam.project_undistorted([p[0], p[1], 0.0]) else {
                    continue;
                };
                let a = h.apply(p).expect("finite");
                assert!(
                    (a[0] - b[0]).hypot(a[1] - b[1]) < 1e-6,
                    "{}: {a:?} vs {b:?}",
                    cam.name
                );
            }
        }
    }

    #[test]
    fn ray_inverts_projection() {
        let rig = RigConfig::default();
        let [left, _] = Camera::rig_cameras(&rig);
        let p = [-20.0, 5.0, 1.2];
        let px = left.project(p).expect("in front");
        let ray = left.ray(px).expect("undistorts");
        let d = normalize(sub(p, left.position));
        assert!(dot(ray, d) > 1.0 - 1e-12);
    }

    #[test]
    fn default_rig_sees_the_whole_pitch() {
        let rig = RigConfig::default();
        let [l, r] = Camera::rig_cameras(&rig);
        let pano = Camera::panorama(&rig);
        assert!(pano.pitch_coverage(&rig.pitch) > 0.999);
        let [hl, hw] = rig.pitch.half_extents();
        for x in (-(hl as i32)..=hl as i32).step_by(3) {
            for y in [-hw, 0.0, hw] {
                let p = [x as f64, y, 0.0];
                let seen = [&l, &r]
                    .iter()
                    .any(|c| c.project(p).is_some_and(|q| c.contains(q)));
                assert!(seen, "({x}, {y}) is seen by neither camera");
            }
        }
    }
}
