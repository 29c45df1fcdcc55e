//! A procedural match of any length: formations that shift with the ball, pressing, dribbles,
//! ground and lofted passes, shots, interceptions, loose balls and restarts.
//!
//! It is not football intelligence; it is motion with the statistics that matter to the rest of
//! the pipeline: players that accelerate, stop and turn within human limits (top speeds
//! 7.5–9.5 m/s, 3.5 m/s² acceleration, 5.5 m/s² braking), crowd around the ball, cross each
//! other's paths, and a ball that rolls, flies and changes direction abruptly. Teams change ends
//! at half time for matches of ten minutes or longer. Deterministic for a given seed.

use super::{Motion, Mover, Officials};
use crate::scene::{BallState, FrameState, PersonState, Rng, advance_strides};
use polyvision_calibration::PitchSize;
use polyvision_calibration::pitch::GOAL_WIDTH_M;

/// Formation slots relative to the team's block centre, for a team attacking +x
/// (x forward, metres); index 0 is the goalkeeper and handled separately.
const HOME_SHAPE: [[f64; 2]; 11] = [
    [0.0, 0.0],
    [-20.0, -22.0],
    [-22.0, -8.0],
    [-22.0, 8.0],
    [-20.0, 22.0],
    [-3.0, -24.0],
    [-6.0, -8.0],
    [-6.0, 8.0],
    [-3.0, 24.0],
    [14.0, -8.0],
    [16.0, 8.0],
];
const AWAY_SHAPE: [[f64; 2]; 11] = [
    [0.0, 0.0],
    [-20.0, -22.0],
    [-22.0, -8.0],
    [-22.0, 8.0],
    [-20.0, 22.0],
    [-6.0, -14.0],
    [-9.0, 0.0],
    [-6.0, 14.0],
    [12.0, -22.0],
    [16.0, 0.0],
    [12.0, 22.0],
];

#[derive(Debug, Clone)]
struct Agent {
    mover: Mover,
    team: usize,
    slot: usize,
    wander: [f64; 4],
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Held {
        holder: usize,
        release_at: f64,
    },
    Flight {
        receiver: Option<usize>,
        from: [f64; 2],
        to: [f64; 2],
        t0: f64,
        duration: f64,
        peak: f64,
        shot: bool,
    },
    Rolling,
    Restart {
        taker: usize,
        ready_at: Option<f64>,
    },
}

/// The procedural match.
#[derive(Debug)]
pub struct ProceduralMotion {
    pitch: PitchSize,
    fps: f64,
    count: u64,
    next: u64,
    rng: Rng,
    agents: Vec<Agent>,
    ball: [f64; 3],
    ball_vel: [f64; 3],
    phase: Phase,
    /// Team (0 home, 1 away) that last touched the ball.
    last_touch: usize,
    /// Direction each team attacks (+1 = towards +x).
    attack: [f64; 2],
    switched: bool,
    officials: Officials,
    prev: Vec<PersonState>,
}

impl ProceduralMotion {
    /// A match of `seconds` at `fps`, from `seed`.
    pub fn new(pitch: PitchSize, fps: u32, seconds: f64, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let attack = [1.0, -1.0];
        let mut agents = Vec::with_capacity(22);
        for team in 0..2 {
            for slot in 0..11 {
                let top = if slot == 0 { 7.0 } else { rng.range(7.5, 9.5) };
                let mut mover = Mover::at([0.0, 0.0], top);
                mover.max_accel = rng.range(3.0, 4.2);
                let wander = [
                    rng.range(0.03, 0.12),
                    rng.range(0.0, 6.3),
                    rng.range(0.03, 0.12),
                    rng.range(0.0, 6.3),
                ];
                agents.push(Agent {
                    mover,
                    team,
                    slot,
                    wander,
                });
            }
        }
        let mut m = ProceduralMotion {
            pitch,
            fps: fps as f64,
            count: (seconds * fps as f64).round() as u64,
            next: 0,
            rng,
            agents,
            ball: [0.0; 3],
            ball_vel: [0.0; 3],
            phase: Phase::Rolling,
            last_touch: 1,
            attack,
            switched: false,
            officials: Officials::new(pitch),
            prev: Vec::new(),
        };
        for i in 0..m.agents.len() {
            let mut p = m.anchor(i, 0.0, None);
            // Kick-off: everyone in their own half.
            let d = m.attack[m.agents[i].team];
            if p[0] * d > -1.0 {
                p[0] = -d * 1.0 - d * (p[0] * d).abs() * 0.3;
            }
            m.agents[i].mover.pos = p;
        }
        let taker = 9;
        m.agents[taker].mover.pos = [-0.8, 0.0];
        m.phase = Phase::Restart {
            taker,
            ready_at: None,
        };
        m
    }

    fn team_in_possession(&self) -> Option<usize> {
        match self.phase {
            Phase::Held { holder, .. } | Phase::Restart { taker: holder, .. } => {
                Some(self.agents[holder].team)
            }
            Phase::Flight {
                receiver: Some(r),
                shot: false,
                ..
            } => Some(self.agents[r].team),
            _ => None,
        }
    }

    /// Where player `i` would stand given the ball and who has it.
    fn anchor(&self, i: usize, t: f64, possession: Option<usize>) -> [f64; 2] {
        let a = &self.agents[i];
        let d = self.attack[a.team];
        let [hl, hw] = self.pitch.half_extents();
        let (bx, by) = (self.ball[0], self.ball[1]);
        if a.slot == 0 {
            let x = -d * hl + d * (4.0 + 6.0 * ((bx * d + hl) / (2.0 * hl)).clamp(0.0, 1.0));
            return [x, (by * 0.12).clamp(-3.0, 3.0)];
        }
        let attacking = possession == Some(a.team);
        let shift = if attacking { 10.0 } else { -6.0 };
        let block = (0.65 * bx + d * shift).clamp(-hl + 22.0, hl - 22.0);
        let shape = if a.team == 0 { HOME_SHAPE } else { AWAY_SHAPE };
        let rel = shape[a.slot];
        let width = if attacking { 1.0 } else { 0.72 };
        let wander = [
            3.0 * (a.wander[0] * t * std::f64::consts::TAU + a.wander[1]).sin(),
            3.0 * (a.wander[2] * t * std::f64::consts::TAU + a.wander[3]).sin(),
        ];
        [
            (block + d * rel[0] + wander[0]).clamp(-hl + 1.0, hl - 1.0),
            (rel[1] * width + by * 0.28 + wander[1]).clamp(-hw + 1.0, hw - 1.0),
        ]
    }

    fn nearest(&self, p: [f64; 2], team: Option<usize>, except: Option<usize>) -> usize {
        (0..self.agents.len())
            .filter(|&i| team.is_none_or(|t| self.agents[i].team == t) && Some(i) != except)
            .min_by(|&a, &b| {
                dist(self.agents[a].mover.pos, p).total_cmp(&dist(self.agents[b].mover.pos, p))
            })
            .unwrap_or(0)
    }

    fn release(&mut self, holder: usize, t: f64) {
        let team = self.agents[holder].team;
        let d = self.attack[team];
        let [hl, _] = self.pitch.half_extents();
        let from = [self.ball[0], self.ball[1]];
        self.last_touch = team;
        let to_goal = (d * hl - from[0]).abs();
        if to_goal < 28.0 && self.agents[holder].slot != 0 && self.rng.unit() < 0.35 {
            let to = [
                d * (hl + 1.5),
                self.rng
                    .range(-GOAL_WIDTH_M / 2.0 - 1.0, GOAL_WIDTH_M / 2.0 + 1.0),
            ];
            let duration = dist(from, to) / self.rng.range(18.0, 28.0);
            let peak = self.rng.range(0.2, 2.5);
            self.phase = Phase::Flight {
                receiver: None,
                from,
                to,
                t0: t,
                duration,
                peak,
                shot: true,
            };
            return;
        }
        let mut best = (f64::MIN, holder);
        for j in 0..self.agents.len() {
            let a = &self.agents[j];
            if j == holder || a.team != team || (a.slot == 0 && self.rng.unit() < 0.8) {
                continue;
            }
            let p = a.mover.pos;
            let length = dist(p, from);
            let openness = (0..self.agents.len())
                .filter(|&k| self.agents[k].team != team)
                .map(|k| dist(self.agents[k].mover.pos, p))
                .fold(f64::MAX, f64::min);
            let score = -(length - 18.0).abs() / 8.0
                + (p[0] - from[0]) * d / 20.0
                + openness.min(10.0) / 4.0
                + self.rng.range(0.0, 2.0);
            if score > best.0 {
                best = (score, j);
            }
        }
        let receiver = best.1;
        let r = &self.agents[receiver].mover;
        let lead = 0.8;
        let to = [r.pos[0] + r.vel[0] * lead, r.pos[1] + r.vel[1] * lead];
        let length = dist(from, to);
        let (duration, peak) = if length > 30.0 {
            let duration = 0.9 + length / 22.0;
            (duration, (9.81 * duration * duration / 8.0).min(18.0))
        } else {
            (length / self.rng.range(11.0, 18.0), 0.0)
        };
        self.phase = Phase::Flight {
            receiver: Some(receiver),
            from,
            to,
            t0: t,
            duration: duration.max(0.2),
            peak,
            shot: false,
        };
    }

    fn step(&mut self, t: f64, dt: f64) {
        let [hl, hw] = self.pitch.half_extents();
        let total = self.count as f64 / self.fps;
        if !self.switched && total >= 600.0 && t >= total / 2.0 {
            self.switched = true;
            self.attack = [-self.attack[0], -self.attack[1]];
            self.ball = [0.0; 3];
            self.ball_vel = [0.0; 3];
            let taker = self.nearest([0.0, 0.0], Some(1), None);
            self.phase = Phase::Restart {
                taker,
                ready_at: None,
            };
        }
        let possession = self.team_in_possession();
        let ball_xy = [self.ball[0], self.ball[1]];
        // Targets and speeds.
        let mut targets: Vec<([f64; 2], f64)> = (0..self.agents.len())
            .map(|i| {
                let a = self.anchor(i, t, possession);
                let gap = dist(a, self.agents[i].mover.pos);
                let speed = if gap > 12.0 {
                    7.0
                } else if gap > 4.0 {
                    4.5
                } else {
                    1.6
                };
                (a, speed)
            })
            .collect();
        for team in 0..2 {
            if possession != Some(team) {
                let first = self.nearest(ball_xy, Some(team), None);
                if self.agents[first].slot != 0 {
                    targets[first] = (ball_xy, 8.5);
                }
                if possession.is_none() || matches!(self.phase, Phase::Rolling) {
                    continue;
                }
                let second = self.nearest(ball_xy, Some(team), Some(first));
                if self.agents[second].slot != 0 {
                    let d = self.attack[team];
                    targets[second] = ([ball_xy[0] - d * 6.0, ball_xy[1] * 0.8], 6.0);
                }
            }
        }
        match self.phase {
            Phase::Held { holder, .. } => {
                let d = self.attack[self.agents[holder].team];
                let p = self.agents[holder].mover.pos;
                let weave = 4.0 * (t * 0.7 + holder as f64).sin();
                targets[holder] = (
                    [p[0] + d * 6.0, (p[1] + weave).clamp(-hw + 2.0, hw - 2.0)],
                    5.0,
                );
            }
            Phase::Flight {
                receiver: Some(r),
                to,
                ..
            } => targets[r] = (to, 8.0),
            Phase::Rolling => {
                for team in 0..2 {
                    let i = self.nearest(ball_xy, Some(team), None);
                    targets[i] = (ball_xy, 8.5);
                }
            }
            Phase::Restart { taker, .. } => targets[taker] = (ball_xy, 6.0),
            _ => {}
        }
        // Keep a little personal space.
        let positions: Vec<[f64; 2]> = self.agents.iter().map(|a| a.mover.pos).collect();
        for (i, (target, _)) in targets.iter_mut().enumerate() {
            let a = positions[i];
            for (j, b) in positions.iter().enumerate() {
                let gap = dist(a, *b);
                if i != j && gap < 1.3 && gap > 1e-6 {
                    let push = (1.3 - gap) * 2.0;
                    target[0] += (a[0] - b[0]) / gap * push;
                    target[1] += (a[1] - b[1]) / gap * push;
                }
            }
        }
        for (a, (target, speed)) in self.agents.iter_mut().zip(&targets) {
            let clamped = [
                target[0].clamp(-hl - 2.0, hl + 2.0),
                target[1].clamp(-hw - 2.0, hw + 2.0),
            ];
            a.mover.step(clamped, *speed, dt);
        }
        self.step_ball(t, dt);
    }

    fn step_ball(&mut self, t: f64, dt: f64) {
        let [hl, hw] = self.pitch.half_extents();
        let prev = self.ball;
        match self.phase {
            Phase::Held { holder, release_at } => {
                let m = self.agents[holder].mover;
                let speed = m.vel[0].hypot(m.vel[1]);
                let dir = if speed > 0.3 {
                    [m.vel[0] / speed, m.vel[1] / speed]
                } else {
                    [self.attack[self.agents[holder].team], 0.0]
                };
                self.ball = [m.pos[0] + dir[0] * 0.7, m.pos[1] + dir[1] * 0.7, 0.0];
                self.last_touch = self.agents[holder].team;
                let presser = self.nearest(m.pos, Some(1 - self.agents[holder].team), None);
                if dist(self.agents[presser].mover.pos, m.pos) < 1.2 && self.rng.unit() < 0.06 {
                    // Tackle: the ball squirts away.
                    let a = self.rng.range(0.0, std::f64::consts::TAU);
                    self.ball_vel = [a.cos() * 5.0, a.sin() * 5.0, 0.0];
                    self.last_touch = self.agents[presser].team;
                    self.phase = Phase::Rolling;
                    return;
                } else if t >= release_at {
                    self.release(holder, t);
                }
            }
            Phase::Flight {
                receiver,
                from,
                to,
                t0,
                duration,
                peak,
                shot,
            } => {
                let s = ((t - t0) / duration).clamp(0.0, 1.0);
                self.ball = [
                    from[0] + (to[0] - from[0]) * s,
                    from[1] + (to[1] - from[1]) * s,
                    4.0 * peak * s * (1.0 - s),
                ];
                if shot && self.ball[0].abs() >= hl {
                    // Saved or scored: the goalkeeper of the defending side restarts.
                    let keeper = (0..self.agents.len())
                        .find(|&i| {
                            self.agents[i].slot == 0 && self.agents[i].team != self.last_touch
                        })
                        .unwrap_or(0);
                    self.ball = [self.ball[0].clamp(-hl, hl), self.ball[1], 0.0];
                    self.phase = Phase::Restart {
                        taker: keeper,
                        ready_at: None,
                    };
                    self.ball_vel = [0.0; 3];
                    return;
                }
                // Interception by an opponent close to a low ball.
                if self.ball[2] < 1.6 && s > 0.15 {
                    for i in 0..self.agents.len() {
                        let near =
                            dist(self.agents[i].mover.pos, [self.ball[0], self.ball[1]]) < 1.0;
                        if near && self.agents[i].team != self.last_touch && self.rng.unit() < 0.2 {
                            self.gain(i, t);
                            return;
                        }
                    }
                }
                if s >= 1.0 {
                    let caught = receiver.filter(|&r| dist(self.agents[r].mover.pos, to) < 2.5);
                    match caught {
                        Some(r) => self.gain(r, t),
                        None => {
                            let d = dist(from, to).max(1e-6);
                            self.ball_vel = [
                                (to[0] - from[0]) / d * 4.0,
                                (to[1] - from[1]) / d * 4.0,
                                0.0,
                            ];
                            self.phase = Phase::Rolling;
                        }
                    }
                    return;
                }
            }
            Phase::Rolling => {
                let v = self.ball_vel[0].hypot(self.ball_vel[1]);
                let k = if v > 0.0 {
                    ((v - 2.0 * dt) / v).max(0.0)
                } else {
                    0.0
                };
                self.ball_vel = [self.ball_vel[0] * k, self.ball_vel[1] * k, 0.0];
                self.ball = [
                    self.ball[0] + self.ball_vel[0] * dt,
                    self.ball[1] + self.ball_vel[1] * dt,
                    0.0,
                ];
                let i = self.nearest([self.ball[0], self.ball[1]], None, None);
                if dist(self.agents[i].mover.pos, [self.ball[0], self.ball[1]]) < 0.9 {
                    self.gain(i, t);
                    return;
                }
            }
            Phase::Restart { taker, ready_at } => {
                match ready_at {
                    None if dist(self.agents[taker].mover.pos, [self.ball[0], self.ball[1]])
                        < 0.8 =>
                    {
                        self.phase = Phase::Restart {
                            taker,
                            ready_at: Some(t + 1.5),
                        };
                    }
                    Some(at) if t >= at => self.release(taker, t),
                    _ => {}
                }
                self.ball_vel = [0.0; 3];
                return;
            }
        }
        if self.ball[0].abs() > hl + 0.1 || self.ball[1].abs() > hw + 0.1 {
            // Out of play: the other team restarts from the line.
            self.ball = [
                self.ball[0].clamp(-hl, hl),
                self.ball[1].clamp(-hw, hw),
                0.0,
            ];
            let taker = self.nearest(
                [self.ball[0], self.ball[1]],
                Some(1 - self.last_touch),
                None,
            );
            self.phase = Phase::Restart {
                taker,
                ready_at: None,
            };
            self.ball_vel = [0.0; 3];
            return;
        }
        self.ball_vel = [
            (self.ball[0] - prev[0]) / dt,
            (self.ball[1] - prev[1]) / dt,
            (self.ball[2] - prev[2]) / dt,
        ];
    }

    fn gain(&mut self, i: usize, t: f64) {
        self.last_touch = self.agents[i].team;
        let hold = self.rng.range(0.5, 3.0);
        self.phase = Phase::Held {
            holder: i,
            release_at: t + hold,
        };
    }
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

impl Motion for ProceduralMotion {
    fn frame_count(&self) -> u64 {
        self.count
    }

    fn next_frame(&mut self) -> Option<FrameState> {
        if self.next >= self.count {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let dt = 1.0 / self.fps;
        let time_s = index as f64 * dt;
        if index > 0 {
            self.step(time_s, dt);
        }
        let mut people: Vec<PersonState> = self
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| PersonState {
                id: i as u32 + 1,
                pos: a.mover.pos,
                vel: a.mover.vel,
                stride_phase: 0.0,
            })
            .collect();
        let ball = BallState {
            pos: self.ball,
            vel: self.ball_vel,
        };
        let officials = self.officials.step(&people, Some(&ball), dt);
        people.extend(officials);
        if self.prev.len() == people.len() {
            advance_strides(&self.prev, &mut people, dt);
        }
        self.prev = people.clone();
        Some(FrameState {
            index,
            time_s,
            people,
            ball: Some(ball),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn players_move_like_people() {
        let fps = 25;
        let mut m = ProceduralMotion::new(PitchSize::default(), fps, 120.0, 7);
        let mut prev: Option<FrameState> = None;
        let mut max_speed: f64 = 0.0;
        let mut moving = 0usize;
        let mut samples = 0usize;
        while let Some(f) = m.next_frame() {
            for p in &f.people[..22] {
                let s = p.vel[0].hypot(p.vel[1]);
                max_speed = max_speed.max(s);
                moving += usize::from(s > 2.0);
                samples += 1;
                assert!(p.pos[0].abs() < 56.0 && p.pos[1].abs() < 38.0, "{p:?}");
            }
            if let (Some(prev), Some(b)) = (&prev, f.ball)
                && let Some(pb) = prev.ball
            {
                let jump = (b.pos[0] - pb.pos[0]).hypot(b.pos[1] - pb.pos[1]) * fps as f64;
                assert!(
                    jump < 40.0,
                    "ball jumped at {jump} m/s on frame {}",
                    f.index
                );
            }
            prev = Some(f);
        }
        assert!(
            max_speed > 6.0 && max_speed <= 9.5 + 1e-9,
            "top speed {max_speed}"
        );
        let share = moving as f64 / samples as f64;
        assert!(
            (0.1..0.9).contains(&share),
            "share of samples above 2 m/s: {share}"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_match() {
        let run = |seed| {
            let mut m = ProceduralMotion::new(PitchSize::default(), 25, 20.0, seed);
            std::iter::from_fn(|| m.next_frame())
                .map(|f| f.people[5].pos)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
