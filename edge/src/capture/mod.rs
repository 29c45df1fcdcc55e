//! Capture: frames from the cameras.
//!
//! For now this holds the still-frame grab that the calibration page shows; the live capture
//! pipeline (two sources, pairing by timestamp, rebuild on failure) comes with the daemon.

pub mod still;
