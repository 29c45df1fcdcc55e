//! Where the panorama looks from and how it is framed.
//!
//! # Why this projection
//!
//! The panorama is a *perspective* image of the pitch plane from the rig's centre of projection,
//! so that one homography maps its pixels to pitch metres, exactly like a single camera's
//! (the platform's field homography, and every tool that takes "an image plus its homography"
//! works on it unchanged). Within perspective images the free choices are the direction of the
//! virtual optical axis and the framing; roll is zero so the horizon stays level, and the axis
//! points from the mast towards the centre spot. What remains is the tilt of the virtual image
//! plane, and it decides how even the resolution is:
//!
//! - at the cameras' own tilt (about 25° down) far players are a quarter the height of near ones
//!   (11 px against 40 px on the default rig at 3840 px wide) and the pitch is sampled 10× more
//!   finely at its densest than at its sparsest;
//! - looking straight down (a bird's-eye view) samples the pitch evenly, but standing players
//!   become long smears radiating from the mast, 24× taller than wide on the far touchline.
//!
//! The default tilt is the one at which a standing player is *equally tall in pixels* on the
//! near and on the far touchline (about 67° on the default rig). The detector then sees people
//! at one scale wherever they stand, the spread of ground resolution over the pitch drops from
//! about 10× to about 4×, and figures stay upright near the middle. A cylindrical projection
//! would be more even still at the near corners, but it would give up the homography.
//!
//! The rig's pose is not part of the calibration: it is recovered from each camera's lens and
//! field homography (`G = K·[r1 r2 t]`, orthonormalised), and the panorama's centre is the mean
//! of the cameras' centres.

use crate::file::{CalibrationFile, CameraCalibration, PanoramaCalibration, Projection};
use crate::homography::Homography;
use crate::pitch::PitchSize;
use nalgebra::{Matrix3, Vector3};

/// How to frame the panorama.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PanoramaOptions {
    /// Width, pixels; the height follows from the framing (rounded up to even).
    pub width: u32,
    /// Ground around the pitch that must stay in view, metres.
    pub margin_m: f64,
    /// Height above the far edge of the margin that must stay in view (players' heads), metres.
    pub head_room_m: f64,
    /// Downward tilt of the virtual camera, degrees; `None` picks the tilt at which a standing
    /// player of `player_height_m` is equally tall on both touchlines.
    pub tilt_deg: Option<f64>,
    /// Height of the standing figure used to pick the tilt, metres.
    pub player_height_m: f64,
}

impl Default for PanoramaOptions {
    fn default() -> Self {
        PanoramaOptions {
            width: 3840,
            margin_m: 3.0,
            head_room_m: 2.5,
            tilt_deg: None,
            player_height_m: 1.8,
        }
    }
}

/// Why a panorama could not be planned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PanoramaError {
    /// The homography of a camera does not come from a camera above the pitch.
    #[error("camera `{camera}`: {problem}")]
    Pose {
        /// The camera.
        camera: String,
        /// What is wrong.
        problem: String,
    },
    /// No camera to start from.
    #[error("the calibration has no cameras")]
    NoCameras,
    /// The framing cannot hold the pitch.
    #[error("{0}")]
    Framing(String),
}

/// Position and orientation of a camera relative to the pitch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraPose {
    /// Centre of projection, metres (z up).
    pub centre: [f64; 3],
    /// Rows are the camera's right, down and forward axes in pitch coordinates.
    pub rotation: [[f64; 3]; 3],
}

impl CameraPose {
    /// Camera coordinates (right, down, forward) of a point.
    pub fn to_camera(&self, p: [f64; 3]) -> [f64; 3] {
        let d = [
            p[0] - self.centre[0],
            p[1] - self.centre[1],
            p[2] - self.centre[2],
        ];
        self.rotation
            .map(|r| r[0] * d[0] + r[1] * d[1] + r[2] * d[2])
    }
}

/// Recovers a camera's pose from its intrinsics and field homography.
pub fn camera_pose(camera: &CameraCalibration) -> Result<CameraPose, PanoramaError> {
    let fail = |problem: &str| PanoramaError::Pose {
        camera: camera.name.clone(),
        problem: problem.to_string(),
    };
    let l = &camera.lens;
    let k_inv = Matrix3::new(l.fx, 0.0, l.cx, 0.0, l.fy, l.cy, 0.0, 0.0, 1.0)
        .try_inverse()
        .ok_or_else(|| fail("the lens intrinsics are singular"))?;
    let g = camera.pitch_from_image.inverse().rows();
    let g = Matrix3::from_row_slice(&g.concat());
    let m = k_inv * g;
    let (m1, m2, m3) = (m.column(0), m.column(1), m.column(2));
    let mut scale = 2.0 / (m1.norm() + m2.norm());
    // The centre spot must be in front of the camera.
    if m3[2] * scale < 0.0 {
        scale = -scale;
    }
    let r1: Vector3<f64> = m1 * scale;
    let r2: Vector3<f64> = m2 * scale;
    let t: Vector3<f64> = m3 * scale;
    let r3 = r1.cross(&r2);
    let approx = Matrix3::from_columns(&[r1, r2, r3]);
    let svd = approx.svd(true, true);
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
        return Err(fail("its homography does not decompose into a rotation"));
    };
    let r = u * v_t;
    if r.determinant() < 0.0 {
        return Err(fail(
            "its homography mirrors the pitch (left and right swapped?)",
        ));
    }
    let centre = -(r.transpose() * t);
    if centre[2] <= 0.0 {
        return Err(fail("its homography puts the camera below the pitch"));
    }
    Ok(CameraPose {
        centre: [centre[0], centre[1], centre[2]],
        rotation: [
            [r[(0, 0)], r[(0, 1)], r[(0, 2)]],
            [r[(1, 0)], r[(1, 1)], r[(1, 2)]],
            [r[(2, 0)], r[(2, 1)], r[(2, 2)]],
        ],
    })
}

/// The planned panorama: a virtual pinhole camera with square pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PanoramaView {
    /// Width and height, pixels.
    pub image_size: [u32; 2],
    /// Pose of the virtual camera.
    pub pose: CameraPose,
    /// Focal length, pixels.
    pub focal_px: f64,
    /// Principal point, pixels.
    pub principal: [f64; 2],
    /// Downward tilt, degrees.
    pub tilt_deg: f64,
}

impl PanoramaView {
    /// Pixel of a point in space; `None` behind the virtual camera.
    pub fn project(&self, p: [f64; 3]) -> Option<[f64; 2]> {
        let c = self.pose.to_camera(p);
        (c[2] > 1e-9).then(|| {
            [
                self.principal[0] + self.focal_px * c[0] / c[2],
                self.principal[1] + self.focal_px * c[1] / c[2],
            ]
        })
    }

    /// Pitch metres → panorama pixels.
    pub fn image_from_pitch(&self) -> Homography {
        let r = &self.pose.rotation;
        let t = r.map(|row| {
            -(row[0] * self.pose.centre[0]
                + row[1] * self.pose.centre[1]
                + row[2] * self.pose.centre[2])
        });
        let (f, [cx, cy]) = (self.focal_px, self.principal);
        let k = [[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]];
        let cols = [[r[0][0], r[1][0], r[2][0]], [r[0][1], r[1][1], r[2][1]], t];
        let mut m = [[0.0; 3]; 3];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, col) in cols.iter().enumerate() {
                row[j] = (0..3).map(|q| k[i][q] * col[q]).sum();
            }
        }
        // A camera above the pitch looking at it never gives a singular map.
        Homography::from_rows(m).unwrap_or(Homography::IDENTITY)
    }

    /// Panorama pixels → pitch metres.
    pub fn pitch_from_image(&self) -> Homography {
        self.image_from_pitch().inverse()
    }

    /// The panorama section of a calibration file.
    pub fn calibration(&self) -> PanoramaCalibration {
        PanoramaCalibration {
            image_size: self.image_size,
            projection: Projection::Perspective,
            pitch_from_image: self.pitch_from_image(),
            tilt_deg: Some(self.tilt_deg),
            intrinsics: Some([self.focal_px, self.principal[0], self.principal[1]]),
            fit: None,
        }
    }

    /// Linear ground resolution (pixels per metre, √det of the Jacobian) at a pitch point.
    pub fn ground_resolution(&self, x: [f64; 2]) -> Option<f64> {
        let d = 0.01;
        let p = |dx: f64, dy: f64| self.project([x[0] + dx, x[1] + dy, 0.0]);
        let (a, b, c, e) = (p(d, 0.0)?, p(-d, 0.0)?, p(0.0, d)?, p(0.0, -d)?);
        let jx = [(a[0] - b[0]) / (2.0 * d), (a[1] - b[1]) / (2.0 * d)];
        let jy = [(c[0] - e[0]) / (2.0 * d), (c[1] - e[1]) / (2.0 * d)];
        Some((jx[0] * jy[1] - jx[1] * jy[0]).abs().sqrt())
    }
}

/// Plans the panorama of a calibrated rig.
pub fn plan_panorama(
    calibration: &CalibrationFile,
    options: &PanoramaOptions,
) -> Result<PanoramaView, PanoramaError> {
    plan_from_cameras(&calibration.pitch, &calibration.cameras, options)
}

/// Plans the panorama from the cameras' calibrations.
pub fn plan_from_cameras(
    pitch: &PitchSize,
    cameras: &[CameraCalibration],
    options: &PanoramaOptions,
) -> Result<PanoramaView, PanoramaError> {
    if cameras.is_empty() {
        return Err(PanoramaError::NoCameras);
    }
    let poses = cameras
        .iter()
        .map(camera_pose)
        .collect::<Result<Vec<_>, _>>()?;
    let n = poses.len() as f64;
    let centre = poses.iter().fold([0.0; 3], |a, p| {
        [
            a[0] + p.centre[0] / n,
            a[1] + p.centre[1] / n,
            a[2] + p.centre[2] / n,
        ]
    });
    let [hl, hw] = pitch.half_extents();
    // Look from the mast towards the centre spot, level horizon.
    let heading = {
        let (dx, dy) = (-centre[0], -centre[1]);
        let len = dx.hypot(dy);
        if len < 1e-6 {
            return Err(PanoramaError::Framing(
                "the rig stands above the centre spot; the panorama needs a side to look from"
                    .into(),
            ));
        }
        [dx / len, dy / len]
    };
    let pose_at = |tilt: f64| {
        let (s, c) = tilt.to_radians().sin_cos();
        let forward = [heading[0] * c, heading[1] * c, -s];
        let right = [heading[1], -heading[0], 0.0];
        // down = forward × right
        let down = [
            forward[1] * right[2] - forward[2] * right[1],
            forward[2] * right[0] - forward[0] * right[2],
            forward[0] * right[1] - forward[1] * right[0],
        ];
        CameraPose {
            centre,
            rotation: [right, down, forward],
        }
    };
    // Where a standing player is measured: the touchline points on the viewing line.
    let side = if centre[1] <= 0.0 { 1.0 } else { -1.0 };
    let along = centre[0].clamp(-hl, hl);
    let near = [along, -side * hw];
    let far = [along, side * hw];
    let player = options.player_height_m;
    let height_ratio = |tilt: f64| -> Option<f64> {
        let pose = pose_at(tilt);
        let tall = |p: [f64; 2]| -> Option<f64> {
            let a = pose.to_camera([p[0], p[1], 0.0]);
            let b = pose.to_camera([p[0], p[1], player]);
            if a[2] <= 0.0 || b[2] <= 0.0 {
                return None;
            }
            Some((a[0] / a[2] - b[0] / b[2]).hypot(a[1] / a[2] - b[1] / b[2]))
        };
        Some(tall(far)? / tall(near)?)
    };
    let outline = outline(pitch, options);
    let frames = |tilt: f64| {
        let pose = pose_at(tilt);
        outline.iter().all(|p| pose.to_camera(*p)[2] > 0.1)
    };
    let tilt = match options.tilt_deg {
        Some(t) if t.is_finite() && (0.0..90.0).contains(&t) => t,
        Some(t) => {
            return Err(PanoramaError::Framing(format!(
                "panorama tilt {t}° is outside 0–90°"
            )));
        }
        None => {
            // The ratio grows with the tilt; scan in quarter degrees for the one closest to 1.
            let mut best: Option<(f64, f64)> = None;
            for i in 0..=356 {
                let t = i as f64 * 0.25;
                if !frames(t) {
                    continue;
                }
                if let Some(r) = height_ratio(t) {
                    let miss = r.ln().abs();
                    if best.is_none_or(|(_, m)| miss < m) {
                        best = Some((t, miss));
                    }
                }
            }
            best.map(|(t, _)| t).ok_or_else(|| {
                PanoramaError::Framing("no tilt keeps the whole pitch in front of the rig".into())
            })?
        }
    };
    if !frames(tilt) {
        return Err(PanoramaError::Framing(format!(
            "at {tilt}° tilt part of the pitch is behind the panorama's camera"
        )));
    }
    let pose = pose_at(tilt);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in &outline {
        let c = pose.to_camera(*p);
        let (x, y) = (c[0] / c[2], c[1] / c[2]);
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let focal_px = options.width as f64 / (x1 - x0);
    let height = (((y1 - y0) * focal_px).ceil() as u32).div_ceil(2) * 2;
    if height > 4 * options.width {
        return Err(PanoramaError::Framing(format!(
            "the framing would be {}×{height} px; lower the tilt",
            options.width
        )));
    }
    Ok(PanoramaView {
        image_size: [options.width, height.max(2)],
        pose,
        focal_px,
        principal: [-x0 * focal_px, -y0 * focal_px],
        tilt_deg: tilt,
    })
}

/// Points that must be in view: the pitch plus the margin on the ground, and head room above
/// the far edge.
fn outline(pitch: &PitchSize, options: &PanoramaOptions) -> Vec<[f64; 3]> {
    let [hl, hw] = pitch.half_extents();
    let (ex, ey) = (hl + options.margin_m, hw + options.margin_m);
    let mut out = Vec::new();
    for i in 0..=40 {
        let t = -1.0 + 2.0 * i as f64 / 40.0;
        for (x, y) in [(t * ex, -ey), (t * ex, ey), (-ex, t * ey), (ex, t * ey)] {
            out.push([x, y, 0.0]);
        }
        out.push([t * ex, ey, options.head_room_m]);
        out.push([t * ex, -ey, options.head_room_m]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lens::LensModel;

    /// A camera of the default rig's shape, built from a pose.
    fn camera(name: &str, yaw_deg: f64, centre: [f64; 3]) -> CameraCalibration {
        let (sy, cy) = yaw_deg.to_radians().sin_cos();
        let (st, ct) = 25f64.to_radians().sin_cos();
        let heading = [sy, cy];
        let forward = [heading[0] * ct, heading[1] * ct, -st];
        let right = [heading[1], -heading[0], 0.0];
        let down = [
            forward[1] * right[2] - forward[2] * right[1],
            forward[2] * right[0] - forward[0] * right[2],
            forward[0] * right[1] - forward[1] * right[0],
        ];
        let view = PanoramaView {
            image_size: [1280, 720],
            pose: CameraPose {
                centre,
                rotation: [right, down, forward],
            },
            focal_px: 711.0,
            principal: [640.0, 360.0],
            tilt_deg: 25.0,
        };
        CameraCalibration {
            name: name.into(),
            image_size: [1280, 720],
            lens: LensModel::pinhole(711.0, 711.0, 640.0, 360.0),
            pitch_from_image: view.pitch_from_image(),
            fit: None,
        }
    }

    #[test]
    fn pose_is_recovered_from_the_homography() {
        let cam = camera("left", -40.0, [-0.125, -46.0, 13.0]);
        let pose = camera_pose(&cam).expect("pose");
        for (a, b) in pose.centre.iter().zip([-0.125, -46.0, 13.0]) {
            assert!((a - b).abs() < 1e-6, "{:?}", pose.centre);
        }
    }

    #[test]
    fn default_tilt_evens_out_player_height() {
        let cams = [
            camera("left", -40.0, [-0.125, -46.0, 13.0]),
            camera("right", 40.0, [0.125, -46.0, 13.0]),
        ];
        let pitch = PitchSize::default();
        let view = plan_from_cameras(&pitch, &cams, &PanoramaOptions::default()).expect("plan");
        assert!((60.0..75.0).contains(&view.tilt_deg), "{}", view.tilt_deg);
        let tall = |y: f64| {
            let a = view.project([0.0, y, 0.0]).expect("front");
            let b = view.project([0.0, y, 1.8]).expect("front");
            (a[1] - b[1]).abs()
        };
        let ratio = tall(34.0) / tall(-34.0);
        assert!((0.95..1.05).contains(&ratio), "{ratio}");
        // The whole pitch is inside the image.
        let [w, h] = view.image_size;
        for p in pitch.landmarks() {
            let q = view
                .pitch_from_image()
                .inverse()
                .apply(p.position)
                .expect("finite");
            assert!(
                q[0] > 0.0 && q[0] < w as f64 && q[1] > 0.0 && q[1] < h as f64,
                "{}",
                p.name
            );
        }
        let fixed = PanoramaOptions {
            tilt_deg: Some(25.0),
            ..PanoramaOptions::default()
        };
        let low = plan_from_cameras(&pitch, &cams, &fixed).expect("plan");
        let spread = |v: &PanoramaView| {
            let mut lo = f64::MAX;
            let mut hi = f64::MIN;
            for x in (-10..=10).map(|i| i as f64 * 5.25) {
                for y in (-4..=4).map(|i| i as f64 * 8.5) {
                    let r = v.ground_resolution([x, y]).expect("front");
                    lo = lo.min(r);
                    hi = hi.max(r);
                }
            }
            hi / lo
        };
        println!(
            "ground resolution max/min over the pitch: {:.1} at the chosen {:.2}° ({}×{} px), {:.1} at 25° ({}×{} px)",
            spread(&view),
            view.tilt_deg,
            view.image_size[0],
            view.image_size[1],
            spread(&low),
            low.image_size[0],
            low.image_size[1]
        );
        assert!(
            spread(&view) < 0.6 * spread(&low),
            "{} vs {}",
            spread(&view),
            spread(&low)
        );
    }
}
