//! Seam registration: make the two cameras agree where the panorama blends them.
//!
//! Each camera's field homography is fitted to its own clicks, so each carries its own error of
//! a pixel or so; at the seam the two errors add up and a pitch line can step by two pixels.
//! The overlap of the two cameras shows the same grass and paint, which pins down how the two
//! must line up far more precisely than clicks do.
//!
//! The registration warps camera R's contribution to the panorama by a small map
//! `A(u, v) = (u + a + b·(v − v̄), v + c + d·(v − v̄))` (shift, shear and stretch along the tall,
//! narrow overlap) and fits it, together with a gain and an offset for the exposure difference,
//! by Gauss–Newton on the brightness difference over the overlap, with Huber weights so that
//! players standing in the overlap (who show parallax) do not pull it. Both frames are
//! smoothed first (σ ≈ 1.2 px) to widen the basin of convergence. Half of the correction then
//! goes to each camera's homography, so that neither camera is taken as the reference.

use crate::file::CalibrationFile;
use crate::homography::Homography;
use crate::lut::{NOT_SEEN, StitchTable, unpack};

/// An RGBA frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Width and height, pixels.
    pub size: [u32; 2],
    /// Rows of RGBA bytes.
    pub rgba: &'a [u8],
}

/// What the registration did.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SeamReport {
    /// Overlap pixels used.
    pub pixels: usize,
    /// RMS brightness difference over the overlap before, grey levels.
    pub rms_before: f64,
    /// The same after.
    pub rms_after: f64,
    /// Shift of R against L at the middle of the overlap that was removed, panorama pixels.
    pub shift_px: [f64; 2],
}

/// Grey image, smoothed.
struct Luma {
    w: usize,
    h: usize,
    v: Vec<f32>,
}

impl Luma {
    fn new(frame: &Frame<'_>) -> Result<Self, String> {
        let (w, h) = (frame.size[0] as usize, frame.size[1] as usize);
        if frame.rgba.len() != w * h * 4 {
            return Err(format!(
                "frame has {} bytes; a {w}×{h} RGBA frame has {}",
                frame.rgba.len(),
                w * h * 4
            ));
        }
        let grey: Vec<f32> = frame
            .rgba
            .chunks_exact(4)
            .map(|p| (p[0] as f32 + p[1] as f32 + p[2] as f32) / 3.0)
            .collect();
        // Separable binomial blur [1 4 6 4 1]/16 (σ ≈ 1 px), twice.
        let kernel = [1.0f32, 4.0, 6.0, 4.0, 1.0].map(|k| k / 16.0);
        let mut a = grey;
        let mut b = vec![0.0f32; w * h];
        for _ in 0..2 {
            for y in 0..h {
                for x in 0..w {
                    b[y * w + x] = (0..5)
                        .map(|k| {
                            let xx = (x as i64 + k as i64 - 2).clamp(0, w as i64 - 1) as usize;
                            kernel[k] * a[y * w + xx]
                        })
                        .sum();
                }
            }
            for y in 0..h {
                for x in 0..w {
                    a[y * w + x] = (0..5)
                        .map(|k| {
                            let yy = (y as i64 + k as i64 - 2).clamp(0, h as i64 - 1) as usize;
                            kernel[k] * b[yy * w + x]
                        })
                        .sum();
                }
            }
        }
        Ok(Luma { w, h, v: a })
    }

    /// Bilinear sample at a position with pixel centres at integers.
    fn at(&self, x: f64, y: f64) -> Option<f64> {
        if !(x >= 0.0 && y >= 0.0 && x <= (self.w - 1) as f64 && y <= (self.h - 1) as f64) {
            return None;
        }
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
        let p = |x: usize, y: usize| self.v[y * self.w + x];
        let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
        let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
        Some((top * (1.0 - fy) + bottom * fy) as f64)
    }
}

/// Panorama pixel → camera pixel (pixel centres at integers) through the pitch plane.
struct ToCamera {
    m: [[f64; 3]; 3],
    lens: crate::LensModel,
}

impl ToCamera {
    fn new(camera: &crate::CameraCalibration, pitch_from_panorama: &Homography) -> Self {
        ToCamera {
            m: camera
                .pitch_from_image
                .inverse()
                .compose(pitch_from_panorama)
                .rows(),
            lens: camera.lens,
        }
    }

    fn map(&self, u: f64, v: f64) -> Option<[f64; 2]> {
        let m = &self.m;
        let w = m[2][0] * u + m[2][1] * v + m[2][2];
        if w.abs() < 1e-12 {
            return None;
        }
        let x = (m[0][0] * u + m[0][1] * v + m[0][2]) / w;
        let y = (m[1][0] * u + m[1][1] * v + m[1][2]) / w;
        let d = self.lens.distort_pixel([x, y]);
        Some([d[0] - 0.5, d[1] - 0.5])
    }
}

/// Registers the seam of `calibration` (cameras `left`, `right` and a panorama section) on one
/// pair of frames and updates both cameras' homographies in place.
pub fn register_seam(
    calibration: &mut CalibrationFile,
    left: &Frame<'_>,
    right: &Frame<'_>,
) -> Result<SeamReport, String> {
    let table = StitchTable::build(calibration, 0).map_err(|e| e.to_string())?;
    if table.left_size != left.size || table.right_size != right.size {
        return Err(format!(
            "frames are {:?} and {:?}; the calibration's cameras are {:?} and {:?}",
            left.size, right.size, table.left_size, table.right_size
        ));
    }
    let pano = calibration
        .panorama
        .as_ref()
        .ok_or("no panorama section")?
        .clone();
    let (l_luma, r_luma) = (Luma::new(left)?, Luma::new(right)?);
    let cam = |name: &str| {
        calibration
            .camera(name)
            .cloned()
            .ok_or_else(|| format!("no camera `{name}`"))
    };
    let r_cam = cam("right")?;
    let to_right = ToCamera::new(&r_cam, &pano.pitch_from_image);
    // The overlap: panorama pixels both cameras see, with L's brightness there.
    let width = table.panorama_size[0] as usize;
    let mut samples: Vec<(f64, f64, f64)> = Vec::new();
    for (i, (l, r)) in table.left.iter().zip(&table.right).enumerate() {
        if *l == NOT_SEEN || *r == NOT_SEEN {
            continue;
        }
        let Some([x, y]) = unpack(*l) else { continue };
        if let Some(luma) = l_luma.at(x as f64, y as f64) {
            samples.push(((i % width) as f64 + 0.5, (i / width) as f64 + 0.5, luma));
        }
    }
    if samples.len() < 500 {
        return Err(format!(
            "the cameras overlap in only {} panorama pixels; the seam cannot be registered",
            samples.len()
        ));
    }
    let v_mid = samples.iter().map(|s| s.1).sum::<f64>() / samples.len() as f64;
    let v_span = samples
        .iter()
        .map(|s| (s.1 - v_mid).abs())
        .fold(1.0, f64::max);
    // Parameters: a, b, c, d of the warp (b and d per unit of (v − v̄)/span), gain, offset.
    let mut p = [0.0f64, 0.0, 0.0, 0.0, 1.0, 0.0];
    let residuals = |p: &[f64; 6]| -> Vec<Option<(f64, [f64; 6])>> {
        samples
            .iter()
            .map(|&(u, v, target)| {
                let t = (v - v_mid) / v_span;
                let (uu, vv) = (u + p[0] + p[1] * t, v + p[2] + p[3] * t);
                let sample = |du: f64, dv: f64| {
                    to_right
                        .map(uu + du, vv + dv)
                        .and_then(|[x, y]| r_luma.at(x, y))
                };
                let value = sample(0.0, 0.0)?;
                let gu = (sample(0.5, 0.0)? - sample(-0.5, 0.0)?) * p[4];
                let gv = (sample(0.0, 0.5)? - sample(0.0, -0.5)?) * p[4];
                let r = p[4] * value + p[5] - target;
                Some((r, [gu, gu * t, gv, gv * t, value, 1.0]))
            })
            .collect()
    };
    let rms = |rs: &[Option<(f64, [f64; 6])>]| {
        let used: Vec<f64> = rs.iter().flatten().map(|(r, _)| r * r).collect();
        (used.iter().sum::<f64>() / used.len().max(1) as f64).sqrt()
    };
    let first = residuals(&p);
    let rms_before = rms(&first);
    let mut current = first;
    for _ in 0..40 {
        // Huber weights at 2.5× the robust spread.
        let mut abs: Vec<f64> = current.iter().flatten().map(|(r, _)| r.abs()).collect();
        if abs.len() < 100 {
            break;
        }
        abs.sort_by(f64::total_cmp);
        let scale = (1.4826 * abs[abs.len() / 2]).max(0.5) * 2.5;
        let mut jtj = nalgebra::SMatrix::<f64, 6, 6>::zeros();
        let mut jtr = nalgebra::SVector::<f64, 6>::zeros();
        for (r, j) in current.iter().flatten() {
            let w = if r.abs() <= scale {
                1.0
            } else {
                scale / r.abs()
            };
            let j = nalgebra::SVector::<f64, 6>::from_column_slice(j);
            jtj += w * j * j.transpose();
            jtr += w * j * *r;
        }
        for k in 0..6 {
            jtj[(k, k)] *= 1.0 + 1e-6;
        }
        let Some(step) = jtj.cholesky().map(|c| c.solve(&(-jtr))) else {
            break;
        };
        let mut next = p;
        for (k, s) in step.iter().enumerate() {
            // Keep each step small: the linearisation holds over about a pixel.
            let limit = if k < 4 { 1.0 } else { f64::INFINITY };
            next[k] += s.clamp(-limit, limit);
        }
        let candidate = residuals(&next);
        if rms(&candidate) > rms(&current) * 1.001 {
            break;
        }
        let moved = step.iter().take(4).map(|s| s.abs()).fold(0.0, f64::max);
        p = next;
        current = candidate;
        if moved < 1e-3 {
            break;
        }
    }
    let rms_after = rms(&current);
    if p[..4].iter().any(|v| !v.is_finite() || v.abs() > 20.0) {
        return Err(format!(
            "the seam registration did not settle (shift {:.1}, {:.1} px); check the frames belong to this rig",
            p[0], p[2]
        ));
    }
    // Half the warp to each camera: R's content moves by A^(1/2), L's by A^(-1/2).
    let half = |sign: f64| -> Result<Homography, String> {
        let (a, b, c, d) = (
            sign * p[0] / 2.0,
            sign * p[1] / 2.0 / v_span,
            sign * p[2] / 2.0,
            sign * p[3] / 2.0 / v_span,
        );
        // u' = u + a + b(v − v̄), v' = v + c + d(v − v̄)
        Homography::from_rows([
            [1.0, b, a - b * v_mid],
            [0.0, 1.0 + d, c - d * v_mid],
            [0.0, 0.0, 1.0],
        ])
        .map_err(|e| e.to_string())
    };
    let pano_h = pano.pitch_from_image;
    for (name, warp) in [("right", half(1.0)?), ("left", half(-1.0)?)] {
        // Sampling the camera at A(p) for panorama pixel p: G' = G ∘ H ∘ A ∘ H⁻¹, so
        // pitch_from_image' = H ∘ A⁻¹ ∘ H⁻¹ ∘ pitch_from_image.
        let camera = calibration
            .cameras
            .iter_mut()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("no camera `{name}`"))?;
        camera.pitch_from_image = pano_h
            .compose(&warp.inverse())
            .compose(&pano_h.inverse())
            .compose(&camera.pitch_from_image);
    }
    Ok(SeamReport {
        pixels: samples.len(),
        rms_before,
        rms_after,
        shift_px: [p[0], p[2]],
    })
}
