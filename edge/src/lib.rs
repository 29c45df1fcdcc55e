//! The daemon that runs on the rig (binary `polyvision-edge`).
//!
//! It owns the pipeline from the two camera streams to the SQLite buffer and the uploader, one
//! module per stage in data-flow order, connected by bounded channels. It must not contain
//! geometry (that is `polyvision-calibration`), GPU code (`polyvision-cuda`) or the wire format
//! (`polyvision-cloud-sync`).
//!
//! What exists so far:
//!
//! - [`config`]: the daemon's TOML configuration over embedded defaults;
//! - [`capture`]: the camera sources through GStreamer (files, RTSP, V4L2, CSI, test pattern)
//!   and still frames for the calibration page;
//! - [`calibration`]: the calibration the pipeline runs with, reloaded when the file changes;
//! - [`detect`]: model cards, YOLO head decoding, tiling of the panorama and merging across
//!   tiles, and the detector's evaluation;
//! - [`pipeline`]: capture → pair → stitch → detect → track → store on their own threads,
//!   with the cameras' offset checked in the pair stage and the pitch mask before tracking;
//! - [`daemon`]: `polyvision-edge run` — matches started and stopped from the page, MQTT or the
//!   command line, the disk alarm, systemd readiness and watchdog, `/metrics`;
//! - [`store`]: the SQLite buffer of tracked positions (matches, compact rows, sync cursor);
//! - [`track`]: tracking in pitch metres and player metrics (`polyvision-edge track`);
//! - [`web`]: the technician's calibration page (`polyvision-edge calibrate`).
//!
//! `polyvision-edge demo` runs the pipeline on a rendered match, `polyvision-edge process` on a
//! user's own two recordings.
#![forbid(unsafe_code)]

pub mod calibration;
pub mod capture;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod pipeline;
pub mod store;
pub mod track;
pub mod web;
