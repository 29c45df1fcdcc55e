//! The pitch: size, coordinate frame and markings.
//!
//! Coordinates are metres with the origin at the centre spot, x along the touchlines
//! (−length/2 … length/2) and y across (−width/2 … width/2). The rig stands behind the touchline
//! at negative y. Marking dimensions follow the Laws of the Game (IFAB, Law 1).

use serde::{Deserialize, Serialize};
use std::f64::consts::{FRAC_PI_2, PI, TAU};

/// Width of every painted line, metres (Law 1 allows at most 12 cm).
pub const LINE_WIDTH_M: f64 = 0.12;
/// Radius of the centre circle and the penalty arcs, metres.
pub const CIRCLE_RADIUS_M: f64 = 9.15;
/// Distance between the inner edges of the goal posts, metres.
pub const GOAL_WIDTH_M: f64 = 7.32;
/// Height of the lower edge of the crossbar, metres.
pub const GOAL_HEIGHT_M: f64 = 2.44;
/// Depth of the penalty area from the goal line, metres.
pub const PENALTY_AREA_DEPTH_M: f64 = 16.5;
/// Width of the penalty area, metres.
pub const PENALTY_AREA_WIDTH_M: f64 = 40.32;
/// Depth of the goal area from the goal line, metres.
pub const GOAL_AREA_DEPTH_M: f64 = 5.5;
/// Width of the goal area, metres.
pub const GOAL_AREA_WIDTH_M: f64 = 18.32;
/// Distance of the penalty mark from the goal line, metres.
pub const PENALTY_MARK_DISTANCE_M: f64 = 11.0;
/// Radius of the corner arcs, metres.
pub const CORNER_ARC_RADIUS_M: f64 = 1.0;
/// Radius of the centre spot and the penalty marks, metres.
pub const SPOT_RADIUS_M: f64 = 0.11;

/// Length and width of a pitch, metres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PitchSize {
    /// Touchline length (x extent), metres.
    pub length_m: f64,
    /// Goal line length (y extent), metres.
    pub width_m: f64,
}

impl Default for PitchSize {
    fn default() -> Self {
        PitchSize {
            length_m: 105.0,
            width_m: 68.0,
        }
    }
}

/// A painted marking, as the centre line of the paint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Marking {
    /// A straight line from `a` to `b`.
    Segment {
        /// Start point, metres.
        a: [f64; 2],
        /// End point, metres.
        b: [f64; 2],
    },
    /// A circular arc from `start` to `end` radians, counter-clockwise.
    Arc {
        /// Centre, metres.
        centre: [f64; 2],
        /// Radius, metres.
        radius: f64,
        /// Start angle, radians.
        start: f64,
        /// End angle, radians (greater than `start`).
        end: f64,
    },
    /// A filled disc (centre spot, penalty marks).
    Spot {
        /// Centre, metres.
        centre: [f64; 2],
        /// Radius, metres.
        radius: f64,
    },
}

impl Marking {
    /// Signed distance from `p` to the painted area of this marking: negative inside the paint.
    pub fn paint_distance(&self, p: [f64; 2]) -> f64 {
        match *self {
            Marking::Segment { a, b } => {
                let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
                let len2 = dx * dx + dy * dy;
                let t = (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0);
                let (qx, qy) = (a[0] + t * dx, a[1] + t * dy);
                (p[0] - qx).hypot(p[1] - qy) - LINE_WIDTH_M / 2.0
            }
            Marking::Arc {
                centre,
                radius,
                start,
                end,
            } => {
                let (vx, vy) = (p[0] - centre[0], p[1] - centre[1]);
                let mut angle = vy.atan2(vx);
                while angle < start {
                    angle += TAU;
                }
                if angle <= end {
                    (vx.hypot(vy) - radius).abs() - LINE_WIDTH_M / 2.0
                } else {
                    let end_point =
                        |a: f64| [centre[0] + radius * a.cos(), centre[1] + radius * a.sin()];
                    let [sx, sy] = end_point(start);
                    let [ex, ey] = end_point(end);
                    (p[0] - sx)
                        .hypot(p[1] - sy)
                        .min((p[0] - ex).hypot(p[1] - ey))
                        - LINE_WIDTH_M / 2.0
                }
            }
            Marking::Spot { centre, radius } => (p[0] - centre[0]).hypot(p[1] - centre[1]) - radius,
        }
    }

    /// Points along the marking's centre line, at most `step_m` apart (for drawing overlays).
    pub fn polyline(&self, step_m: f64) -> Vec<[f64; 2]> {
        match *self {
            Marking::Segment { a, b } => {
                let n = ((a[0] - b[0]).hypot(a[1] - b[1]) / step_m).ceil().max(1.0) as usize;
                (0..=n)
                    .map(|i| {
                        let t = i as f64 / n as f64;
                        [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]
                    })
                    .collect()
            }
            Marking::Arc {
                centre,
                radius,
                start,
                end,
            } => {
                let n = ((end - start) * radius / step_m).ceil().max(1.0) as usize;
                (0..=n)
                    .map(|i| {
                        let a = start + (end - start) * i as f64 / n as f64;
                        [centre[0] + radius * a.cos(), centre[1] + radius * a.sin()]
                    })
                    .collect()
            }
            Marking::Spot { centre, .. } => vec![centre],
        }
    }
}

/// A named point of the pitch markings that a technician can find in an image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Landmark {
    /// Stable identifier, e.g. `penalty_area_left_near`.
    pub name: String,
    /// Where to find it, in words.
    pub description: String,
    /// Position on the pitch, metres.
    pub position: [f64; 2],
}

impl PitchSize {
    /// Half the length and half the width.
    pub fn half_extents(&self) -> [f64; 2] {
        [self.length_m / 2.0, self.width_m / 2.0]
    }

    /// Checks the size against Law 1 (90–120 m by 45–90 m, longer than wide); the error names
    /// the offending dimension.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.length_m.is_finite() && (90.0..=120.0).contains(&self.length_m)) {
            return Err(format!("length_m = {} is outside 90–120 m", self.length_m));
        }
        if !(self.width_m.is_finite() && (45.0..=90.0).contains(&self.width_m)) {
            return Err(format!("width_m = {} is outside 45–90 m", self.width_m));
        }
        if self.width_m >= self.length_m {
            return Err(format!(
                "width_m = {} is not less than length_m = {}",
                self.width_m, self.length_m
            ));
        }
        Ok(())
    }

    /// True when `p` lies on the pitch, lines included.
    pub fn contains(&self, p: [f64; 2]) -> bool {
        self.contains_within(p, 0.0)
    }

    /// True when `p` lies on the pitch grown by `margin_m` on every side.
    pub fn contains_within(&self, p: [f64; 2], margin_m: f64) -> bool {
        let [hl, hw] = self.half_extents();
        p[0].abs() <= hl + margin_m && p[1].abs() <= hw + margin_m
    }

    /// Every standard landmark, with stable names.
    ///
    /// Names use `left`/`right` for the goal at negative/positive x and `near`/`far` for the
    /// touchline at negative/positive y (the rig's side is `near`):
    ///
    /// - `corner_{left,right}_{near,far}`, `halfway_{near,far}`, `centre_spot`;
    /// - `centre_circle_{near,far}` (on the halfway line) and `centre_circle_{left,right}` (on
    ///   the axis);
    /// - `penalty_spot_{left,right}`;
    /// - `penalty_area_{side}_{near,far}` and `goal_area_{side}_{near,far}`: the inner corners,
    ///   and the same with `_goal_line` where the area's side line meets the goal line;
    /// - `penalty_arc_{side}_{near,far}`: where the penalty arc meets the penalty-area line;
    /// - `goal_post_{side}_{near,far}`: the inner edge of each post on the goal line.
    pub fn landmarks(&self) -> Vec<Landmark> {
        let [hl, hw] = self.half_extents();
        let mut out = Vec::with_capacity(37);
        let mut add = |name: String, description: String, position: [f64; 2]| {
            out.push(Landmark {
                name,
                description,
                position,
            })
        };
        let ends = [("near", -1.0, "near"), ("far", 1.0, "far")];
        let sides = [("left", -1.0), ("right", 1.0)];
        for (side, sx) in sides {
            for (end, sy, words) in ends {
                add(
                    format!("corner_{side}_{end}"),
                    format!("{side} goal line meets the {words} touchline"),
                    [sx * hl, sy * hw],
                );
            }
        }
        for (end, sy, words) in ends {
            add(
                format!("halfway_{end}"),
                format!("halfway line meets the {words} touchline"),
                [0.0, sy * hw],
            );
        }
        add("centre_spot".into(), "centre spot".into(), [0.0, 0.0]);
        for (end, sy, words) in ends {
            add(
                format!("centre_circle_{end}"),
                format!("centre circle crosses the halfway line, {words} side"),
                [0.0, sy * CIRCLE_RADIUS_M],
            );
        }
        for (side, sx) in sides {
            add(
                format!("centre_circle_{side}"),
                format!("centre circle, point nearest the {side} goal"),
                [sx * CIRCLE_RADIUS_M, 0.0],
            );
        }
        // Where the penalty arc leaves the penalty area, measured from the penalty mark.
        let arc_dy = (CIRCLE_RADIUS_M.powi(2)
            - (PENALTY_AREA_DEPTH_M - PENALTY_MARK_DISTANCE_M).powi(2))
        .sqrt();
        for (side, sx) in sides {
            let goal_x = sx * hl;
            add(
                format!("penalty_spot_{side}"),
                format!("{side} penalty mark"),
                [goal_x - sx * PENALTY_MARK_DISTANCE_M, 0.0],
            );
            for (area, depth, width) in [
                ("penalty_area", PENALTY_AREA_DEPTH_M, PENALTY_AREA_WIDTH_M),
                ("goal_area", GOAL_AREA_DEPTH_M, GOAL_AREA_WIDTH_M),
            ] {
                let words = area.replace('_', " ");
                for (end, sy, end_words) in ends {
                    let y = sy * width / 2.0;
                    add(
                        format!("{area}_{side}_{end}"),
                        format!("{side} {words}, inner corner on the {end_words} side"),
                        [goal_x - sx * depth, y],
                    );
                    add(
                        format!("{area}_{side}_{end}_goal_line"),
                        format!("{side} {words} line meets the goal line, {end_words} side"),
                        [goal_x, y],
                    );
                }
            }
            for (end, sy, words) in ends {
                add(
                    format!("penalty_arc_{side}_{end}"),
                    format!("{side} penalty arc meets the penalty-area line, {words} side"),
                    [goal_x - sx * PENALTY_AREA_DEPTH_M, sy * arc_dy],
                );
            }
            for (end, sy, words) in ends {
                add(
                    format!("goal_post_{side}_{end}"),
                    format!("{side} goal, {words} post (inner edge, on the goal line)"),
                    [goal_x, sy * GOAL_WIDTH_M / 2.0],
                );
            }
        }
        out
    }

    /// The position of the landmark called `name`.
    pub fn landmark(&self, name: &str) -> Option<[f64; 2]> {
        self.landmarks()
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.position)
    }

    /// Every marking of the pitch.
    pub fn markings(&self) -> Vec<Marking> {
        let [hl, hw] = self.half_extents();
        let seg = |a: [f64; 2], b: [f64; 2]| Marking::Segment { a, b };
        let mut m = vec![
            seg([-hl, -hw], [hl, -hw]),
            seg([-hl, hw], [hl, hw]),
            seg([-hl, -hw], [-hl, hw]),
            seg([hl, -hw], [hl, hw]),
            seg([0.0, -hw], [0.0, hw]),
            Marking::Arc {
                centre: [0.0, 0.0],
                radius: CIRCLE_RADIUS_M,
                start: 0.0,
                end: TAU,
            },
            Marking::Spot {
                centre: [0.0, 0.0],
                radius: SPOT_RADIUS_M,
            },
        ];
        // Half-angle of the penalty arc outside the penalty area.
        let arc_half = ((PENALTY_AREA_DEPTH_M - PENALTY_MARK_DISTANCE_M) / CIRCLE_RADIUS_M).acos();
        for side in [-1.0, 1.0] {
            let goal_x = side * hl;
            for (depth, width) in [
                (PENALTY_AREA_DEPTH_M, PENALTY_AREA_WIDTH_M),
                (GOAL_AREA_DEPTH_M, GOAL_AREA_WIDTH_M),
            ] {
                let inner_x = goal_x - side * depth;
                let hy = width / 2.0;
                m.push(seg([goal_x, -hy], [inner_x, -hy]));
                m.push(seg([inner_x, -hy], [inner_x, hy]));
                m.push(seg([inner_x, hy], [goal_x, hy]));
            }
            let mark = [goal_x - side * PENALTY_MARK_DISTANCE_M, 0.0];
            m.push(Marking::Spot {
                centre: mark,
                radius: SPOT_RADIUS_M,
            });
            // The arc faces the centre of the pitch: around angle π for the right goal, 0 for the
            // left one.
            let mid = if side > 0.0 { PI } else { 0.0 };
            m.push(Marking::Arc {
                centre: mark,
                radius: CIRCLE_RADIUS_M,
                start: mid - arc_half,
                end: mid + arc_half,
            });
        }
        for (corner, start) in [
            ([-hl, -hw], 0.0),
            ([hl, -hw], FRAC_PI_2),
            ([hl, hw], PI),
            ([-hl, hw], PI + FRAC_PI_2),
        ] {
            m.push(Marking::Arc {
                centre: corner,
                radius: CORNER_ARC_RADIUS_M,
                start,
                end: start + FRAC_PI_2,
            });
        }
        m
    }

    /// Signed distance from `p` to the nearest paint (negative inside a line).
    pub fn paint_distance(&self, markings: &[Marking], p: [f64; 2]) -> f64 {
        markings
            .iter()
            .map(|m| m.paint_distance(p))
            .fold(f64::INFINITY, f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_painted_where_the_laws_put_them() {
        let pitch = PitchSize::default();
        let m = pitch.markings();
        // On the halfway line, the touchline, the penalty-area corner and the centre circle.
        for p in [
            [0.0, 10.0],
            [20.0, -34.0],
            [52.5 - 16.5, 20.16],
            [9.15, 0.0],
            [0.0, 9.15],
        ] {
            assert!(pitch.paint_distance(&m, p) < 0.0, "{p:?} should be painted");
        }
        // Grass: inside the penalty area, inside the centre circle but off the spot, and the
        // part of the penalty arc's circle that lies inside the penalty area.
        for p in [[45.0, 5.0], [3.0, 3.0], [52.5 - 11.0 - 0.0, 9.15]] {
            assert!(pitch.paint_distance(&m, p) > 0.0, "{p:?} should be grass");
        }
        // The penalty arc outside the area is painted.
        assert!(pitch.paint_distance(&m, [52.5 - 11.0 - 9.15, 0.0]) < 0.0);
        assert!(pitch.paint_distance(&m, [-52.5 + 11.0 + 9.15, 0.0]) < 0.0);
    }

    #[test]
    fn validation_names_the_bad_dimension() {
        let err = PitchSize {
            length_m: 130.0,
            width_m: 68.0,
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("length_m"), "{err}");
        let err = PitchSize {
            length_m: 100.0,
            width_m: f64::NAN,
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("width_m"), "{err}");
    }

    #[test]
    fn landmarks_lie_on_the_paint_and_have_unique_names() {
        let pitch = PitchSize::default();
        let marks = pitch.markings();
        let landmarks = pitch.landmarks();
        assert_eq!(landmarks.len(), 37);
        let mut names: Vec<&str> = landmarks.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), landmarks.len(), "duplicate landmark names");
        for l in &landmarks {
            assert!(
                pitch.paint_distance(&marks, l.position) <= 1e-9,
                "{} at {:?} is not on a line",
                l.name,
                l.position
            );
        }
        let arc = pitch.landmark("penalty_arc_right_far").expect("exists");
        assert!((arc[0] - 36.0).abs() < 1e-12 && (arc[1] - 7.312).abs() < 1e-3);
        assert_eq!(pitch.landmark("goal_post_left_near"), Some([-52.5, -3.66]));
        assert_eq!(pitch.landmark("no_such_point"), None);
    }
}
