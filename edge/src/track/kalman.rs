//! A constant-velocity Kalman filter on the pitch, with white-noise acceleration.
//!
//! State `(x, y, vx, vy)` in metres and metres per second. Footballers stop, turn and sprint
//! off: the acceleration noise is large (σₐ, default 6 m/s², about a hard sprint start), so the
//! filter follows a turn within a few frames, and measurement noise comes per detection from
//! the view's geometry (a pixel on the far touchline is many times a pixel on the near one).
// Matrix arithmetic reads best with indices.
#![allow(clippy::needless_range_loop)]

/// A 4×4 matrix.
type M4 = [[f64; 4]; 4];

/// The filter's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kalman {
    /// `(x, y, vx, vy)`.
    pub x: [f64; 4],
    /// Covariance.
    pub p: M4,
}

impl Kalman {
    /// Starts at `pos` with unknown velocity (σ 4 m/s) and the measurement's covariance.
    pub fn new(pos: [f64; 2], r: [[f64; 2]; 2]) -> Self {
        let v = 16.0;
        Kalman {
            x: [pos[0], pos[1], 0.0, 0.0],
            p: [
                [r[0][0], r[0][1], 0.0, 0.0],
                [r[1][0], r[1][1], 0.0, 0.0],
                [0.0, 0.0, v, 0.0],
                [0.0, 0.0, 0.0, v],
            ],
        }
    }

    /// Moves the state `dt` seconds on with acceleration noise `sigma_a` (m/s²).
    pub fn predict(&mut self, dt: f64, sigma_a: f64) {
        let x = self.x;
        self.x = [x[0] + dt * x[2], x[1] + dt * x[3], x[2], x[3]];
        let q = sigma_a * sigma_a;
        let (t2, t3, t4) = (dt * dt, dt * dt * dt / 2.0, dt.powi(4) / 4.0);
        let qm: M4 = [
            [t4 * q, 0.0, t3 * q, 0.0],
            [0.0, t4 * q, 0.0, t3 * q],
            [t3 * q, 0.0, t2 * q, 0.0],
            [0.0, t3 * q, 0.0, t2 * q],
        ];
        // F·P·Fᵀ written out for F = [[I, dt·I], [0, I]] (the general product showed in
        // profiles).
        let p = self.p;
        let mut n = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                // (F·P)[i][j]
                let fp = |i: usize, j: usize| {
                    if i < 2 {
                        p[i][j] + dt * p[i + 2][j]
                    } else {
                        p[i][j]
                    }
                };
                n[i][j] = if j < 2 {
                    fp(i, j) + dt * fp(i, j + 2)
                } else {
                    fp(i, j)
                } + qm[i][j];
            }
        }
        let p = n;
        self.p = p;
    }

    /// Innovation `z − Hx` and its covariance `S = HPHᵀ + R`.
    pub fn innovation(&self, z: [f64; 2], r: [[f64; 2]; 2]) -> ([f64; 2], [[f64; 2]; 2]) {
        let nu = [z[0] - self.x[0], z[1] - self.x[1]];
        let s = [
            [self.p[0][0] + r[0][0], self.p[0][1] + r[0][1]],
            [self.p[1][0] + r[1][0], self.p[1][1] + r[1][1]],
        ];
        (nu, s)
    }

    /// Squared Mahalanobis distance of a measurement from the prediction.
    pub fn mahalanobis2(&self, z: [f64; 2], r: [[f64; 2]; 2]) -> f64 {
        let (nu, s) = self.innovation(z, r);
        let det = s[0][0] * s[1][1] - s[0][1] * s[1][0];
        if det <= 0.0 {
            return f64::INFINITY;
        }
        (nu[0] * (s[1][1] * nu[0] - s[0][1] * nu[1]) + nu[1] * (s[0][0] * nu[1] - s[1][0] * nu[0]))
            / det
    }

    /// Folds in a position measurement with covariance `r`.
    pub fn update(&mut self, z: [f64; 2], r: [[f64; 2]; 2]) {
        let (nu, s) = self.innovation(z, r);
        let det = s[0][0] * s[1][1] - s[0][1] * s[1][0];
        if det <= 0.0 {
            return;
        }
        let si = [
            [s[1][1] / det, -s[0][1] / det],
            [-s[1][0] / det, s[0][0] / det],
        ];
        // K = P Hᵀ S⁻¹ (4×2): P's first two columns times S⁻¹.
        let mut k = [[0.0; 2]; 4];
        for (i, row) in k.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = self.p[i][0] * si[0][j] + self.p[i][1] * si[1][j];
            }
        }
        for (i, row) in k.iter().enumerate() {
            self.x[i] += row[0] * nu[0] + row[1] * nu[1];
        }
        // P = (I − K H) P
        let p = self.p;
        for i in 0..4 {
            for j in 0..4 {
                self.p[i][j] = p[i][j] - k[i][0] * p[0][j] - k[i][1] * p[1][j];
            }
        }
    }

    /// Position.
    pub fn position(&self) -> [f64; 2] {
        [self.x[0], self.x[1]]
    }

    /// Velocity.
    pub fn velocity(&self) -> [f64; 2] {
        [self.x[2], self.x[3]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_runner_and_learns_the_velocity() {
        let r = [[0.01, 0.0], [0.0, 0.01]];
        let mut k = Kalman::new([0.0, 0.0], r);
        let dt = 0.04;
        for i in 1..=50 {
            k.predict(dt, 6.0);
            k.update([5.0 * dt * i as f64, 0.0], r);
        }
        assert!((k.velocity()[0] - 5.0).abs() < 0.2, "{:?}", k.velocity());
        assert!((k.position()[0] - 10.0).abs() < 0.05, "{:?}", k.position());
        assert!(k.mahalanobis2([10.2, 0.0], r) < k.mahalanobis2([12.0, 0.0], r));
    }
}
