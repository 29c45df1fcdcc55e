//! Tracking and player metrics in pitch space.
//!
//! - [`tracker`]: ByteTrack-style association on per-person Kalman filters in metres, and the
//!   ball's own tracker;
//! - [`stitch`]: offline linking of fragments of one player's track;
//! - [`teams`]: the team of each track, by clustering shirt colours per match;
//! - [`metrics`]: smoothed trajectories and the metrics coaches read (distance, speed zones,
//!   top speed, sprints, accelerations);
//! - [`finish`]: what the CLI and the daemon share around the tracker (detections placed on
//!   the pitch; a finished match linked, smoothed and measured);
//! - [`mot`]: MOTChallenge detections in, tracks out (`polyvision-edge track`).

pub mod assign;
pub mod finish;
pub mod kalman;
pub mod metrics;
pub mod mot;
pub mod stitch;
pub mod teams;
pub mod tracker;
