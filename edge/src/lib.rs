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
//! - [`capture`]: still frames from the camera sources (PNG or any video GStreamer decodes);
//! - [`calibration`]: the calibration the pipeline runs with, reloaded when the file changes;
//! - [`detect`]: model cards, YOLO head decoding, tiling of the panorama and merging across tiles;
//! - [`store`]: the SQLite buffer of tracked positions (matches, compact rows, sync cursor);
//! - [`track`]: tracking in pitch metres and player metrics (`polyvision-edge track`);
//! - [`web`]: the technician's calibration page (`polyvision-edge calibrate`).
//!
//! The live pipeline (capture → stitch → detect → track → store → sync) comes with the daemon.
#![forbid(unsafe_code)]

pub mod calibration;
pub mod capture;
pub mod config;
pub mod detect;
pub mod store;
pub mod track;
pub mod web;
