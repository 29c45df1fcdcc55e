//! The calibration file: one JSON document per rig.
//!
//! ```json
//! {
//!   "format": "polyvision-calibration",
//!   "version": 1,
//!   "pitch": { "length_m": 105.0, "width_m": 68.0 },
//!   "cameras": [
//!     { "name": "left", "image_size": [1280, 720],
//!       "lens": { "fx": 760.0, "fy": 760.0, "cx": 640.0, "cy": 360.0, "k1": -0.2 },
//!       "pitch_from_image": [[…], […], […]] }
//!   ],
//!   "panorama": { "image_size": [2560, 900], "projection": "perspective",
//!                 "pitch_from_image": [[…], […], […]] },
//!   "created": { "by": "rig-sim 0.1.0", "at": "2026-11-29T10:00:00Z" }
//! }
//! ```
//!
//! - `pitch_from_image` maps *undistorted* pixels of that view to pitch metres (see
//!   [`crate::lens`]); for the panorama, which is rendered without distortion, it maps its pixels
//!   directly.
//! - A file describes at least one view: one camera (a single-camera calibration), or both cameras
//!   and the panorama.
//! - Unknown fields are rejected, so a typo never silently drops a setting. A file with a
//!   `version` newer than [`CURRENT_VERSION`] is refused, never rewritten.
//! - [`CalibrationFile::save`] writes atomically: a temporary file in the same folder, `fsync`,
//!   rename over the target, `fsync` of the folder. A reader sees the old or the new file, never a
//!   mix.

use crate::fit::{FieldFit, PointReport};
use crate::{Homography, LensModel, PitchSize};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The value of the `format` field.
pub const FORMAT_NAME: &str = "polyvision-calibration";
/// The newest format version this build reads and the one it writes.
pub const CURRENT_VERSION: u32 = 1;

/// Errors from reading, validating or writing a calibration file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and what went wrong.
        source: serde_json::Error,
    },
    /// A field has a value that is not allowed.
    #[error("{path}: field `{field}`: {problem}")]
    Invalid {
        /// The file, or `<memory>` for a document not read from disk.
        path: PathBuf,
        /// Path of the field, e.g. `cameras[1].lens.fx`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Who wrote a calibration, and when.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Program or person that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// RFC 3339 time stamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Provenance {
    /// Written by `by` now, with an optional note.
    pub fn now(by: &str, note: Option<String>) -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Provenance {
            by: Some(by.to_string()),
            at: Some(rfc3339_utc(secs)),
            note,
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since 1970 (civil-from-days, proleptic Gregorian).
pub fn rfc3339_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (what [`rfc3339_utc`] writes) to seconds since 1970; `None`
/// for anything else, including other time zones.
pub fn parse_rfc3339_utc(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = text.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Days from the civil date (the inverse of the algorithm above).
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    // Reject dates like 31 February, which the arithmetic would roll over.
    (rfc3339_utc(secs as u64) == text).then_some(secs as u64)
}

/// Calibration of one physical camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraCalibration {
    /// `left` or `right` on a two-camera rig; any unique name otherwise.
    pub name: String,
    /// Width and height of the camera image, pixels.
    pub image_size: [u32; 2],
    /// Intrinsics and distortion.
    pub lens: LensModel,
    /// Undistorted camera pixels → pitch metres.
    pub pitch_from_image: Homography,
    /// The points the homography was fitted to, and how well it fits them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitRecord>,
}

/// The record of a fit kept in the calibration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitRecord {
    /// Every point, with its error.
    pub points: Vec<PointReport>,
    /// RMS reprojection error over the inliers, pixels.
    pub rms_px: f64,
    /// Median expected position error over the visible pitch, centimetres.
    pub expected_error_median_cm: f64,
    /// 95th percentile of the expected position error over the visible pitch, centimetres.
    pub expected_error_p95_cm: f64,
    /// Leave-one-out error over the inliers `[median, p90]`, centimetres (absent with fewer
    /// than six inliers, and in files written before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out_cm: Option<[f64; 2]>,
    /// The same as the uncertainty model expects it `[median, p90]`, centimetres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out_expected_cm: Option<[f64; 2]>,
}

impl From<&FieldFit> for FitRecord {
    fn from(fit: &FieldFit) -> Self {
        FitRecord {
            points: fit.points.clone(),
            rms_px: fit.rms_px,
            expected_error_median_cm: fit.uncertainty.median_cm,
            expected_error_p95_cm: fit.uncertainty.p95_cm,
            held_out_cm: fit
                .held_out
                .as_ref()
                .map(|h| [100.0 * h.median_m, 100.0 * h.p90_m]),
            held_out_expected_cm: fit
                .held_out
                .as_ref()
                .map(|h| [100.0 * h.expected_median_m, 100.0 * h.expected_p90_m]),
        }
    }
}

/// How the panorama image is formed from the rig's centre of projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    /// A virtual pinhole camera: the pitch plane maps to the panorama by a homography.
    Perspective,
}

/// The stitched panorama the detector runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanoramaCalibration {
    /// Width and height, pixels.
    pub image_size: [u32; 2],
    /// The projection that forms it.
    pub projection: Projection,
    /// Panorama pixels → pitch metres.
    pub pitch_from_image: Homography,
    /// Downward tilt of the virtual camera, degrees (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tilt_deg: Option<f64>,
    /// The virtual camera's focal length and principal point `[f, cx, cy]`, pixels: with the
    /// homography they give the panorama's vertical direction at every pixel (where a standing
    /// player's feet are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intrinsics: Option<[f64; 3]>,
    /// The points clicked on the panorama itself, when its homography was refined from them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitRecord>,
}

/// A rig's whole calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationFile {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Format version.
    pub version: u32,
    /// The pitch the homographies map onto.
    pub pitch: PitchSize,
    /// One entry per camera.
    pub cameras: Vec<CameraCalibration>,
    /// The panorama, when the rig stitches one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panorama: Option<PanoramaCalibration>,
    /// Who wrote it and when.
    #[serde(default)]
    pub created: Provenance,
}

impl CalibrationFile {
    /// A new file of the current version.
    pub fn new(pitch: PitchSize, cameras: Vec<CameraCalibration>) -> Self {
        CalibrationFile {
            format: FORMAT_NAME.to_string(),
            version: CURRENT_VERSION,
            pitch,
            cameras,
            panorama: None,
            created: Provenance::default(),
        }
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, FileError> {
        let text = std::fs::read_to_string(path).map_err(|source| FileError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses and validates a document; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &Path) -> Result<Self, FileError> {
        // Check the version before the shape, so that a newer file gets the right message.
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u32>,
        }
        let header: Header = serde_json::from_str(text).map_err(|source| FileError::Parse {
            path: origin.to_owned(),
            source,
        })?;
        let invalid = |field: &str, problem: String| FileError::Invalid {
            path: origin.to_owned(),
            field: field.to_string(),
            problem,
        };
        match header.format.as_deref() {
            Some(FORMAT_NAME) => {}
            Some(other) => {
                return Err(invalid(
                    "format",
                    format!("expected \"{FORMAT_NAME}\", got \"{other}\""),
                ));
            }
            None => return Err(invalid("format", "missing".into())),
        }
        match header.version {
            Some(v) if v > CURRENT_VERSION => {
                return Err(invalid(
                    "version",
                    format!(
                        "version {v} is newer than this build reads ({CURRENT_VERSION}); upgrade the software"
                    ),
                ));
            }
            Some(0) | None => return Err(invalid("version", "missing or 0".into())),
            Some(_) => {}
        }
        let file: CalibrationFile =
            serde_json::from_str(text).map_err(|source| FileError::Parse {
                path: origin.to_owned(),
                source,
            })?;
        file.validate()
            .map_err(|(field, problem)| invalid(&field, problem))?;
        Ok(file)
    }

    /// Checks every field; the error is `(field path, problem)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.pitch
            .validate()
            .map_err(|p| ("pitch".to_string(), p))?;
        if self.cameras.is_empty() {
            return Err(("cameras".into(), "at least one camera is required".into()));
        }
        for (i, cam) in self.cameras.iter().enumerate() {
            let field = |f: &str| format!("cameras[{i}].{f}");
            if cam.name.trim().is_empty() {
                return Err((field("name"), "must not be empty".into()));
            }
            if self.cameras[..i].iter().any(|c| c.name == cam.name) {
                return Err((field("name"), format!("\"{}\" is used twice", cam.name)));
            }
            check_size(cam.image_size).map_err(|p| (field("image_size"), p))?;
            let l = &cam.lens;
            for (name, v) in [("fx", l.fx), ("fy", l.fy)] {
                if !(v.is_finite() && v > 0.0) {
                    return Err((
                        field(&format!("lens.{name}")),
                        format!("must be a positive number, got {v}"),
                    ));
                }
            }
            for (name, v) in [
                ("cx", l.cx),
                ("cy", l.cy),
                ("k1", l.k1),
                ("k2", l.k2),
                ("k3", l.k3),
                ("p1", l.p1),
                ("p2", l.p2),
            ] {
                if !v.is_finite() {
                    return Err((
                        field(&format!("lens.{name}")),
                        format!("must be a finite number, got {v}"),
                    ));
                }
            }
            // The distortion must be invertible out to the image corners.
            let [w, h] = cam.image_size.map(f64::from);
            let corner = [[0.0, 0.0], [w, 0.0], [0.0, h], [w, h]]
                .iter()
                .map(|c| {
                    let n = l.normalize(*c);
                    n[0].hypot(n[1])
                })
                .fold(0.0, f64::max);
            if !l.is_invertible_to(corner * 1.05) {
                return Err((
                    field("lens"),
                    "distortion folds over inside the image (radial terms not monotonic)".into(),
                ));
            }
        }
        if let Some(p) = &self.panorama {
            check_size(p.image_size).map_err(|e| ("panorama.image_size".to_string(), e))?;
        }
        Ok(())
    }

    /// The camera with this name.
    pub fn camera(&self, name: &str) -> Option<&CameraCalibration> {
        self.cameras.iter().find(|c| c.name == name)
    }

    /// Writes the file atomically (temporary file, fsync, rename, fsync of the folder).
    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        let io = |source| FileError::Io {
            path: path.to_owned(),
            source,
        };
        self.validate()
            .map_err(|(field, problem)| FileError::Invalid {
                path: path.to_owned(),
                field,
                problem,
            })?;
        let mut text = serde_json::to_string_pretty(self).map_err(|source| FileError::Parse {
            path: path.to_owned(),
            source,
        })?;
        text.push('\n');
        write_atomic(path, text.as_bytes()).map_err(io)
    }

    /// Saves like [`CalibrationFile::save`], first copying the file it replaces (if any) into
    /// the history folder `<file>.history/`, so that it can be restored. Returns the number the
    /// replaced version got there.
    pub fn save_with_history(&self, path: &Path) -> Result<Option<u32>, FileError> {
        let io = |source| FileError::Io {
            path: path.to_owned(),
            source,
        };
        let kept = match std::fs::read(path) {
            Ok(old) => {
                let dir = history_dir(path);
                std::fs::create_dir_all(&dir).map_err(io)?;
                let number = history(path)?.last().map_or(1, |h| h.number + 1);
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                write_atomic(&dir.join(format!("{number:05}-{stamp}.json")), &old).map_err(io)?;
                Some(number)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e)),
        };
        self.save(path)?;
        Ok(kept)
    }
}

/// One earlier version of a calibration file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Its number, counting up from 1.
    pub number: u32,
    /// When it was replaced, seconds since 1970.
    pub replaced_at_unix: u64,
    /// Where it is stored.
    pub path: PathBuf,
}

/// The folder that keeps the earlier versions of `path`.
pub fn history_dir(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".history");
    path.with_file_name(name)
}

/// The earlier versions of `path`, oldest first.
pub fn history(path: &Path) -> Result<Vec<HistoryEntry>, FileError> {
    let dir = history_dir(path);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(FileError::Io { path: dir, source }),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let Some((number, stamp)) = stem.split_once('-') else {
            continue;
        };
        if let (Ok(number), Ok(replaced_at_unix)) = (number.parse(), stamp.parse()) {
            out.push(HistoryEntry {
                number,
                replaced_at_unix,
                path: entry.path(),
            });
        }
    }
    out.sort_by_key(|h| h.number);
    Ok(out)
}

/// Makes version `number` of the history the current file again; the file it replaces goes
/// into the history too, so nothing is lost.
pub fn restore(path: &Path, number: u32) -> Result<CalibrationFile, FileError> {
    let entry = history(path)?
        .into_iter()
        .find(|h| h.number == number)
        .ok_or_else(|| FileError::Invalid {
            path: history_dir(path),
            field: "version".into(),
            problem: format!("no version {number} in the history"),
        })?;
    let file = CalibrationFile::load(&entry.path)?;
    file.save_with_history(path)?;
    Ok(file)
}

/// Writes `bytes` to `path` atomically: temporary file in the same folder, fsync, rename, fsync
/// of the folder.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        // Best effort: the temporary file is garbage either way.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn check_size(size: [u32; 2]) -> Result<(), String> {
    if size[0] == 0 || size[1] == 0 || size[0] > 32768 || size[1] > 32768 {
        return Err(format!(
            "{}×{} is not a usable image size",
            size[0], size[1]
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps_round_trip_and_bad_ones_are_refused() {
        for secs in [
            0u64,
            951_782_400,
            1_700_000_000,
            1_796_083_200,
            4_102_444_799,
        ] {
            assert_eq!(parse_rfc3339_utc(&rfc3339_utc(secs)), Some(secs));
        }
        assert_eq!(
            parse_rfc3339_utc("2026-12-06T14:00:00Z"),
            Some(1_796_565_600)
        );
        for bad in [
            "2026-02-31T10:00:00Z",
            "2026-12-06T14:00:00+01:00",
            "2026-12-06 14:00:00Z",
            "2026-13-01T00:00:00Z",
            "tomorrow",
        ] {
            assert_eq!(parse_rfc3339_utc(bad), None, "{bad}");
        }
    }

    fn sample() -> CalibrationFile {
        let h = Homography::from_rows([[0.1, 0.0, -64.0], [0.0, -0.1, 36.0], [0.0, 0.0, 1.0]])
            .expect("valid");
        CalibrationFile::new(
            PitchSize::default(),
            vec![CameraCalibration {
                name: "left".into(),
                image_size: [1280, 720],
                lens: LensModel {
                    k1: -0.1,
                    ..LensModel::pinhole(800.0, 800.0, 640.0, 360.0)
                },
                pitch_from_image: h,
                fit: None,
            }],
        )
    }

    #[test]
    fn save_then_load_is_lossless() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cal.json");
        let cal = sample();
        cal.save(&path).expect("save");
        assert_eq!(CalibrationFile::load(&path).expect("load"), cal);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 1);
    }

    #[test]
    fn time_stamps_are_rfc3339() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_796_000_000), "2026-11-30T00:53:20Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn history_keeps_every_replaced_version_and_restores_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cal.json");
        let mut cal = sample();
        assert_eq!(cal.save_with_history(&path).expect("first"), None);
        for note in ["second", "third"] {
            cal.created.note = Some(note.into());
            cal.save_with_history(&path).expect("save");
        }
        let kept = history(&path).expect("history");
        assert_eq!(kept.iter().map(|h| h.number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(
            CalibrationFile::load(&kept[1].path)
                .expect("load")
                .created
                .note
                .as_deref(),
            Some("second")
        );
        let back = restore(&path, 1).expect("restore");
        assert_eq!(back.created.note, None);
        assert_eq!(CalibrationFile::load(&path).expect("load"), back);
        // The version that was current before the restore is kept as number 3.
        let kept = history(&path).expect("history");
        assert_eq!(
            CalibrationFile::load(&kept[2].path)
                .expect("load")
                .created
                .note
                .as_deref(),
            Some("third")
        );
        let err = restore(&path, 9).unwrap_err();
        assert!(err.to_string().contains("no version 9"), "{err}");
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = serde_json::to_value(sample()).expect("json");
        v["cameras"][0]["lens"]["fx"] = serde_json::json!(-5.0);
        let err = CalibrationFile::from_json(&v.to_string(), Path::new("x.json")).unwrap_err();
        assert!(err.to_string().contains("cameras[0].lens.fx"), "{err}");

        let mut v = serde_json::to_value(sample()).expect("json");
        v["cameras"][0]["lens"]["fxx"] = serde_json::json!(5.0);
        let err = CalibrationFile::from_json(&v.to_string(), Path::new("x.json")).unwrap_err();
        assert!(err.to_string().contains("fxx"), "{err}");

        let mut v = serde_json::to_value(sample()).expect("json");
        v["cameras"][0]["pitch_from_image"] = serde_json::json!([[1, 2, 3], [2, 4, 6], [0, 0, 1]]);
        let err = CalibrationFile::from_json(&v.to_string(), Path::new("x.json")).unwrap_err();
        assert!(err.to_string().contains("singular"), "{err}");
    }

    #[test]
    fn a_newer_version_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cal.json");
        let mut v = serde_json::to_value(sample()).expect("json");
        v["version"] = serde_json::json!(CURRENT_VERSION + 1);
        let text = v.to_string();
        std::fs::write(&path, &text).expect("write");
        let err = CalibrationFile::load(&path).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
    }
}
