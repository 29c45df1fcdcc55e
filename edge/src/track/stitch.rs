//! Offline repair of fragmented tracks: a track that ends and one that starts soon after, where
//! a footballer could have run, are one player.
//!
//! Online tracking must decide every frame; a match file can look ahead. After tracking, each
//! track's last measured point is linked to at most one later track's first measured point by
//! minimum total distance (Hungarian), among pairs that are at most `max_gap_s` apart in time,
//! within `max_speed` of each other (plus `slack_m` for position noise) and of compatible class.
//! Linked tracks take the earlier id; the gap between them is filled by linear interpolation
//! (the player was there, only hidden), and the earlier track's coasting predictions inside
//! the gap are replaced.

use super::assign::{FORBIDDEN, assign};
use super::tracker::{Class, TrackPoint};
use std::collections::BTreeMap;

/// Limits of a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StitchConfig {
    /// Longest gap, s.
    pub max_gap_s: f64,
    /// Fastest a player covers the gap, m/s.
    pub max_speed: f64,
    /// Allowance for position noise, m.
    pub slack_m: f64,
}

impl Default for StitchConfig {
    fn default() -> Self {
        StitchConfig {
            max_gap_s: 4.0,
            max_speed: 7.0,
            slack_m: 1.5,
        }
    }
}

struct Span {
    id: u32,
    class: Class,
    first: (u64, [f64; 2]),
    first_bbox: [f64; 4],
    last: (u64, [f64; 2]),
}

/// Links fragments of people's tracks; returns the points with ids rewritten and gaps filled,
/// sorted by frame and id.
pub fn stitch(points: Vec<TrackPoint>, fps: f64, cfg: &StitchConfig) -> Vec<TrackPoint> {
    stitch_linked(points, fps, cfg).0
}

/// [`stitch`], also returning which of the tracker's ids each linked track is made of (linked id
/// → fragment ids in time order, the first being the linked id itself).
pub fn stitch_linked(
    points: Vec<TrackPoint>,
    fps: f64,
    cfg: &StitchConfig,
) -> (Vec<TrackPoint>, BTreeMap<u32, Vec<u32>>) {
    let mut by_id: BTreeMap<u32, Vec<TrackPoint>> = BTreeMap::new();
    for p in points {
        by_id.entry(p.id).or_default().push(p);
    }
    let spans: Vec<Span> = by_id
        .iter()
        .filter_map(|(&id, pts)| {
            let measured: Vec<&TrackPoint> = pts.iter().filter(|p| p.measured.is_some()).collect();
            let (a, b) = (measured.first()?, measured.last()?);
            Some(Span {
                id,
                class: b.class,
                first: (a.frame, a.pitch),
                first_bbox: a.bbox,
                last: (b.frame, b.pitch),
            })
        })
        .collect();
    let n = spans.len();
    let mut cost = vec![FORBIDDEN; n * n];
    for (i, a) in spans.iter().enumerate() {
        for (j, b) in spans.iter().enumerate() {
            if i == j || a.class == Class::Ball || b.class == Class::Ball {
                continue;
            }
            let referee = |c: Class| c == Class::Referee;
            if referee(a.class) != referee(b.class) || b.first.0 <= a.last.0 {
                continue;
            }
            let dt = (b.first.0 - a.last.0) as f64 / fps;
            if dt > cfg.max_gap_s {
                continue;
            }
            let d = (b.first.1[0] - a.last.1[0]).hypot(b.first.1[1] - a.last.1[1]);
            if d <= cfg.max_speed * dt + cfg.slack_m {
                // Prefer short jumps, then short gaps.
                cost[i * n + j] = d + dt;
            }
        }
    }
    let links = assign(&cost, n, n);
    // Follow chains from their heads.
    let mut next: Vec<Option<usize>> = vec![None; n];
    let mut has_prev = vec![false; n];
    for (i, j) in links {
        next[i] = Some(j);
        has_prev[j] = true;
    }
    let mut out = Vec::new();
    let mut fragments: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for head in (0..n).filter(|&i| !has_prev[i]) {
        let id = spans[head].id;
        let mut cur = Some(head);
        while let Some(i) = cur {
            let span = &spans[i];
            fragments.entry(id).or_default().push(span.id);
            let upto = next[i].map(|j| spans[j].first.0);
            let pts = by_id.remove(&span.id).unwrap_or_default();
            let mut last_real: Option<TrackPoint> = None;
            for mut p in pts {
                // Coasting points of a fragment that continues are replaced by the fill.
                if upto.is_some_and(|f| p.frame > span.last.0 && p.frame < f) {
                    continue;
                }
                p.id = id;
                if p.frame == span.last.0 {
                    last_real = Some(p);
                }
                out.push(p);
            }
            if let (Some(j), Some(from)) = (next[i], last_real) {
                let (to, to_box) = (spans[j].first, spans[j].first_bbox);
                let gap = (to.0 - from.frame) as f64;
                let lerp = |a: f64, b: f64, t: f64| a + t * (b - a);
                for f in from.frame + 1..to.0 {
                    let t = (f - from.frame) as f64 / gap;
                    let mut p = from;
                    p.frame = f;
                    p.pitch = [
                        lerp(from.pitch[0], to.1[0], t),
                        lerp(from.pitch[1], to.1[1], t),
                    ];
                    p.bbox = std::array::from_fn(|k| lerp(from.bbox[k], to_box[k], t));
                    p.measured = None;
                    p.cov = None;
                    p.conf = 0.0;
                    out.push(p);
                }
            }
            cur = next[i];
        }
    }
    // Tracks that had no measured point at all (cannot happen for reported tracks) stay as
    // they were.
    for (id, pts) in by_id {
        fragments.entry(id).or_default().push(id);
        out.extend(pts);
    }
    out.sort_by_key(|p| (p.id, p.frame));
    smooth_boxes(&mut out, 3);
    out.sort_by_key(|p| (p.frame, p.id));
    (out, fragments)
}

/// Averages each box over ±`half` frames of its own track (points sorted by id, then frame):
/// a detector's boxes jitter by pixels from frame to frame, and a small box's overlap with the
/// person it shows suffers from it.
fn smooth_boxes(points: &mut [TrackPoint], half: usize) {
    let mut start = 0;
    while start < points.len() {
        let id = points[start].id;
        let end = start + points[start..].iter().take_while(|p| p.id == id).count();
        let boxes: Vec<[f64; 4]> = points[start..end].iter().map(|p| p.bbox).collect();
        for (k, p) in points[start..end].iter_mut().enumerate() {
            let (a, b) = (k.saturating_sub(half), (k + half).min(boxes.len() - 1));
            let n = (b - a + 1) as f64;
            p.bbox = std::array::from_fn(|c| boxes[a..=b].iter().map(|x| x[c]).sum::<f64>() / n);
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: u32, frame: u64, x: f64) -> TrackPoint {
        TrackPoint {
            frame,
            id,
            bbox: [x, 0.0, 1.0, 2.0],
            pitch: [x, 0.0],
            measured: Some([x, 0.0]),
            cov: Some([[0.01, 0.0], [0.0, 0.01]]),
            class: Class::Player,
            conf: 0.9,
            colour: None,
        }
    }

    #[test]
    fn a_fragment_that_continues_a_track_takes_its_id_and_the_gap_is_filled() {
        let mut pts: Vec<TrackPoint> = (0..10).map(|f| point(1, f, f as f64 * 0.2)).collect();
        pts.extend((20..30).map(|f| point(7, f, f as f64 * 0.2)));
        // Far away: must stay separate.
        pts.extend((20..30).map(|f| point(9, f, 40.0)));
        let out = stitch(pts, 25.0, &StitchConfig::default());
        let ids: std::collections::BTreeSet<u32> = out.iter().map(|p| p.id).collect();
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), [1, 9]);
        let one: Vec<u64> = out.iter().filter(|p| p.id == 1).map(|p| p.frame).collect();
        assert_eq!(one, (0..30).collect::<Vec<_>>());
        let filled = out
            .iter()
            .find(|p| p.id == 1 && p.frame == 15)
            .expect("filled");
        assert!((filled.pitch[0] - 3.0).abs() < 1e-9 && filled.measured.is_none());
    }
}
