//! The stitching table: for every panorama pixel, where to sample camera L and camera R, and
//! how to blend them.
//!
//! # Geometry
//!
//! Panorama pixel → pitch (the panorama's field homography) → each camera's undistorted pixel
//! (the inverse of its field homography) → its sensor pixel (the lens model). The map between
//! the panorama and a camera is therefore the homography *induced by the pitch plane*: pitch
//! lines land exactly where they belong in both cameras, so they stay continuous across the
//! seam; things above the grass (players, the ball) shift by the parallax of the 20–30 cm
//! baseline, which the blend band hides.
//!
//! The seam runs down the middle of the overlap of the two cameras, row by row. Across a band of
//! `band_px` pixels around it (or the whole overlap, if narrower) the weight of L falls from 1 to
//! 0 along a smoothstep; elsewhere each pixel comes from the one camera that sees it.
//!
//! # Pixel convention
//!
//! Calibration pixel coordinates put the image's top-left *corner* at (0, 0): the centre of pixel
//! (i, j) is (i + 0.5, j + 0.5). The table stores source positions with pixel *centres* at
//! integers, which is what a bilinear sampler wants: the stored x is the calibration x − 0.5.
//! A sampler reads pixels ⌊x⌋ and ⌊x⌋ + 1 (clamped to the last column) with weights from the
//! fraction, and the same in y.
//!
//! # File format (version 1), little-endian
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `PVSTITCH` |
//! | 8 | 4 | `u32` format version, 1 |
//! | 12 | 4 | `u32` panorama width W |
//! | 16 | 4 | `u32` panorama height H |
//! | 20 | 4 | `u32` camera L width |
//! | 24 | 4 | `u32` camera L height |
//! | 28 | 4 | `u32` camera R width |
//! | 32 | 4 | `u32` camera R height |
//! | 36 | 4 | `u32` fractional bits F of source coordinates (4) |
//! | 40 | 4 | `u32` blend band width the table was built with, pixels |
//! | 44 | 4 | `u32` reserved, 0 |
//! | 48 | 4·W·H | plane L: one `u32` per panorama pixel, row-major |
//! | 48 + 4·W·H | 4·W·H | plane R: the same for camera R |
//! | 48 + 8·W·H | W·H | plane A: one `u8` per pixel, the weight of L in 1/255 |
//!
//! A plane entry packs the source position as `x_fixed | (y_fixed << 16)` with
//! `x_fixed = round(x · 2^F)` (unsigned 12.4 fixed point: sources up to 4095 px, positions to
//! 1/16 px); `0xFFFF_FFFF` means that camera does not see the pixel. The weight of R is
//! `255 − A`. A pixel that neither camera sees has both entries `0xFFFF_FFFF` and is black.
//! Planes rather than interleaved records, so that neighbouring GPU threads read neighbouring
//! words (coalesced loads); 9 bytes per panorama pixel in all. The stitch that applies a table
//! (CUDA kernel and CPU reference) is `polyvision-cuda`'s.

use crate::file::{CalibrationFile, CameraCalibration};
use crate::homography::Homography;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// First eight bytes of a table file.
pub const MAGIC: &[u8; 8] = b"PVSTITCH";
/// Format version written by this crate.
pub const VERSION: u32 = 1;
/// Fractional bits of the fixed-point source coordinates.
pub const FRACTION_BITS: u32 = 4;
/// A plane entry for "this camera does not see the pixel".
pub const NOT_SEEN: u32 = u32::MAX;
/// Default width of the blend band, pixels.
pub const DEFAULT_BAND_PX: u32 = 32;
const HEADER_LEN: usize = 48;
/// Largest source coordinate the fixed-point format holds.
const MAX_SOURCE_PX: u32 = (u16::MAX as u32) >> FRACTION_BITS;

/// Errors building, reading or writing a table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LutError {
    /// The calibration cannot produce a table.
    #[error("calibration: {0}")]
    Calibration(String),
    /// A table file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A table file is malformed.
    #[error("{path}: {problem}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// A stitching table in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StitchTable {
    /// Panorama width and height.
    pub panorama_size: [u32; 2],
    /// Camera L width and height.
    pub left_size: [u32; 2],
    /// Camera R width and height.
    pub right_size: [u32; 2],
    /// Blend band the table was built with, pixels.
    pub band_px: u32,
    /// Plane L (see the module doc).
    pub left: Vec<u32>,
    /// Plane R.
    pub right: Vec<u32>,
    /// Plane A: weight of L in 1/255.
    pub weight_left: Vec<u8>,
}

/// Packs a source position (pixel centres at integers) into a plane entry.
pub fn pack(x: f64, y: f64) -> u32 {
    let scale = (1u32 << FRACTION_BITS) as f64;
    let xf = (x * scale).round().clamp(0.0, u16::MAX as f64 - 1.0) as u32;
    let yf = (y * scale).round().clamp(0.0, u16::MAX as f64 - 1.0) as u32;
    xf | (yf << 16)
}

/// Unpacks a plane entry; `None` for [`NOT_SEEN`].
pub fn unpack(entry: u32) -> Option<[f32; 2]> {
    (entry != NOT_SEEN).then(|| {
        let scale = (1u32 << FRACTION_BITS) as f32;
        [
            (entry & 0xFFFF) as f32 / scale,
            (entry >> 16) as f32 / scale,
        ]
    })
}

/// Where one camera sees a panorama pixel: maps panorama pixel centres to its sensor pixels.
struct SourceMap<'a> {
    camera: &'a CameraCalibration,
    camera_from_panorama: [[f64; 3]; 3],
    /// Sign of the homogeneous coordinate for pixels in front of the camera.
    front_sign: f64,
    /// Largest normalised radius of the undistorted image; beyond it the polynomial lens model
    /// may fold back into the image.
    max_radius: f64,
}

impl<'a> SourceMap<'a> {
    fn new(
        camera: &'a CameraCalibration,
        pitch_from_panorama: &Homography,
    ) -> Result<Self, LutError> {
        let [w, h] = camera.image_size;
        if w > MAX_SOURCE_PX || h > MAX_SOURCE_PX {
            return Err(LutError::Calibration(format!(
                "camera `{}` is {w}×{h} px; the table holds sources up to {MAX_SOURCE_PX} px",
                camera.name
            )));
        }
        let m = camera
            .pitch_from_image
            .inverse()
            .compose(pitch_from_panorama)
            .rows();
        let lens = &camera.lens;
        let mut max_radius: f64 = 0.0;
        for corner in [
            [0.0, 0.0],
            [w as f64, 0.0],
            [0.0, h as f64],
            [w as f64, h as f64],
        ] {
            let n = lens
                .undistort_normalized(lens.normalize(corner))
                .ok_or_else(|| {
                    LutError::Calibration(format!(
                        "camera `{}`: the lens model cannot undistort the image corner {corner:?}",
                        camera.name
                    ))
                })?;
            max_radius = max_radius.max(n[0].hypot(n[1]));
        }
        // The centre spot's side of the horizon is "in front"; the pitch is calibrated there.
        let pano_centre = pitch_from_panorama
            .inverse()
            .apply([0.0, 0.0])
            .ok_or_else(|| {
                LutError::Calibration("the panorama does not show the centre spot".into())
            })?;
        let w_centre = (0..3)
            .map(|k| m[2][k] * [pano_centre[0], pano_centre[1], 1.0][k])
            .sum::<f64>();
        Ok(SourceMap {
            camera,
            camera_from_panorama: m,
            front_sign: w_centre.signum(),
            max_radius: max_radius * 1.02,
        })
    }

    /// Sensor position (calibration convention) of a panorama point, if the camera sees it.
    fn source(&self, p: [f64; 2]) -> Option<[f64; 2]> {
        let m = &self.camera_from_panorama;
        let x = m[0][0] * p[0] + m[0][1] * p[1] + m[0][2];
        let y = m[1][0] * p[0] + m[1][1] * p[1] + m[1][2];
        let w = m[2][0] * p[0] + m[2][1] * p[1] + m[2][2];
        if w * self.front_sign <= 1e-12 {
            return None;
        }
        let lens = &self.camera.lens;
        let n = lens.normalize([x / w, y / w]);
        if n[0].hypot(n[1]) > self.max_radius {
            return None;
        }
        let d = lens.denormalize(lens.distort_normalized(n));
        let [cw, ch] = self.camera.image_size;
        // Bilinear sampling needs the pixel centres on both sides: stay within the outer centres.
        let inside =
            d[0] >= 0.5 && d[1] >= 0.5 && d[0] <= cw as f64 - 0.5 && d[1] <= ch as f64 - 0.5;
        inside.then_some(d)
    }
}

fn smoothstep(t: f64) -> f64 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

impl StitchTable {
    /// Builds the table of a calibration with cameras `left` and `right` and a panorama section.
    pub fn build(calibration: &CalibrationFile, band_px: u32) -> Result<Self, LutError> {
        let camera = |name: &str| {
            calibration.camera(name).ok_or_else(|| {
                LutError::Calibration(format!(
                    "no camera named `{name}` (a stitched rig has `left` and `right`)"
                ))
            })
        };
        let (left, right) = (camera("left")?, camera("right")?);
        let panorama = calibration.panorama.as_ref().ok_or_else(|| {
            LutError::Calibration(
                "no `panorama` section; run `polyvision-calibrate panorama` first".into(),
            )
        })?;
        let [width, height] = panorama.image_size;
        let maps = [
            SourceMap::new(left, &panorama.pitch_from_image)?,
            SourceMap::new(right, &panorama.pitch_from_image)?,
        ];
        let n = width as usize * height as usize;
        let mut table = StitchTable {
            panorama_size: [width, height],
            left_size: left.image_size,
            right_size: right.image_size,
            band_px,
            left: vec![NOT_SEEN; n],
            right: vec![NOT_SEEN; n],
            weight_left: vec![0; n],
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let rows_per = (height as usize).div_ceil(threads).max(1);
        let row_len = width as usize;
        std::thread::scope(|s| {
            let chunks = table
                .left
                .chunks_mut(rows_per * row_len)
                .zip(table.right.chunks_mut(rows_per * row_len))
                .zip(table.weight_left.chunks_mut(rows_per * row_len))
                .enumerate();
            for (chunk, ((l, r), a)) in chunks {
                let maps = &maps;
                s.spawn(move || {
                    for (k, ((lrow, rrow), arow)) in l
                        .chunks_mut(row_len)
                        .zip(r.chunks_mut(row_len))
                        .zip(a.chunks_mut(row_len))
                        .enumerate()
                    {
                        let v = (chunk * rows_per + k) as f64 + 0.5;
                        fill_row(maps, v, band_px, lrow, rrow, arow);
                    }
                });
            }
        });
        Ok(table)
    }

    /// Writes the table in the documented format.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        for v in [
            VERSION,
            self.panorama_size[0],
            self.panorama_size[1],
            self.left_size[0],
            self.left_size[1],
            self.right_size[0],
            self.right_size[1],
            FRACTION_BITS,
            self.band_px,
            0,
        ] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        out.write_all(&header)?;
        let mut buf = Vec::with_capacity(self.left.len() * 4);
        for plane in [&self.left, &self.right] {
            buf.clear();
            plane
                .iter()
                .for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
            out.write_all(&buf)?;
        }
        out.write_all(&self.weight_left)
    }

    /// Writes the table to `path` atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), LutError> {
        let io = |source| LutError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile_in(dir).map_err(io)?;
        {
            let mut w = std::io::BufWriter::new(&mut tmp.1);
            self.write_to(&mut w).map_err(io)?;
            w.flush().map_err(io)?;
        }
        tmp.1.sync_all().map_err(io)?;
        std::fs::rename(&tmp.0, path).map_err(io)?;
        Ok(())
    }

    /// Reads a table, checking every header field.
    pub fn load(path: &Path) -> Result<Self, LutError> {
        let file = std::fs::File::open(path).map_err(|source| LutError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::read_from(&mut std::io::BufReader::new(file), path)
    }

    /// Reads a table from a stream; `origin` names it in errors.
    pub fn read_from(input: &mut impl Read, origin: &Path) -> Result<Self, LutError> {
        let bad = |problem: String| LutError::Format {
            path: origin.to_owned(),
            problem,
        };
        let mut header = [0u8; HEADER_LEN];
        input
            .read_exact(&mut header)
            .map_err(|_| bad(format!("shorter than the {HEADER_LEN}-byte header")))?;
        if &header[..8] != MAGIC {
            return Err(bad("not a stitching table (magic is not PVSTITCH)".into()));
        }
        let word = |i: usize| {
            let at = 8 + 4 * i;
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        if word(0) != VERSION {
            return Err(bad(format!(
                "format version {} is not supported (this build reads {VERSION})",
                word(0)
            )));
        }
        if word(7) != FRACTION_BITS {
            return Err(bad(format!(
                "{} fractional bits, expected {FRACTION_BITS}",
                word(7)
            )));
        }
        let (w, h) = (word(1), word(2));
        if w == 0 || h == 0 || w > 16384 || h > 16384 {
            return Err(bad(format!("panorama size {w}×{h} is outside 1–16384")));
        }
        let n = w as usize * h as usize;
        let read_plane = |input: &mut dyn Read, what: &str| -> Result<Vec<u32>, LutError> {
            let mut bytes = vec![0u8; n * 4];
            input
                .read_exact(&mut bytes)
                .map_err(|_| bad(format!("truncated in plane {what}")))?;
            Ok(bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let left = read_plane(input, "L")?;
        let right = read_plane(input, "R")?;
        let mut weight_left = vec![0u8; n];
        input
            .read_exact(&mut weight_left)
            .map_err(|_| bad("truncated in plane A".into()))?;
        let mut rest = [0u8; 1];
        if input.read(&mut rest).map_err(|source| LutError::Io {
            path: origin.to_owned(),
            source,
        })? != 0
        {
            return Err(bad("trailing bytes after plane A".into()));
        }
        Ok(StitchTable {
            panorama_size: [w, h],
            left_size: [word(3), word(4)],
            right_size: [word(5), word(6)],
            band_px: word(8),
            left,
            right,
            weight_left,
        })
    }

    /// Number of panorama pixels that no camera sees.
    pub fn uncovered(&self) -> usize {
        self.left
            .iter()
            .zip(&self.right)
            .filter(|(l, r)| **l == NOT_SEEN && **r == NOT_SEEN)
            .count()
    }

    /// Number of panorama pixels blended from both cameras.
    pub fn blended(&self) -> usize {
        self.weight_left
            .iter()
            .zip(self.left.iter().zip(&self.right))
            .filter(|(a, (l, r))| **a != 0 && **a != 255 && **l != NOT_SEEN && **r != NOT_SEEN)
            .count()
    }
}

fn fill_row(
    maps: &[SourceMap<'_>; 2],
    v: f64,
    band_px: u32,
    left: &mut [u32],
    right: &mut [u32],
    weight_left: &mut [u8],
) {
    let mut sources: [Vec<Option<[f64; 2]>>; 2] = [Vec::new(), Vec::new()];
    for (map, out) in maps.iter().zip(sources.iter_mut()) {
        *out = (0..left.len())
            .map(|i| map.source([i as f64 + 0.5, v]))
            .collect();
    }
    // The overlap of this row: from R's first covered column to L's last one.
    let last_left = sources[0].iter().rposition(Option::is_some);
    let first_right = sources[1].iter().position(Option::is_some);
    let (seam, half_band) = match (last_left, first_right) {
        (Some(l), Some(r)) if r <= l => {
            let overlap = (l - r) as f64;
            ((l + r) as f64 / 2.0, (band_px as f64).min(overlap) / 2.0)
        }
        (Some(l), Some(r)) => ((l + r) as f64 / 2.0, 0.0),
        _ => (left.len() as f64 / 2.0, 0.0),
    };
    for i in 0..left.len() {
        let (l, r) = (sources[0][i], sources[1][i]);
        left[i] = l.map_or(NOT_SEEN, |p| pack(p[0] - 0.5, p[1] - 0.5));
        right[i] = r.map_or(NOT_SEEN, |p| pack(p[0] - 0.5, p[1] - 0.5));
        weight_left[i] = match (l, r) {
            (Some(_), None) => 255,
            (None, _) => 0,
            (Some(_), Some(_)) => {
                let x = i as f64;
                let w = if half_band > 0.0 {
                    1.0 - smoothstep((x - (seam - half_band)) / (2.0 * half_band))
                } else if x <= seam {
                    1.0
                } else {
                    0.0
                };
                (w * 255.0).round() as u8
            }
        };
    }
}

/// A temporary file next to the destination, so the final rename stays on one file system.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    for attempt in 0..100u32 {
        let path = dir.join(format!(
            ".stitch-table.{}.{attempt}.tmp",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_round_trips_to_a_sixteenth() {
        for (x, y) in [(0.0, 0.0), (1279.0, 719.0), (640.3, 2.97), (4095.0, 4095.0)] {
            let [a, b] = unpack(pack(x, y)).expect("seen");
            assert!((a as f64 - x).abs() <= 1.0 / 32.0 + 1e-9, "{x} -> {a}");
            assert!((b as f64 - y).abs() <= 1.0 / 32.0 + 1e-9, "{y} -> {b}");
        }
        assert_eq!(unpack(NOT_SEEN), None);
    }

    #[test]
    fn a_table_round_trips_through_the_file_format() {
        let table = StitchTable {
            panorama_size: [3, 2],
            left_size: [1280, 720],
            right_size: [1280, 720],
            band_px: 32,
            left: vec![pack(1.0, 2.0), NOT_SEEN, 7, 8, 9, 10],
            right: vec![NOT_SEEN, pack(3.5, 4.25), 1, 2, 3, 4],
            weight_left: vec![255, 0, 128, 1, 2, 3],
        };
        let mut bytes = Vec::new();
        table.write_to(&mut bytes).expect("write");
        assert_eq!(bytes.len(), 48 + 9 * 6);
        assert_eq!(&bytes[..8], b"PVSTITCH");
        let back = StitchTable::read_from(&mut bytes.as_slice(), Path::new("t")).expect("read");
        assert_eq!(back, table);
        for cut in [10, 47, 48 + 4 * 6, bytes.len() - 1] {
            let err = StitchTable::read_from(&mut &bytes[..cut], Path::new("t")).unwrap_err();
            assert!(matches!(err, LutError::Format { .. }), "{cut}: {err}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(StitchTable::read_from(&mut longer.as_slice(), Path::new("t")).is_err());
        let mut wrong = bytes;
        wrong[8] = 2;
        let err = StitchTable::read_from(&mut wrong.as_slice(), Path::new("t")).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }
}
