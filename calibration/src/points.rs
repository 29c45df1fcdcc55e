//! The clicked-points document that `polyvision-calibrate solve` and the technician's page read.
//!
//! ```json
//! {
//!   "image_size": [1280, 720],
//!   "points": [
//!     {"pixel": [612.5, 301.0], "landmark": "centre_spot"},
//!     {"pixel": [1190.0, 655.5], "pitch": [30.0, -34.0]}
//!   ]
//! }
//! ```
//!
//! Each point gives either a `landmark` name (see [`PitchSize::landmarks`]) or a `pitch` position
//! in metres. Optional fields: `pitch_size` (default 105 × 68 m), `lens` (pixels are then sensor
//! pixels and are undistorted before the fit; without it the image is taken as distortion-free)
//! and `camera` (the name the view gets in a calibration file, default `view`).
//!
//! [`PointsFile::solve`] is the fit both the command line and the technician's page run. Real
//! clicks have slips, and one bad click must not stop the fit: a click the lens model cannot
//! undistort (beyond the radius where the polynomial folds back) and all but the best of the
//! clicks that give the same pitch position are left out, each with its reason, and a click
//! that lands a metre or more from the position it names is pointed out with the landmark it
//! most likely shows.

use crate::fit::{FieldFit, FitError, FitOptions, ImageView, PointPair, fit_field_homography};
use crate::lens::LensModel;
use crate::pitch::PitchSize;
use serde::{Deserialize, Serialize};

/// One click.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickedPoint {
    /// Pixel, top-left image corner at (0, 0).
    pub pixel: [f64; 2],
    /// A landmark name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmark: Option<String>,
    /// A pitch position, metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitch: Option<[f64; 2]>,
}

/// A set of clicks on one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointsFile {
    /// Width and height of the image, pixels.
    pub image_size: [u32; 2],
    /// The clicks.
    pub points: Vec<ClickedPoint>,
    /// The pitch; default 105 × 68 m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitch_size: Option<PitchSize>,
    /// Lens of the camera that took the image; absent = no distortion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lens: Option<LensModel>,
    /// Name of the view in a calibration file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
}

impl PointsFile {
    /// The image the points were clicked on.
    pub fn view(&self) -> ImageView {
        ImageView {
            size: self.image_size,
            lens: self.lens,
        }
    }

    /// The pitch the points refer to.
    pub fn pitch(&self) -> PitchSize {
        self.pitch_size.unwrap_or_default()
    }

    /// Resolves landmark names and undistorts pixels; the error names the point (`points[i]`).
    /// Strict: any pixel the lens cannot undistort is an error ([`PointsFile::solve`] leaves
    /// such points out instead).
    pub fn pairs(&self) -> Result<Vec<PointPair>, String> {
        let positions = self.positions()?;
        let labels = self.labels();
        self.points
            .iter()
            .zip(positions.into_iter().zip(labels))
            .enumerate()
            .map(|(i, (p, (position, label)))| {
                let pixel = match &self.lens {
                    Some(lens) => lens.undistort_pixel(p.pixel).ok_or_else(|| {
                        format!("points[{i}]: pixel {:?} cannot be undistorted", p.pixel)
                    })?,
                    None => p.pixel,
                };
                Ok(PointPair {
                    pixel,
                    pitch: position,
                    label,
                })
            })
            .collect()
    }
}

/// Pitch positions closer than this are the same point, metres.
const SAME_POSITION_M: f64 = 0.01;
/// A click this far from the pitch position it names is pointed out, metres.
const MISPLACED_M: f64 = 1.0;

impl PointsFile {
    /// Fits the view's field homography from these clicks, leaving out, with the reason in
    /// their report, the clicks that cannot be used (see the module documentation). Every
    /// click gets a report, in input order. Errors only for what the user must fix: an unknown
    /// landmark, a point without a position, or too few usable points.
    pub fn solve(&self, options: &FitOptions) -> Result<FieldFit, String> {
        let pitch = self.pitch();
        let positions = self.positions()?;
        let labels = self.labels();
        let mut left_out: Vec<Option<String>> = vec![None; self.points.len()];
        let undistorted: Vec<Option<[f64; 2]>> = self
            .points
            .iter()
            .map(|p| match &self.lens {
                Some(lens) => lens.undistort_pixel(p.pixel),
                None => Some(p.pixel),
            })
            .collect();
        for (i, u) in undistorted.iter().enumerate() {
            if u.is_none() {
                left_out[i] = Some(
                    "the lens model cannot undistort this pixel: it lies beyond the radius where \
                     the lens polynomial folds back (refit the lens out to the image corners to \
                     use it)"
                        .into(),
                );
            }
        }
        // Clicks that give one pitch position: none of them joins the first fit, then the one
        // the fit agrees with most comes back and the others stay out.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for i in (0..self.points.len()).filter(|&i| left_out[i].is_none()) {
            let same = |g: &Vec<usize>| {
                let [a, b] = [positions[g[0]], positions[i]];
                (a[0] - b[0]).hypot(a[1] - b[1]) < SAME_POSITION_M
            };
            match groups.iter_mut().find(|g| same(g)) {
                Some(g) => g.push(i),
                None => groups.push(vec![i]),
            }
        }
        let pair = |i: usize| {
            undistorted[i].map(|pixel| PointPair {
                pixel,
                pitch: positions[i],
                label: labels[i].clone(),
            })
        };
        let fit_of = |chosen: &[usize]| -> Result<FieldFit, FitError> {
            let pairs: Vec<PointPair> = chosen.iter().filter_map(|&i| pair(i)).collect();
            fit_field_homography(&pairs, &self.view(), &pitch, options)
        };
        let single: Vec<usize> = groups
            .iter()
            .filter(|g| g.len() == 1)
            .map(|g| g[0])
            .collect();
        let repeated: Vec<&Vec<usize>> = groups.iter().filter(|g| g.len() > 1).collect();
        let mut chosen = single.clone();
        if !repeated.is_empty() {
            // Too few distinct points without the repeats: let each repeat's first click in.
            let first = if single.len() >= 4 {
                fit_of(&single)
            } else {
                let mut with: Vec<usize> = single.clone();
                with.extend(repeated.iter().map(|g| g[0]));
                with.sort_unstable();
                fit_of(&with)
            }
            .map_err(|e| e.to_string())?;
            let image_from_pitch = first.pitch_from_image.inverse();
            let miss_px = |i: usize| {
                image_from_pitch
                    .apply(positions[i])
                    .zip(undistorted[i])
                    .map_or(f64::INFINITY, |(q, u)| (q[0] - u[0]).hypot(q[1] - u[1]))
            };
            for g in repeated {
                let mut ranked: Vec<(usize, f64)> = g.iter().map(|&i| (i, miss_px(i))).collect();
                ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
                let (best, best_px) = ranked[0];
                let keep = best_px < options.ransac_threshold_px;
                if keep {
                    chosen.push(best);
                }
                for &(i, px) in &ranked[usize::from(keep)..] {
                    let others: Vec<&str> = g
                        .iter()
                        .filter(|&&k| k != i)
                        .map(|&k| labels[k].as_str())
                        .collect();
                    left_out[i] = Some(format!(
                        "gives the same pitch position ({:.2}, {:.2}) m as {}; the fit puts that \
                         position {px:.1} px from this click{}",
                        positions[i][0],
                        positions[i][1],
                        others.join(", "),
                        if keep {
                            format!(", {best_px:.1} px from {}'s", labels[best])
                        } else {
                            format!(
                                " and at least {best_px:.1} px from each of the others; none kept"
                            )
                        }
                    ));
                }
            }
            chosen.sort_unstable();
        }
        let fit = fit_of(&chosen).map_err(|e| e.to_string())?;
        let mut used = fit.points.clone().into_iter();
        let mut reports = Vec::with_capacity(self.points.len());
        for (i, clicked) in self.points.iter().enumerate() {
            let mut report = if chosen.binary_search(&i).is_ok() {
                match used.next() {
                    Some(r) => r,
                    None => {
                        return Err("internal: fit reports fewer points than it was given".into());
                    }
                }
            } else {
                self.left_out_report(i, &labels[i], positions[i], &fit.pitch_from_image)
            };
            if self.lens.is_some() {
                report.pixel_clicked = Some(clicked.pixel);
            }
            report.left_out = left_out[i].take();
            report.note = self.misplaced(&pitch, &report, undistorted[i], &fit);
            reports.push(report);
        }
        Ok(FieldFit {
            points: reports,
            ..fit
        })
    }

    /// How reports and errors name each point: `points[i]`, with the landmark's name if any.
    fn labels(&self) -> Vec<String> {
        self.points
            .iter()
            .enumerate()
            .map(|(i, p)| match &p.landmark {
                Some(name) => format!("points[{i}] ({name})"),
                None => format!("points[{i}]"),
            })
            .collect()
    }

    /// Each point's pitch position, resolving landmark names.
    fn positions(&self) -> Result<Vec<[f64; 2]>, String> {
        let pitch = self.pitch();
        pitch.validate().map_err(|e| format!("pitch_size: {e}"))?;
        self.points
            .iter()
            .enumerate()
            .map(|(i, p)| match (&p.landmark, p.pitch) {
                (Some(name), None) => pitch.landmark(name).ok_or_else(|| {
                    format!(
                        "points[{i}]: unknown landmark \"{name}\" (`polyvision-calibrate landmarks` lists them)"
                    )
                }),
                (None, Some(x)) if x[0].is_finite() && x[1].is_finite() => Ok(x),
                (None, Some(_)) => Err(format!("points[{i}]: pitch position is not finite")),
                (Some(_), Some(_)) => Err(format!(
                    "points[{i}]: give either `landmark` or `pitch`, not both"
                )),
                (None, None) => Err(format!("points[{i}]: needs `landmark` or `pitch`")),
            })
            .collect()
    }

    /// The report of a point the fit did not see: its miss measured on the sensor image, where
    /// every click can be compared (a pixel the lens cannot undistort still has a sensor
    /// position), and in metres through the map's local scale.
    fn left_out_report(
        &self,
        i: usize,
        label: &str,
        position: [f64; 2],
        pitch_from_image: &crate::Homography,
    ) -> crate::fit::PointReport {
        let clicked = self.points[i].pixel;
        let projected = pitch_from_image.inverse().apply(position);
        let sensor = projected.map(|u| self.lens.map_or(u, |l| l.distort_pixel(u)));
        let error_px = sensor.map_or(f64::INFINITY, |s| {
            (s[0] - clicked[0]).hypot(s[1] - clicked[1])
        });
        let metres_per_px = projected.and_then(|u| {
            let a = pitch_from_image.apply(u)?;
            let b = pitch_from_image.apply([u[0] + 1.0, u[1]])?;
            let c = pitch_from_image.apply([u[0], u[1] + 1.0])?;
            let area = ((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])).abs();
            Some(area.sqrt())
        });
        crate::fit::PointReport {
            label: label.to_string(),
            pixel: clicked,
            pixel_clicked: None,
            pitch: position,
            inlier: false,
            error_px,
            error_cm: metres_per_px.map_or(f64::INFINITY, |m| 100.0 * m * error_px),
            left_out: None,
            note: None,
        }
    }

    /// A warning for a click that lands [`MISPLACED_M`] or more from its pitch position, naming
    /// the landmark nearest to where it does land when that one is much closer.
    fn misplaced(
        &self,
        pitch: &PitchSize,
        report: &crate::fit::PointReport,
        undistorted: Option<[f64; 2]>,
        fit: &FieldFit,
    ) -> Option<String> {
        let lands = fit.pitch_from_image.apply(undistorted?)?;
        let off = (lands[0] - report.pitch[0]).hypot(lands[1] - report.pitch[1]);
        if off < MISPLACED_M {
            return None;
        }
        let nearest = pitch
            .landmarks()
            .into_iter()
            .map(|l| {
                let d = (l.position[0] - lands[0]).hypot(l.position[1] - lands[1]);
                (l, d)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let mut text = format!(
            "lands at ({:.2}, {:.2}) m, {off:.2} m from the position it names",
            lands[0], lands[1]
        );
        if let Some((l, d)) = nearest
            && d < off / 2.0
            && (l.position[0] - report.pitch[0]).hypot(l.position[1] - report.pitch[1])
                >= SAME_POSITION_M
        {
            text.push_str(&format!(
                "; it looks like `{}` ({}, {d:.2} m away)",
                l.name, l.description
            ));
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landmarks_and_positions_resolve_and_bad_points_are_named() {
        let file: PointsFile = serde_json::from_str(
            r#"{"image_size":[1280,720],"points":[
                {"pixel":[10,20],"landmark":"centre_spot"},
                {"pixel":[30,40],"pitch":[1.5,-2]}]}"#,
        )
        .expect("parses");
        let pairs = file.pairs().expect("resolves");
        assert_eq!(pairs[0].pitch, [0.0, 0.0]);
        assert_eq!(pairs[0].label, "points[0] (centre_spot)");
        assert_eq!(pairs[1].pitch, [1.5, -2.0]);
        let bad: PointsFile = serde_json::from_str(
            r#"{"image_size":[1280,720],"points":[{"pixel":[1,2]},{"pixel":[1,2],"landmark":"nope"}]}"#,
        )
        .expect("parses");
        assert_eq!(
            bad.pairs().unwrap_err(),
            "points[0]: needs `landmark` or `pitch`"
        );
        let bad: PointsFile = serde_json::from_str(
            r#"{"image_size":[1280,720],"points":[{"pixel":[1,2],"landmark":"nope"}]}"#,
        )
        .expect("parses");
        assert!(
            bad.pairs()
                .unwrap_err()
                .contains("points[0]: unknown landmark \"nope\"")
        );
    }

    /// Sensor pixels of pitch points seen through `lens` by a tilted camera.
    fn sensor_pixel(x: [f64; 2], lens: &LensModel) -> [f64; 2] {
        let g = crate::Homography::from_rows([
            [9.0, 0.0, 640.0],
            [0.0, -4.5, 330.0],
            [0.0, 0.002, 1.0],
        ])
        .expect("valid");
        lens.distort_pixel(g.apply(x).expect("in front"))
    }

    fn rig_points(lens: &LensModel) -> PointsFile {
        let pitch = PitchSize::default();
        let names = [
            "centre_spot",
            "halfway_near",
            "halfway_far",
            "penalty_spot_left",
            "penalty_spot_right",
            "centre_circle_left",
            "centre_circle_right",
            "penalty_area_left_near",
            "penalty_area_right_far",
            "goal_area_left_near",
        ];
        PointsFile {
            image_size: [1280, 720],
            points: names
                .iter()
                .map(|n| ClickedPoint {
                    pixel: sensor_pixel(pitch.landmark(n).expect("landmark"), lens),
                    landmark: Some((*n).to_string()),
                    pitch: None,
                })
                .collect(),
            pitch_size: None,
            lens: Some(*lens),
            camera: None,
        }
    }

    #[test]
    fn solve_leaves_out_what_it_cannot_use_and_names_misplaced_clicks() {
        // Strong barrel: the radial map folds back at a normalised radius of 0.82.
        let lens = LensModel {
            k1: -0.5,
            ..LensModel::pinhole(1000.0, 1000.0, 640.0, 360.0)
        };
        let pitch = PitchSize::default();
        let mut file = rig_points(&lens);
        let good = file.points.len();
        // Beyond the fold: no undistorted position exists.
        file.points.push(ClickedPoint {
            pixel: [1270.0, 700.0],
            landmark: Some("corner_right_near".into()),
            pitch: None,
        });
        // The centre spot clicked a second time, on the wrong place.
        file.points.push(ClickedPoint {
            pixel: sensor_pixel([10.0, 5.0], &lens),
            landmark: None,
            pitch: Some([0.0, 0.0]),
        });
        // Named the far goal-area corner, clicked on the left penalty area's near inner corner.
        let corner = pitch.landmark("penalty_area_left_near").expect("landmark");
        file.points.push(ClickedPoint {
            pixel: sensor_pixel([corner[0] + 0.4, corner[1] + 0.3], &lens),
            landmark: Some("goal_area_left_far".into()),
            pitch: None,
        });
        assert!(file.pairs().unwrap_err().contains("cannot be undistorted"));
        let fit = file.solve(&FitOptions::default()).expect("fit");
        assert_eq!(fit.points.len(), good + 3, "one report per click, in order");
        assert_eq!(fit.inliers, good);
        let folded = &fit.points[good];
        assert!(!folded.inlier);
        assert!(
            folded
                .left_out
                .as_deref()
                .is_some_and(|w| w.contains("cannot undistort")),
            "{folded:?}"
        );
        let repeat = &fit.points[good + 1];
        assert!(
            repeat.left_out.as_deref().is_some_and(
                |w| w.contains("same pitch position") && w.contains("points[0] (centre_spot)")
            ),
            "{repeat:?}"
        );
        assert!(fit.points[0].inlier && fit.points[0].left_out.is_none());
        let misnamed = &fit.points[good + 2];
        assert!(!misnamed.inlier && misnamed.left_out.is_none());
        assert!(
            misnamed
                .note
                .as_deref()
                .is_some_and(|n| n.contains("`penalty_area_left_near`")),
            "{misnamed:?}"
        );
        for p in &fit.points[..good] {
            assert!(p.note.is_none() && p.error_px < 1e-6, "{p:?}");
        }
        assert!(fit.held_out.is_some());
    }
}
