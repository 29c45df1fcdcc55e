//! One image of a calibrated rig (a camera or the panorama) as the tracker sees it: where a
//! detected person stands on the pitch, and how sure that position is.
//!
//! A person's feet are not always at the bottom centre of their box: in a wide panorama a
//! standing player leans towards the image of the vertical (at the near corners by up to 75°).
//! The vertical's vanishing point follows from the view's intrinsics and its field homography
//! (the pose, `G = K·[r1 r2 t]`); the foot point is the end of the box along the local vertical:
//! `c + d·(|dx|·w + |dy|·h)/2` with `c` the box centre and `d` the unit direction towards the
//! vanishing point of "down". Upright (`d = (0, 1)`) that is the bottom centre.
//!
//! The lowest point of a box is the near edge of the feet, not the middle of the stance: the
//! position is moved [`FOOT_DEPTH_M`] further from the camera along the ground (on rendered
//! footage the uncorrected foot points sit 0.17 m short on average, all of it along the line of
//! sight).

use crate::file::{CalibrationFile, CameraCalibration};
use crate::homography::Homography;
use crate::lens::LensModel;
use crate::panorama::camera_pose;

/// Distance from the near edge of a standing person's feet to the middle of their stance, m.
pub const FOOT_DEPTH_M: f64 = 0.17;

/// A view of the pitch.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewGeometry {
    /// `panorama` or the camera's name.
    pub name: String,
    /// Width and height, pixels.
    pub image_size: [u32; 2],
    /// Undistorted pixels → pitch metres.
    pub pitch_from_image: Homography,
    image_from_pitch: Homography,
    /// The lens, when the image is distorted.
    pub lens: Option<LensModel>,
    /// Vanishing point of the world's "down" in undistorted pixels (homogeneous), when known.
    down: Option<[f64; 3]>,
    /// Where the camera stands on the pitch (below its centre), when known.
    nadir: Option<[f64; 2]>,
}

impl ViewGeometry {
    /// The view called `name` (`panorama` or a camera); without a name, the panorama if the file
    /// has one, else its only camera.
    pub fn from_calibration(cal: &CalibrationFile, name: Option<&str>) -> Result<Self, String> {
        let wanted = match name {
            Some(n) => n.to_string(),
            None if cal.panorama.is_some() => "panorama".into(),
            None if cal.cameras.len() == 1 => cal.cameras[0].name.clone(),
            None => {
                return Err(format!(
                    "the calibration has {} cameras and no panorama: say which view the detections are in",
                    cal.cameras.len()
                ));
            }
        };
        let (camera, lens) = if wanted == "panorama" {
            let p = cal
                .panorama
                .as_ref()
                .ok_or("the calibration has no panorama section")?;
            let [f, cx, cy] = p.intrinsics.unwrap_or([
                p.image_size[0] as f64,
                p.image_size[0] as f64 / 2.0,
                p.image_size[1] as f64 / 2.0,
            ]);
            let camera = CameraCalibration {
                name: "panorama".into(),
                image_size: p.image_size,
                lens: LensModel::pinhole(f, f, cx, cy),
                pitch_from_image: p.pitch_from_image,
                fit: None,
            };
            // Without stored intrinsics the vertical is unknown: bottom centres are used.
            let known = p.intrinsics.is_some();
            (camera, known)
        } else {
            let c = cal.camera(&wanted).ok_or_else(|| {
                let names: Vec<&str> = cal.cameras.iter().map(|c| c.name.as_str()).collect();
                format!(
                    "no view `{wanted}` in the calibration (it has {})",
                    names.join(", ")
                )
            })?;
            (c.clone(), true)
        };
        let pose = if lens {
            camera_pose(&camera).ok()
        } else {
            None
        };
        let down = pose.map(|pose| {
            let l = &camera.lens;
            // Camera coordinates of the world direction (0, 0, −1), then K.
            let d = pose.rotation.map(|r| -r[2]);
            [l.fx * d[0] + l.cx * d[2], l.fy * d[1] + l.cy * d[2], d[2]]
        });
        let nadir = pose.map(|p| [p.centre[0], p.centre[1]]);
        Ok(ViewGeometry {
            name: wanted.clone(),
            image_size: camera.image_size,
            pitch_from_image: camera.pitch_from_image,
            image_from_pitch: camera.pitch_from_image.inverse(),
            lens: (!camera.lens.is_pinhole()).then_some(camera.lens),
            down,
            nadir,
        })
    }

    fn undistort(&self, px: [f64; 2]) -> Option<[f64; 2]> {
        match &self.lens {
            Some(l) => l.undistort_pixel(px),
            None => Some(px),
        }
    }

    /// Unit direction of "down" at an undistorted pixel (straight down when unknown).
    fn down_at(&self, u: [f64; 2]) -> [f64; 2] {
        let Some([x, y, w]) = self.down else {
            return [0.0, 1.0];
        };
        let d = if w.abs() < 1e-12 {
            [x, y]
        } else {
            let v = [x / w, y / w];
            // A vanishing point behind the camera lies the other way.
            let s = w.signum();
            [s * (v[0] - u[0]), s * (v[1] - u[1])]
        };
        let n = d[0].hypot(d[1]);
        if n < 1e-12 || d[1] < 0.0 {
            [0.0, 1.0]
        } else {
            [d[0] / n, d[1] / n]
        }
    }

    /// Where the feet of a person in box `[left, top, width, height]` (sensor pixels) are.
    pub fn foot_pixel(&self, bbox: [f64; 4]) -> [f64; 2] {
        let [l, t, w, h] = bbox;
        let c = [l + w / 2.0, t + h / 2.0];
        let d = self.undistort(c).map_or([0.0, 1.0], |u| self.down_at(u));
        let reach = (d[0].abs() * w + d[1].abs() * h) / 2.0;
        [c[0] + d[0] * reach, c[1] + d[1] * reach]
    }

    /// Where a person in box `[left, top, width, height]` stands on the pitch.
    pub fn position_of_box(&self, bbox: [f64; 4]) -> Option<[f64; 2]> {
        let p = self.to_pitch(self.foot_pixel(bbox))?;
        let Some(n) = self.nadir else {
            return Some(p);
        };
        let (dx, dy) = (p[0] - n[0], p[1] - n[1]);
        let len = dx.hypot(dy);
        if len < 1.0 {
            return Some(p);
        }
        Some([
            p[0] + FOOT_DEPTH_M * dx / len,
            p[1] + FOOT_DEPTH_M * dy / len,
        ])
    }

    /// Sensor pixel → pitch metres.
    pub fn to_pitch(&self, px: [f64; 2]) -> Option<[f64; 2]> {
        self.pitch_from_image.apply(self.undistort(px)?)
    }

    /// Pitch metres → sensor pixel.
    pub fn to_image(&self, p: [f64; 2]) -> Option<[f64; 2]> {
        let u = self.image_from_pitch.apply(p)?;
        Some(match &self.lens {
            Some(l) => l.distort_pixel(u),
            None => u,
        })
    }

    /// Covariance on the pitch (m²) of the position of sensor pixel `px` clicked or detected
    /// with `sigma_px` (1σ per axis): `J·σ²·Jᵀ` with `J` the local Jacobian of the map.
    pub fn pitch_covariance(&self, px: [f64; 2], sigma_px: f64) -> Option<[[f64; 2]; 2]> {
        let d = 0.5;
        let at = |dx: f64, dy: f64| self.to_pitch([px[0] + dx, px[1] + dy]);
        let (a, b, c, e) = (at(d, 0.0)?, at(-d, 0.0)?, at(0.0, d)?, at(0.0, -d)?);
        let jx = [(a[0] - b[0]) / (2.0 * d), (a[1] - b[1]) / (2.0 * d)];
        let jy = [(c[0] - e[0]) / (2.0 * d), (c[1] - e[1]) / (2.0 * d)];
        let s2 = sigma_px * sigma_px;
        Some([
            [
                s2 * (jx[0] * jx[0] + jy[0] * jy[0]),
                s2 * (jx[0] * jx[1] + jy[0] * jy[1]),
            ],
            [
                s2 * (jx[0] * jx[1] + jy[0] * jy[1]),
                s2 * (jx[1] * jx[1] + jy[1] * jy[1]),
            ],
        ])
    }
}
