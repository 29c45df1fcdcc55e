//! The rig simulator: renders what the rig's two cameras would film of a football match, with
//! exact ground truth. It is the measuring instrument of the project: calibration, detection,
//! tracking and player metrics are all scored against its truth.
//!
//! - [`rig`]: the rig file (mast, cameras, lenses, exposure), TOML with a built-in default.
//! - [`camera`]: pinhole + Brown–Conrady camera model, true homographies, the panorama camera.
//! - [`clicks`]: simulated technicians' landmark clicks, and the grid that scores a fit.
//! - [`motion`]: real Metrica trajectories or a procedural match; officials for both.
//! - [`scene`]: the cast (teams, kits, sizes) and per-frame states.
//! - [`render`]: the static background once per camera, then people, ball and shadows per frame.
//! - [`encode`]: H.264 Matroska files through GStreamer.
//! - [`truth`]: MOTChallenge ground truth per view, pitch positions, the true calibration.
//! - [`score`]: degraded-truth detections for trackers, and MOTA / IDF1 / position and metric
//!   errors of the tracks that come back.
//! - [`sim`]: the whole run, one worker per view.
//! - [`dataset`]: stitched panoramas with true boxes, for training and scoring the detector.
//!
//! It must stay deterministic: the same rig, source and seed give identical frames.
#![forbid(unsafe_code)]

pub mod camera;
pub mod clicks;
pub mod dataset;
pub mod encode;
pub mod motion;
pub mod render;
pub mod rig;
pub mod scene;
pub mod score;
pub mod sim;
pub mod truth;
