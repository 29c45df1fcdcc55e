//! The daemon that runs on the rig (binary `polyvision-edge`, still to come).
//!
//! It will own the pipeline from the two camera streams to the SQLite buffer and the uploader,
//! one folder per stage (capture, stitch, detect, track, store, sync, web, telemetry), connected
//! by bounded channels. It must not contain geometry (that is `polyvision-calibration`), GPU code
//! (`polyvision-cuda`) or the wire format (`polyvision-cloud-sync`).
//!
//! Nothing is implemented yet: the crate exists so that the workspace has its final shape.
#![forbid(unsafe_code)]
