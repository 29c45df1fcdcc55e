//! The steps around the tracker that the offline CLI and the daemon share: placing a detection
//! on the pitch before the tracker, and finishing a match after it (fragments linked, positions
//! smoothed, metrics and teams).

use super::metrics::{MetricsConfig, TrackMetrics, match_metrics, smooth_positions, smooth_tracks};
use super::stitch::{StitchConfig, stitch_linked};
use super::teams::{Team, assign_teams};
use super::tracker::{Class, Detection, TrackPoint};
use polyvision_calibration::ViewGeometry;
use polyvision_cloud_sync::summary::{MatchSummary, PlayerSummary};
use std::collections::BTreeMap;

/// Smallest position uncertainty, m (1σ): the foot point itself is not sharper than this.
pub const MIN_SIGMA_M: f64 = 0.05;

/// A detection in the view's pixels placed on the pitch: people by their foot point, the ball by
/// the bottom of its box; `None` when the point is not on the pitch plane (above the horizon).
pub fn place(
    view: &ViewGeometry,
    bbox: [f64; 4],
    conf: f64,
    class: Class,
    colour: Option<[f32; 3]>,
    pixel_sigma: f64,
) -> Option<Detection> {
    let [l, t, w, h] = bbox;
    let (pitch, foot) = if class == Class::Ball {
        let foot = [l + w / 2.0, t + h];
        (view.to_pitch(foot)?, foot)
    } else {
        (view.position_of_box(bbox)?, view.foot_pixel(bbox))
    };
    let mut cov = view.pitch_covariance(foot, pixel_sigma)?;
    cov[0][0] += MIN_SIGMA_M * MIN_SIGMA_M;
    cov[1][1] += MIN_SIGMA_M * MIN_SIGMA_M;
    Some(Detection {
        bbox,
        conf,
        class,
        pitch,
        cov,
        colour,
    })
}

/// A match after the tracker: what coaches and the buffer get.
#[derive(Debug, Clone)]
pub struct FinishedMatch {
    /// Every track point, fragments linked and positions smoothed.
    pub points: Vec<TrackPoint>,
    /// Metrics per track.
    pub metrics: Vec<TrackMetrics>,
    /// Team per track.
    pub teams: BTreeMap<u32, Team>,
    /// The tracker's track ids each linked track is made of (the buffer's rows carry these).
    pub fragments: BTreeMap<u32, Vec<u32>>,
}

/// Links fragments of one player's track, smooths every trajectory once, and computes the
/// metrics and teams from it.
pub fn finish(points: Vec<TrackPoint>, fps: f64, cfg: &MetricsConfig) -> FinishedMatch {
    let (mut points, fragments) = stitch_linked(points, fps, &StitchConfig::default());
    let smoothed = smooth_tracks(&points, fps, cfg.smoothing_sigma_accel);
    smooth_positions(&mut points, &smoothed);
    let metrics = match_metrics(&smoothed, fps, cfg);
    let teams = assign_teams(&points);
    FinishedMatch {
        points,
        metrics,
        teams,
        fragments,
    }
}

impl FinishedMatch {
    /// What the rig sends the cloud about this match: every person's metrics, team and fragments
    /// (the ball has no metrics).
    pub fn summary(
        &self,
        serial: &str,
        match_id: &str,
        match_started_ms: i64,
        fps: f64,
    ) -> MatchSummary {
        let players = self
            .metrics
            .iter()
            .filter(|m| m.class != Class::Ball)
            .map(|m| PlayerSummary {
                player: m.id,
                class: m.class.mot() as u8,
                team: self
                    .teams
                    .get(&m.id)
                    .map_or("unknown", |t| t.name())
                    .to_string(),
                fragments: self
                    .fragments
                    .get(&m.id)
                    .cloned()
                    .unwrap_or_else(|| vec![m.id]),
                frames: m.frames as u32,
                distance_m: m.distance_m,
                zone_m: m.zone_m,
                high_speed_m: m.high_speed_m,
                top_speed_mps: m.top_speed_mps,
                sprints: m.sprints,
                accelerations: m.accelerations,
                decelerations: m.decelerations,
            })
            .collect();
        MatchSummary {
            serial: serial.to_string(),
            match_id: match_id.to_string(),
            match_started_ms,
            fps,
            players,
        }
    }
}
