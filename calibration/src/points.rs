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

use crate::fit::{ImageView, PointPair};
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
    pub fn pairs(&self) -> Result<Vec<PointPair>, String> {
        let pitch = self.pitch();
        pitch.validate().map_err(|e| format!("pitch_size: {e}"))?;
        self.points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let position = match (&p.landmark, p.pitch) {
                    (Some(name), None) => pitch.landmark(name).ok_or_else(|| {
                        format!(
                            "points[{i}]: unknown landmark \"{name}\" (`polyvision-calibrate landmarks` lists them)"
                        )
                    })?,
                    (None, Some(x)) => x,
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "points[{i}]: give either `landmark` or `pitch`, not both"
                        ));
                    }
                    (None, None) => {
                        return Err(format!("points[{i}]: needs `landmark` or `pitch`"));
                    }
                };
                let pixel = match &self.lens {
                    Some(lens) => lens.undistort_pixel(p.pixel).ok_or_else(|| {
                        format!("points[{i}]: pixel {:?} cannot be undistorted", p.pixel)
                    })?,
                    None => p.pixel,
                };
                let label = match &p.landmark {
                    Some(name) => format!("points[{i}] ({name})"),
                    None => format!("points[{i}]"),
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
}
