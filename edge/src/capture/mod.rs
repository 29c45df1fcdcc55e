//! Capture: frames from the cameras.
//!
//! - [`still`]: the still-frame grab that the calibration page shows;
//! - [`video`]: one GStreamer pipeline per camera, timed RGBA frames out of a bounded appsink.
//!
//! Pairing the two cameras by capture time is the pipeline's first stage
//! ([`crate::pipeline::pair`]).

pub mod still;
pub mod video;
