//! The rig file: where the cameras are, how they look, and what they record.

use polyvision_calibration::PitchSize;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The rig file shipped with the simulator; every default comes from it.
pub const DEFAULT_RIG_TOML: &str = include_str!("../rig.default.toml");

/// Errors from reading a rig file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The rig file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {source}")]
    Parse {
        /// The rig file.
        path: String,
        /// What and where.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range.
    #[error("{path}: field `{field}`: {problem}")]
    Invalid {
        /// The rig file.
        path: String,
        /// The field, e.g. `cameras.left.hfov_deg`.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

/// The whole rig.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RigConfig {
    /// Frames per second of both cameras.
    pub fps: u32,
    /// The pitch.
    pub pitch: PitchSize,
    /// The mast the cameras sit on.
    pub mast: Mast,
    /// The two cameras.
    pub cameras: Cameras,
    /// The virtual panorama camera.
    pub panorama: PanoramaConfig,
}

/// The mast: position and the spacing of the cameras.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mast {
    /// Position along the touchline, metres (0 = halfway line).
    pub x_m: f64,
    /// Distance behind the near touchline, metres.
    pub distance_m: f64,
    /// Height of the cameras, metres.
    pub height_m: f64,
    /// Distance between the cameras' centres of projection, metres.
    pub baseline_m: f64,
}

/// Both cameras.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cameras {
    /// The camera that sees the left half (negative x).
    pub left: CameraConfig,
    /// The camera that sees the right half.
    pub right: CameraConfig,
}

/// One camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Pan, degrees; 0 looks straight across the pitch, negative towards the left goal.
    pub yaw_deg: f64,
    /// Downward tilt, degrees.
    pub tilt_deg: f64,
    /// Roll about the optical axis, degrees.
    #[serde(default)]
    pub roll_deg: f64,
    /// Horizontal field of view of the undistorted image, degrees.
    pub hfov_deg: f64,
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
    /// Principal point offset from the image centre, pixels.
    #[serde(default)]
    pub principal_offset_px: [f64; 2],
    /// Radial coefficient of r².
    #[serde(default)]
    pub k1: f64,
    /// Radial coefficient of r⁴.
    #[serde(default)]
    pub k2: f64,
    /// Radial coefficient of r⁶.
    #[serde(default)]
    pub k3: f64,
    /// Tangential coefficient p1.
    #[serde(default)]
    pub p1: f64,
    /// Tangential coefficient p2.
    #[serde(default)]
    pub p2: f64,
    /// Exposure multiplier (1 = nominal).
    #[serde(default = "one")]
    pub exposure: f64,
    /// White balance gains, R, G, B.
    #[serde(default = "ones")]
    pub white_balance: [f64; 3],
}

fn one() -> f64 {
    1.0
}
fn ones() -> [f64; 3] {
    [1.0; 3]
}

/// The virtual panorama camera.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanoramaConfig {
    /// Width of the panorama, pixels; the height follows from the pitch's outline.
    pub width: u32,
    /// Downward tilt, degrees; absent = the calibration crate's choice (standing players equally
    /// tall on both touchlines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tilt_deg: Option<f64>,
    /// Margin around the pitch that the panorama must show, metres.
    pub margin_m: f64,
}

impl Default for RigConfig {
    fn default() -> Self {
        // The embedded file is part of the build and covered by a test, so it always parses.
        match Self::from_toml(DEFAULT_RIG_TOML, "<default rig>") {
            Ok(rig) => rig,
            Err(e) => panic!("embedded default rig is invalid: {e}"),
        }
    }
}

impl RigConfig {
    /// Reads and validates a rig file. Fields left out take the default rig's values.
    pub fn load(path: &Path) -> Result<Self, RigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RigError::Io {
            path: name.clone(),
            source,
        })?;
        Self::from_toml(&text, &name)
    }

    /// Parses a rig file over the defaults and validates it; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, RigError> {
        let parse = |t: &str| {
            toml::from_str::<toml::Table>(t).map_err(|source| RigError::Parse {
                path: origin.to_string(),
                source: Box::new(source),
            })
        };
        let mut merged = parse(DEFAULT_RIG_TOML)?;
        merge(&mut merged, parse(text)?);
        let rig: RigConfig = merged.try_into().map_err(|source| RigError::Parse {
            path: origin.to_string(),
            source: Box::new(source),
        })?;
        rig.validate()
            .map_err(|(field, problem)| RigError::Invalid {
                path: origin.to_string(),
                field,
                problem,
            })?;
        Ok(rig)
    }

    /// Checks ranges; the error is `(field, problem)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, p: String| Err((f.to_string(), p));
        if !(1..=240).contains(&self.fps) {
            return bad("fps", format!("{} is outside 1–240", self.fps));
        }
        self.pitch
            .validate()
            .map_err(|p| ("pitch".to_string(), p))?;
        let m = &self.mast;
        let ranges = [
            ("mast.x_m", m.x_m, -60.0, 60.0),
            ("mast.distance_m", m.distance_m, 0.0, 200.0),
            ("mast.height_m", m.height_m, 2.0, 100.0),
            ("mast.baseline_m", m.baseline_m, 0.0, 2.0),
            (
                "panorama.tilt_deg",
                self.panorama.tilt_deg.unwrap_or(45.0),
                0.0,
                85.0,
            ),
            ("panorama.margin_m", self.panorama.margin_m, 0.0, 30.0),
        ];
        for (field, v, lo, hi) in ranges {
            if !(v.is_finite() && (lo..=hi).contains(&v)) {
                return bad(field, format!("{v} is outside {lo}–{hi}"));
            }
        }
        if !(320..=16384).contains(&self.panorama.width) {
            return bad(
                "panorama.width",
                format!("{} is outside 320–16384", self.panorama.width),
            );
        }
        for (name, c) in [("left", &self.cameras.left), ("right", &self.cameras.right)] {
            let f = |x: &str| format!("cameras.{name}.{x}");
            let checks = [
                ("yaw_deg", c.yaw_deg, -90.0, 90.0),
                ("tilt_deg", c.tilt_deg, 0.0, 85.0),
                ("roll_deg", c.roll_deg, -10.0, 10.0),
                ("hfov_deg", c.hfov_deg, 10.0, 150.0),
                ("k1", c.k1, -1.0, 1.0),
                ("k2", c.k2, -1.0, 1.0),
                ("k3", c.k3, -1.0, 1.0),
                ("p1", c.p1, -0.05, 0.05),
                ("p2", c.p2, -0.05, 0.05),
                ("exposure", c.exposure, 0.25, 4.0),
            ];
            for (field, v, lo, hi) in checks {
                if !(v.is_finite() && (lo..=hi).contains(&v)) {
                    return bad(&f(field), format!("{v} is outside {lo}–{hi}"));
                }
            }
            for (i, g) in c.white_balance.iter().enumerate() {
                if !(g.is_finite() && (0.25..=4.0).contains(g)) {
                    return bad(
                        &f(&format!("white_balance[{i}]")),
                        format!("{g} is outside 0.25–4"),
                    );
                }
            }
            if c.width < 64 || c.height < 64 || c.width > 8192 || c.height > 8192 {
                return bad(
                    &f("width"),
                    format!("{}×{} is outside 64–8192 px", c.width, c.height),
                );
            }
            // Even sizes: the encoder's 4:2:0 chroma needs them.
            if c.width % 2 == 1 || c.height % 2 == 1 {
                return bad(
                    &f("width"),
                    format!("{}×{} must be even", c.width, c.height),
                );
            }
            let lens = crate::camera::lens_of(c);
            let corner = [[0.0, 0.0], [c.width as f64, c.height as f64]]
                .map(|p| {
                    let n = lens.normalize(p);
                    n[0].hypot(n[1])
                })
                .into_iter()
                .fold(0.0, f64::max);
            if !lens.is_invertible_to(corner * 1.3) {
                return bad(&f("k1"), "distortion folds over inside the image".into());
            }
        }
        let cameras = crate::camera::Camera::rig_cameras(self).map(|c| c.calibration());
        let options = polyvision_calibration::PanoramaOptions {
            width: self.panorama.width,
            margin_m: self.panorama.margin_m,
            tilt_deg: self.panorama.tilt_deg,
            ..Default::default()
        };
        if let Err(e) =
            polyvision_calibration::panorama::plan_from_cameras(&self.pitch, &cameras, &options)
        {
            return bad("panorama", e.to_string());
        }
        Ok(())
    }

    /// The rig as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// Overlays `over` onto `base`, table by table.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rig_parses_and_validates() {
        let rig = RigConfig::default();
        assert_eq!(rig.fps, 25);
        assert_eq!(rig.cameras.left.width, 1280);
        assert!((rig.mast.baseline_m - 0.25).abs() < 1e-12);
    }

    #[test]
    fn partial_file_overrides_only_what_it_names() {
        let rig = RigConfig::from_toml(
            "fps = 30\n[cameras.right]\nwidth = 640\nheight = 360\n",
            "t.toml",
        )
        .expect("valid");
        assert_eq!(rig.fps, 30);
        assert_eq!(rig.cameras.right.width, 640);
        assert_eq!(rig.cameras.left.width, 1280);
    }

    #[test]
    fn errors_name_the_field() {
        let err = RigConfig::from_toml("[cameras.left]\nhfov_deg = 200\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("cameras.left.hfov_deg"), "{err}");
        let err = RigConfig::from_toml("[mast]\nheigth_m = 3\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("heigth_m"), "{err}");
        let err = RigConfig::from_toml("[cameras.left]\nwidth = 641\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("even"), "{err}");
    }
}
