//! Where everyone is on every frame: real Metrica trajectories or a procedural match.
//!
//! Both sources produce a [`FrameState`] per frame at the rig's frame rate. The officials
//! (referee and two assistants) are not in the Metrica data and are always driven by
//! [`Officials`], which follows the ball and the offside lines like real officials do.

pub mod metrica;
pub mod procedural;

use crate::scene::{BallState, FrameState, PersonState};
use polyvision_calibration::PitchSize;

/// A source of frames.
pub trait Motion {
    /// Number of frames this source produces.
    fn frame_count(&self) -> u64;
    /// The next frame; `None` after the last.
    fn next_frame(&mut self) -> Option<FrameState>;
}

/// A body that runs towards a target with limited speed, acceleration and braking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mover {
    /// Position, metres.
    pub pos: [f64; 2],
    /// Velocity, metres per second.
    pub vel: [f64; 2],
    /// Top speed, metres per second.
    pub max_speed: f64,
    /// Largest speed-up, m/s².
    pub max_accel: f64,
    /// Largest braking, m/s².
    pub max_decel: f64,
}

impl Mover {
    /// A body at rest.
    pub fn at(pos: [f64; 2], max_speed: f64) -> Self {
        Mover {
            pos,
            vel: [0.0, 0.0],
            max_speed,
            max_accel: 3.5,
            max_decel: 5.5,
        }
    }

    /// One step of `dt` seconds towards `target`, at no more than `speed`, arriving at rest.
    pub fn step(&mut self, target: [f64; 2], speed: f64, dt: f64) {
        let (dx, dy) = (target[0] - self.pos[0], target[1] - self.pos[1]);
        let dist = dx.hypot(dy);
        let want_speed = if dist < 0.05 {
            0.0
        } else {
            speed
                .min(self.max_speed)
                .min((2.0 * self.max_decel * 0.8 * dist).sqrt())
        };
        let want = if dist < 1e-9 {
            [0.0, 0.0]
        } else {
            [dx / dist * want_speed, dy / dist * want_speed]
        };
        let (ax, ay) = (want[0] - self.vel[0], want[1] - self.vel[1]);
        let cur = self.vel[0].hypot(self.vel[1]);
        let limit = if want_speed < cur {
            self.max_decel
        } else {
            self.max_accel
        } * dt;
        let a = ax.hypot(ay);
        let k = if a > limit { limit / a } else { 1.0 };
        self.vel = [self.vel[0] + ax * k, self.vel[1] + ay * k];
        self.pos = [
            self.pos[0] + self.vel[0] * dt,
            self.pos[1] + self.vel[1] * dt,
        ];
    }
}

/// The referee and two assistant referees (ids 23, 24, 25).
#[derive(Debug, Clone)]
pub struct Officials {
    referee: Mover,
    near_assistant: Mover,
    far_assistant: Mover,
    pitch: PitchSize,
}

impl Officials {
    /// Officials at their kick-off positions.
    pub fn new(pitch: PitchSize) -> Self {
        let [hl, hw] = pitch.half_extents();
        Officials {
            referee: Mover::at([-6.0, -8.0], 7.5),
            near_assistant: Mover::at([-hl / 4.0, -hw - 1.2], 7.5),
            far_assistant: Mover::at([hl / 4.0, hw + 1.2], 7.5),
            pitch,
        }
    }

    /// One step: the referee keeps the ball at a diagonal 10–15 m away; each assistant runs
    /// level with the second-last defender or the ball on their half, outside their touchline.
    ///
    /// `players` are the 22 players (home then away); the goalkeepers tell which goal each team
    /// defends.
    pub fn step(
        &mut self,
        players: &[PersonState],
        ball: Option<&BallState>,
        dt: f64,
    ) -> [PersonState; 3] {
        let [hl, hw] = self.pitch.half_extents();
        let ball_xy = ball.map(|b| [b.pos[0], b.pos[1]]).unwrap_or([0.0, 0.0]);
        let ref_target = [
            (ball_xy[0] - 8.0).clamp(-hl + 8.0, hl - 8.0),
            (ball_xy[1] - 9.0 * ball_xy[1].signum().max(0.5)).clamp(-hw + 4.0, hw - 4.0),
        ];
        let dist = (ref_target[0] - self.referee.pos[0]).hypot(ref_target[1] - self.referee.pos[1]);
        // Run to catch up, jog or walk when close enough: referees cover 11–12 km a match.
        let speed = if dist > 20.0 {
            6.0
        } else if dist > 10.0 {
            3.0
        } else {
            1.2
        };
        self.referee.step(ref_target, speed, dt);

        // Second-last defender of the team defending the goal at +x, and at −x.
        let (home, away) = players.split_at(players.len().min(11));
        let home_defends_right = home.first().map(|gk| gk.pos[0] > 0.0).unwrap_or(false);
        let (right_def, left_def) = if home_defends_right {
            (home, away)
        } else {
            (away, home)
        };
        let mut xs: Vec<f64> = right_def.iter().map(|p| p.pos[0]).collect();
        xs.sort_by(|a, b| b.total_cmp(a));
        let offside_right = xs
            .get(1)
            .copied()
            .unwrap_or(0.0)
            .max(ball_xy[0])
            .clamp(0.0, hl);
        let mut xs: Vec<f64> = left_def.iter().map(|p| p.pos[0]).collect();
        xs.sort_by(|a, b| a.total_cmp(b));
        let offside_left = xs
            .get(1)
            .copied()
            .unwrap_or(0.0)
            .min(ball_xy[0])
            .clamp(-hl, 0.0);
        self.far_assistant.step([offside_right, hw + 1.2], 7.0, dt);
        self.near_assistant.step([offside_left, -hw - 1.2], 7.0, dt);
        let st = |id, m: &Mover| PersonState {
            id,
            pos: m.pos,
            vel: m.vel,
            stride_phase: 0.0,
        };
        [
            st(23, &self.referee),
            st(24, &self.near_assistant),
            st(25, &self.far_assistant),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mover_respects_speed_and_acceleration() {
        let mut m = Mover::at([0.0, 0.0], 8.0);
        let dt = 0.04;
        let mut prev_speed: f64 = 0.0;
        for _ in 0..200 {
            m.step([100.0, 0.0], 20.0, dt);
            let s = m.vel[0].hypot(m.vel[1]);
            assert!(s <= 8.0 + 1e-9);
            assert!(s - prev_speed <= m.max_accel * dt + 1e-9);
            prev_speed = s;
        }
        // It stops at a close target instead of overshooting far.
        for _ in 0..400 {
            m.step([60.0, 0.0], 20.0, dt);
        }
        assert!((m.pos[0] - 60.0).abs() < 0.5, "{:?}", m.pos);
    }
}
