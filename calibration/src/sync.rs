//! Camera sync: the time offset between the two cameras, found from what moves where they
//! overlap.
//!
//! The cameras of a rig are not triggered together and their recordings need not start
//! together. Where the two views overlap both see the same players: a player crossing a patch of
//! pitch changes its brightness in both cameras at the same instant. The offset is therefore the
//! lag that best lines up the two cameras' motion, patch by patch, over a few seconds.
//!
//! - [`OverlapSampler`] picks pitch points every `step_m` that both cameras see (through each
//!   camera's lens and field homography) and groups them into cells a few metres across;
//! - [`SyncRecorder`] turns each frame into one motion figure per cell (mean absolute grey
//!   change since that camera's previous frame);
//! - [`SyncRecorder::estimate`] normalises every cell's motion series, correlates the two
//!   cameras' series over a range of lags, and refines the best lag to a fraction of a frame.
//!
//! Convention: an offset of `+k` frames means left frame `n + k` shows the instant of right
//! frame `n` (the left recording started `k` frames earlier, or its clock is ahead).

use crate::file::CalibrationFile;
use crate::seam::Frame;
use crate::view::ViewGeometry;

/// What the sampler looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncOptions {
    /// Distance between sampled pitch points, metres.
    pub step_m: f64,
    /// Cell size `[along x, along y]`, metres: a player fills a good part of a cell, so that one
    /// crossing it is a clear event in that cell's series.
    pub cell_m: [f64; 2],
    /// How far outside the touchlines and goal lines to sample, metres.
    pub margin_m: f64,
    /// Fewest points a cell needs to be used.
    pub min_points: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            step_m: 0.25,
            cell_m: [2.0, 4.0],
            margin_m: 2.0,
            min_points: 12,
        }
    }
}

/// Pitch points seen by both cameras, with their sensor pixel in each.
#[derive(Debug, Clone)]
pub struct OverlapSampler {
    sizes: [[u32; 2]; 2],
    /// Per camera, per point: the sensor pixel (rounded).
    pixels: [Vec<[u32; 2]>; 2],
    /// Per point: its cell.
    cell_of: Vec<usize>,
    cells: usize,
}

impl OverlapSampler {
    /// The sampler of a two-camera calibration (`left` and `right`); an error when the file
    /// lacks a camera or the two views share too little pitch to sync on.
    pub fn new(cal: &CalibrationFile, options: &SyncOptions) -> Result<Self, String> {
        if !(options.step_m > 0.0 && options.cell_m.iter().all(|c| *c >= options.step_m)) {
            return Err(format!(
                "sync: step {} m and cells {:?} m must be positive, cells no smaller than the step",
                options.step_m, options.cell_m
            ));
        }
        let views = ["left", "right"].map(|name| ViewGeometry::from_calibration(cal, Some(name)));
        let [left, right] = views;
        let views = [left?, right?];
        let [hx, hy] = cal.pitch.half_extents();
        let (x0, y0) = (-hx - options.margin_m, -hy - options.margin_m);
        let nx = ((2.0 * (hx + options.margin_m)) / options.step_m).floor() as usize + 1;
        let ny = ((2.0 * (hy + options.margin_m)) / options.step_m).floor() as usize + 1;
        let cx = ((2.0 * (hx + options.margin_m)) / options.cell_m[0]).ceil() as usize + 1;
        let mut pixels: [Vec<[u32; 2]>; 2] = [Vec::new(), Vec::new()];
        let mut cell_of = Vec::new();
        for j in 0..ny {
            for i in 0..nx {
                let p = [
                    x0 + i as f64 * options.step_m,
                    y0 + j as f64 * options.step_m,
                ];
                let seen = [&views[0], &views[1]].map(|v| sensor_pixel(v, p));
                if let [Some(a), Some(b)] = seen {
                    pixels[0].push(a);
                    pixels[1].push(b);
                    let cell = ((p[0] - x0) / options.cell_m[0]) as usize
                        + cx * ((p[1] - y0) / options.cell_m[1]) as usize;
                    cell_of.push(cell);
                }
            }
        }
        // Renumber the cells with enough points; drop the points of the others.
        let mut count = std::collections::HashMap::<usize, usize>::new();
        for c in &cell_of {
            *count.entry(*c).or_default() += 1;
        }
        let mut kept: Vec<usize> = count
            .iter()
            .filter(|(_, n)| **n >= options.min_points)
            .map(|(c, _)| *c)
            .collect();
        kept.sort_unstable();
        let index: std::collections::HashMap<usize, usize> =
            kept.iter().enumerate().map(|(i, c)| (*c, i)).collect();
        let mut sampler = OverlapSampler {
            sizes: [views[0].image_size, views[1].image_size],
            pixels: [Vec::new(), Vec::new()],
            cell_of: Vec::new(),
            cells: kept.len(),
        };
        for (k, c) in cell_of.iter().enumerate() {
            if let Some(i) = index.get(c) {
                sampler.pixels[0].push(pixels[0][k]);
                sampler.pixels[1].push(pixels[1][k]);
                sampler.cell_of.push(*i);
            }
        }
        if sampler.cells < 4 {
            return Err(format!(
                "sync: the two cameras share {} cells of pitch ({} points); at least 4 are needed to find their time offset",
                sampler.cells,
                sampler.cell_of.len()
            ));
        }
        Ok(sampler)
    }

    /// Cells used.
    pub fn cells(&self) -> usize {
        self.cells
    }

    /// Points sampled per frame and camera.
    pub fn points(&self) -> usize {
        self.cell_of.len()
    }

    /// Sum of the 3×3 box around each point's pixel, per channel, of camera `camera` (0 left,
    /// 1 right).
    fn boxes(&self, camera: usize, frame: &Frame<'_>) -> Result<Vec<[u16; 3]>, String> {
        let [w, h] = self.sizes[camera];
        let name = ["left", "right"][camera];
        if frame.size != [w, h] || frame.rgba.len() != w as usize * h as usize * 4 {
            return Err(format!(
                "sync: a {name} frame is {}×{} ({} bytes); the calibration's {name} camera is {w}×{h}",
                frame.size[0],
                frame.size[1],
                frame.rgba.len()
            ));
        }
        let stride = w as usize * 4;
        Ok(self.pixels[camera]
            .iter()
            .map(|&[x, y]| {
                let mut sum = [0u16; 3];
                for yy in y - 1..=y + 1 {
                    let row = &frame.rgba[yy as usize * stride..];
                    for xx in x - 1..=x + 1 {
                        let p = &row[xx as usize * 4..xx as usize * 4 + 3];
                        for c in 0..3 {
                            sum[c] += p[c] as u16;
                        }
                    }
                }
                sum
            })
            .collect())
    }
}

/// Grey level (BT.601 weights) of a 3×3 box sum, with per-channel gains.
fn grey_of(b: &[u16; 3], gain: [f64; 3]) -> f32 {
    ((0.299 * gain[0] * b[0] as f64
        + 0.587 * gain[1] * b[1] as f64
        + 0.114 * gain[2] * b[2] as f64)
        / 9.0) as f32
}

/// The sensor pixel of pitch point `p` when it is well inside the image and the lens maps it
/// back to the same point (no fold-over near the corners).
fn sensor_pixel(view: &ViewGeometry, p: [f64; 2]) -> Option<[u32; 2]> {
    let px = view.to_image(p)?;
    let [w, h] = view.image_size;
    let inside = px[0] >= 2.0 && px[1] >= 2.0 && px[0] < w as f64 - 3.0 && px[1] < h as f64 - 3.0;
    if !inside {
        return None;
    }
    let back = view.to_pitch(px)?;
    ((back[0] - p[0]).hypot(back[1] - p[1]) < 0.05)
        .then(|| [px[0].round() as u32, px[1].round() as u32])
}

/// The two cameras' motion per cell, frame by frame.
#[derive(Debug, Clone)]
pub struct SyncRecorder {
    sampler: OverlapSampler,
    previous: [Option<Vec<f32>>; 2],
    /// Per camera, per frame: motion per cell.
    motion: [Vec<Vec<f32>>; 2],
    /// Per camera, per frame: every point's box sums, when kept ([`SyncRecorder::keeping_colour`]).
    samples: Option<[Vec<Vec<[u16; 3]>>; 2]>,
}

/// The offset found, and how sure the correlation is of it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SyncEstimate {
    /// Left frame `n + offset_frames` shows the instant of right frame `n`; refined to a
    /// fraction of a frame.
    pub offset_frames: f64,
    /// Mean correlation of the cells' motion at the best whole-frame lag (1 = identical).
    pub peak: f64,
    /// The best correlation at another local maximum (another lag the motion could line up
    /// at); the lowest correlation when there is none.
    pub runner_up: f64,
    /// Cells that moved enough to be used.
    pub cells: usize,
    /// Frames of each camera the estimate used.
    pub frames: usize,
}

impl SyncEstimate {
    /// Whether the peak stands clear of every other lag: the estimate can be acted on.
    pub fn is_clear(&self) -> bool {
        // Correlations of frame-to-frame changes are small (most of a cell does not change);
        // over a hundred cells and frames, noise stays near 0.01.
        self.peak >= 0.05 && self.peak >= 1.5 * self.runner_up.max(0.0)
    }
}

impl SyncRecorder {
    /// An empty recorder.
    pub fn new(sampler: OverlapSampler) -> Self {
        SyncRecorder {
            sampler,
            previous: [None, None],
            motion: [Vec::new(), Vec::new()],
            samples: None,
        }
    }

    /// An empty recorder that also keeps every point's colour, for [`SyncRecorder::colour_gain`]
    /// and [`SyncRecorder::overlap_difference`] (about 6 bytes per point, frame and camera).
    pub fn keeping_colour(sampler: OverlapSampler) -> Self {
        SyncRecorder {
            samples: Some([Vec::new(), Vec::new()]),
            ..SyncRecorder::new(sampler)
        }
    }

    /// The sampler.
    pub fn sampler(&self) -> &OverlapSampler {
        &self.sampler
    }

    /// Frames recorded for camera `camera` (motion values, one fewer than frames pushed).
    pub fn frames(&self, camera: usize) -> usize {
        self.motion[camera].len()
    }

    /// Forgets everything, the reference frames too (the streams jumped: a new offset, a lost
    /// frame).
    pub fn reset(&mut self) {
        self.clear();
        self.previous = [None, None];
    }

    /// Forgets the recorded motion (each camera's last frame is kept as the reference).
    pub fn clear(&mut self) {
        self.motion = [Vec::new(), Vec::new()];
        if let Some(s) = self.samples.as_mut() {
            *s = [Vec::new(), Vec::new()];
        }
    }

    /// The next frame of camera `camera` (0 left, 1 right).
    pub fn push(&mut self, camera: usize, frame: &Frame<'_>) -> Result<(), String> {
        let boxes = self.sampler.boxes(camera, frame)?;
        let grey: Vec<f32> = boxes.iter().map(|b| grey_of(b, [1.0; 3])).collect();
        if let Some(prev) = &self.previous[camera] {
            let mut sum = vec![0f32; self.sampler.cells];
            let mut n = vec![0u32; self.sampler.cells];
            for ((g, p), c) in grey.iter().zip(prev).zip(&self.sampler.cell_of) {
                sum[*c] += (g - p).abs();
                n[*c] += 1;
            }
            self.motion[camera].push(
                sum.iter()
                    .zip(&n)
                    .map(|(s, n)| s / (*n).max(1) as f32)
                    .collect(),
            );
        }
        self.previous[camera] = Some(grey);
        if let Some(s) = self.samples.as_mut() {
            s[camera].push(boxes);
        }
        Ok(())
    }

    /// Per-channel gain that makes the right camera's colour match the left's over the
    /// overlap (ratio of the channel sums over every kept frame); `None` without kept colour.
    pub fn colour_gain(&self) -> Option<[f64; 3]> {
        let s = self.samples.as_ref()?;
        let mut sum = [[0f64; 3]; 2];
        for (camera, frames) in s.iter().enumerate() {
            for f in frames {
                for b in f {
                    for c in 0..3 {
                        sum[camera][c] += b[c] as f64;
                    }
                }
            }
        }
        let gain: Vec<f64> = (0..3).map(|c| sum[0][c] / sum[1][c]).collect();
        gain.iter()
            .all(|g| g.is_finite() && *g > 0.0)
            .then(|| [gain[0], gain[1], gain[2]])
    }

    /// Mean absolute grey difference between the cameras at the same pitch points, pairing
    /// left frame `t + offset_frames` with right frame `t` and scaling the right's channels by
    /// `gain`: the colour and calibration mismatch a seam shows. `None` without kept colour or
    /// overlapping frames.
    pub fn overlap_difference(&self, offset_frames: i64, gain: [f64; 3]) -> Option<f64> {
        let s = self.samples.as_ref()?;
        let (mut total, mut n) = (0f64, 0usize);
        for (t, r) in s[1].iter().enumerate() {
            let Some(l) = usize::try_from(t as i64 + offset_frames)
                .ok()
                .and_then(|u| s[0].get(u))
            else {
                continue;
            };
            for (a, b) in l.iter().zip(r) {
                total += (grey_of(a, [1.0; 3]) - grey_of(b, gain)).abs() as f64;
                n += 1;
            }
        }
        (n > 0).then(|| total / n as f64)
    }

    /// Mean absolute difference of the two cameras' motion per cell (grey levels per frame),
    /// pairing left frame `t + offset_frames` with right frame `t`: a player moving in a cell
    /// in one camera and not in the other is what shows as a ghost in the seam. Cells are a few
    /// metres across, so this holds where the seam's geometry is off by a player's width (a
    /// per-pixel difference would then not see players line up at all).
    pub fn motion_mismatch(&self, offset_frames: i64) -> Option<f64> {
        let (mut total, mut n) = (0f64, 0usize);
        for (t, r) in self.motion[1].iter().enumerate() {
            let Some(l) = usize::try_from(t as i64 + offset_frames)
                .ok()
                .and_then(|u| self.motion[0].get(u))
            else {
                continue;
            };
            for (a, b) in l.iter().zip(r) {
                total += (a - b).abs() as f64;
                n += 1;
            }
        }
        (n > 0).then(|| total / n as f64)
    }

    /// The offset within `±max_lag` frames that lines up the two cameras' motion best.
    pub fn estimate(&self, max_lag: usize) -> Result<SyncEstimate, String> {
        let frames = self.motion[0].len().min(self.motion[1].len());
        if frames < 3 * max_lag.max(2) {
            return Err(format!(
                "sync: {frames} frames of motion is too few to try lags of ±{max_lag} frames (at least {} needed)",
                3 * max_lag.max(2)
            ));
        }
        // Per cell and camera: the motion series, differenced, zero mean and unit variance; a
        // cell where nothing moved in either camera carries no timing and is left out.
        // What changes every cell of a camera at once (a codec's key frame, exposure flicker)
        // is the same in both recordings only by accident of encoding: each frame's median
        // over the cells is taken off.
        let common: Vec<Vec<f64>> = (0..2)
            .map(|cam| {
                self.motion[cam][..frames]
                    .iter()
                    .map(|m| {
                        let mut v: Vec<f32> = m.clone();
                        v.sort_unstable_by(f32::total_cmp);
                        v.get(v.len() / 2).copied().unwrap_or(0.0) as f64
                    })
                    .collect()
            })
            .collect();
        let mut series = Vec::new();
        for c in 0..self.sampler.cells {
            let norm = |cam: usize| -> Option<Vec<f64>> {
                let mut s: Vec<f64> = self.motion[cam][..frames]
                    .iter()
                    .zip(&common[cam])
                    .map(|(m, k)| m[c] as f64 - k)
                    .collect();
                // Its change from frame to frame: a player entering or leaving the cell is a
                // sharp event, where the motion itself rises and falls over many frames and
                // gives a peak as wide as a player's crossing.
                let d: Vec<f64> = s.windows(2).map(|w| w[1] - w[0]).collect();
                s = std::iter::once(0.0).chain(d).collect();
                let mean = s.iter().sum::<f64>() / frames as f64;
                let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / frames as f64;
                // Below a tenth of a grey level of change, it is sensor noise.
                (var.sqrt() > 0.1).then(|| s.iter().map(|v| (v - mean) / var.sqrt()).collect())
            };
            if let (Some(l), Some(r)) = (norm(0), norm(1)) {
                series.push((l, r));
            }
        }
        if series.is_empty() {
            return Err(format!(
                "sync: nothing moved in the {} cells the cameras share over {frames} frames",
                self.sampler.cells
            ));
        }
        let lags = max_lag as i64;
        let score = |lag: i64| -> f64 {
            let mut total = 0.0;
            for (l, r) in &series {
                let (mut sum, mut n) = (0.0, 0usize);
                for t in 0..frames as i64 {
                    let u = t + lag;
                    if (0..frames as i64).contains(&u) {
                        sum += l[u as usize] * r[t as usize];
                        n += 1;
                    }
                }
                total += sum / n.max(1) as f64;
            }
            total / series.len() as f64
        };
        let scores: Vec<f64> = (-lags..=lags).map(score).collect();
        let (best, peak) =
            scores.iter().enumerate().fold(
                (0, f64::MIN),
                |acc, (i, s)| if *s > acc.1 { (i, *s) } else { acc },
            );
        // The best other local maximum: a second lag the motion could line up at. The shoulders
        // of the peak itself (motion is smooth over a few frames) do not count.
        let runner_up = (0..scores.len())
            .filter(|&i| i != best)
            .filter(|&i| {
                (i == 0 || scores[i] >= scores[i - 1])
                    && (i + 1 == scores.len() || scores[i] >= scores[i + 1])
            })
            .map(|i| scores[i])
            .reduce(f64::max)
            // No other maximum: the lowest score stands for "nothing else".
            .unwrap_or_else(|| scores.iter().copied().fold(f64::INFINITY, f64::min));
        // A parabola through the peak and its neighbours places it between frames.
        let fraction = if best > 0 && best + 1 < scores.len() {
            let (a, b, c) = (scores[best - 1], scores[best], scores[best + 1]);
            let denom = a - 2.0 * b + c;
            if denom < 0.0 {
                (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
            } else {
                0.0
            }
        } else {
            0.0
        };
        Ok(SyncEstimate {
            offset_frames: best as f64 - lags as f64 + fraction,
            peak,
            runner_up,
            cells: series.len(),
            frames,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::CameraCalibration;
    use crate::homography::Homography;
    use crate::lens::LensModel;
    use crate::pitch::PitchSize;

    /// Two top-down cameras at 8 px/m: left sees x in [-60, 10], right x in [-10, 60].
    fn rig() -> CalibrationFile {
        let camera = |name: &str, x_left: f64| CameraCalibration {
            name: name.into(),
            image_size: [560, 640],
            lens: LensModel::pinhole(500.0, 500.0, 280.0, 320.0),
            pitch_from_image: Homography::from_rows([
                [0.125, 0.0, x_left],
                [0.0, -0.125, 40.0],
                [0.0, 0.0, 1.0],
            ])
            .expect("finite"),
            fit: None,
        };
        CalibrationFile::new(
            PitchSize::default(),
            vec![camera("left", -60.0), camera("right", -10.0)],
        )
    }

    /// A frame of `camera` at time `t` (frames): players as dark squares walking across the
    /// pitch on paths seeded by their index.
    fn frame(cal: &CalibrationFile, camera: &str, t: f64) -> Vec<u8> {
        let view = ViewGeometry::from_calibration(cal, Some(camera)).expect("view");
        let [w, h] = view.image_size;
        let mut rgba = vec![120u8; (w * h * 4) as usize];
        for k in 0..14 {
            let k = k as f64;
            // Irregular walks so that no lag but the true one lines the cameras up.
            let x = -9.0 + (k * 1.37 + 0.11 * t * (1.0 + 0.3 * (k * 0.7).sin())) % 18.0;
            let y = -30.0 + (k * 4.3 + 0.09 * t * (0.5 + (k * 1.3).cos())).rem_euclid(60.0);
            let Some(px) = view.to_image([x, y]) else {
                continue;
            };
            for dy in -6i64..=6 {
                for dx in -3i64..=3 {
                    let (u, v) = (px[0] as i64 + dx, px[1] as i64 + dy);
                    if u >= 0 && v >= 0 && u < w as i64 && v < h as i64 {
                        let i = ((v as u32 * w + u as u32) * 4) as usize;
                        rgba[i..i + 3].copy_from_slice(&[20, 30, 200]);
                    }
                }
            }
        }
        rgba
    }

    fn push(rec: &mut SyncRecorder, camera: usize, rgba: &[u8]) {
        let f = Frame {
            size: [560, 640],
            rgba,
        };
        rec.push(camera, &f).expect("frame");
    }

    fn recorded(offset: f64, frames: usize) -> SyncRecorder {
        let cal = rig();
        let sampler = OverlapSampler::new(&cal, &SyncOptions::default()).expect("overlap");
        let mut rec = SyncRecorder::new(sampler);
        for n in 0..frames {
            for (camera, name, t) in [(0, "left", n as f64 - offset), (1, "right", n as f64)] {
                push(&mut rec, camera, &frame(&cal, name, t * 4.0));
            }
        }
        rec
    }

    #[test]
    fn the_overlap_is_where_both_cameras_see_the_pitch() {
        let sampler = OverlapSampler::new(&rig(), &SyncOptions::default()).expect("overlap");
        // 20 m × 72 m shared at 0.25 m: cells of 2 × 4 m, about 10 × 18 of them.
        assert!(
            (150..=200).contains(&sampler.cells()),
            "{}",
            sampler.cells()
        );
        for (a, b) in sampler.pixels[0].iter().zip(&sampler.pixels[1]) {
            // The same pitch point: left pixel x is right pixel x + 50 m · 8 px/m.
            assert!((a[0] as i64 - b[0] as i64 - 400).abs() <= 1, "{a:?} {b:?}");
        }
    }

    #[test]
    fn the_offset_is_found_to_a_fraction_of_a_frame() {
        for offset in [4.0, -3.0, 0.0, 2.5] {
            let est = recorded(offset, 90).estimate(12).expect("estimate");
            assert!(
                (est.offset_frames - offset).abs() <= 0.3,
                "offset {offset}: {est:?}"
            );
            assert!(est.is_clear(), "offset {offset}: {est:?}");
        }
    }

    #[test]
    fn still_footage_or_too_few_frames_give_an_error_not_an_offset() {
        let cal = rig();
        let sampler = OverlapSampler::new(&cal, &SyncOptions::default()).expect("overlap");
        let mut rec = SyncRecorder::new(sampler);
        let grass = vec![120u8; 560 * 640 * 4];
        for _ in 0..60 {
            for camera in 0..2 {
                push(&mut rec, camera, &grass);
            }
        }
        let err = rec.estimate(12).unwrap_err();
        assert!(err.contains("nothing moved"), "{err}");
        let err = recorded(0.0, 10).estimate(12).unwrap_err();
        assert!(err.contains("too few"), "{err}");
        let small = vec![0u8; 16];
        let err = rec
            .push(
                1,
                &Frame {
                    size: [2, 2],
                    rgba: &small,
                },
            )
            .unwrap_err();
        assert!(err.contains("right camera is 560×640"), "{err}");
    }

    #[test]
    fn cameras_that_share_no_pitch_cannot_be_synced() {
        let mut cal = rig();
        cal.cameras[1].pitch_from_image =
            Homography::from_rows([[0.125, 0.0, 40.0], [0.0, -0.125, 40.0], [0.0, 0.0, 1.0]])
                .expect("finite");
        let err = OverlapSampler::new(&cal, &SyncOptions::default()).unwrap_err();
        assert!(err.contains("share 0 cells"), "{err}");
    }

    #[test]
    fn colour_gain_and_the_seam_difference_come_from_the_same_points() {
        let cal = rig();
        let sampler = OverlapSampler::new(&cal, &SyncOptions::default()).expect("overlap");
        let mut rec = SyncRecorder::keeping_colour(sampler);
        for n in 0..40 {
            for (camera, name, t, scale) in [
                (0, "left", n as f64 - 3.0, [1.0, 1.0, 1.0]),
                (1, "right", n as f64, [0.8, 1.0, 1.25]),
            ] {
                let mut rgba = frame(&cal, name, t * 4.0);
                for p in rgba.chunks_exact_mut(4) {
                    for c in 0..3 {
                        p[c] = (p[c] as f64 * scale[c]).round().min(255.0) as u8;
                    }
                }
                push(&mut rec, camera, &rgba);
            }
        }
        let gain = rec.colour_gain().expect("gain");
        for (g, want) in gain.iter().zip([1.25, 1.0, 0.8]) {
            assert!((g - want).abs() < 0.02, "{gain:?}");
        }
        let raw = rec.overlap_difference(0, [1.0; 3]).expect("difference");
        let synced = rec.overlap_difference(3, [1.0; 3]).expect("difference");
        let matched = rec.overlap_difference(3, gain).expect("difference");
        assert!(
            synced < raw && matched < 0.5 * synced,
            "{raw} {synced} {matched}"
        );
        let ghost = rec.motion_mismatch(0).expect("mismatch");
        let lined_up = rec.motion_mismatch(3).expect("mismatch");
        assert!(lined_up < 0.5 * ghost, "{ghost} {lined_up}");
        assert!(
            SyncRecorder::new(rec.sampler().clone())
                .colour_gain()
                .is_none()
        );
    }
}
