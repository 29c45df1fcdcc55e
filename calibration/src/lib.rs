//! Geometry of the rig and the pitch: everything that maps a pixel to a place on the pitch.
//!
//! This crate owns
//!
//! - the [`pitch`] model: pitch size, origin at the centre spot, x along the touchline, y across,
//!   and the markings (segments and arcs) used to draw the pitch;
//! - the [`lens`] model: Brown–Conrady radial and tangential distortion of one camera;
//! - [`Homography`]: a plane-to-plane projective map, used for the field homography
//!   (image pixels → pitch metres);
//! - [`sync`]: the two cameras' time offset, from what moves where their views overlap;
//! - the [`file`](mod@file) format of a rig's calibration: one versioned JSON document, validated on load
//!   with errors that name the bad field, written atomically.
//!
//! It does no I/O other than reading and writing calibration files, and knows nothing of video,
//! detection or tracking.
//!
//! ```
//! use polyvision_calibration::{Homography, PitchSize};
//!
//! // A top-down view at 10 px per metre with the centre spot at pixel (525, 340).
//! let pitch_from_image = Homography::from_rows([
//!     [0.1, 0.0, -52.5],
//!     [0.0, -0.1, 34.0],
//!     [0.0, 0.0, 1.0],
//! ])?;
//! let spot = pitch_from_image.apply([525.0, 340.0]).expect("finite");
//! assert!((spot[0]).abs() < 1e-12 && (spot[1]).abs() < 1e-12);
//! assert!(PitchSize::default().contains([52.5, 34.0]));
//! # Ok::<(), polyvision_calibration::GeometryError>(())
//! ```
#![forbid(unsafe_code)]

pub mod file;
pub mod fit;
mod homography;
pub mod lens;
pub mod lines;
pub mod lut;
pub mod overlay;
pub mod panorama;
pub mod pitch;
pub mod png_io;
pub mod points;
pub mod seam;
pub mod sync;
pub mod view;

pub use file::{CalibrationFile, CameraCalibration, FileError, PanoramaCalibration};
pub use fit::{FieldFit, FitError, FitOptions, ImageView, PointPair, fit_field_homography};
pub use homography::{GeometryError, Homography};
pub use lens::LensModel;
pub use lut::StitchTable;
pub use panorama::{PanoramaOptions, PanoramaView, plan_panorama};
pub use pitch::{Landmark, Marking, PitchSize};
pub use points::PointsFile;
pub use view::ViewGeometry;
