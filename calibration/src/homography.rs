//! Plane-to-plane projective maps.

use serde::{Deserialize, Serialize};

/// Errors from geometric constructions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GeometryError {
    /// A matrix entry is NaN or infinite.
    #[error("matrix entry [{row}][{col}] is not a finite number")]
    NonFinite {
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
    },
    /// The matrix cannot be inverted, so it does not describe a plane-to-plane map.
    #[error("matrix is singular (determinant {determinant:e})")]
    Singular {
        /// The determinant after scaling the matrix to unit Frobenius norm.
        determinant: f64,
    },
}

/// A 3×3 projective transform of the plane, stored row-major.
///
/// `apply([x, y])` computes `H · (x, y, 1)ᵀ` and divides by the third coordinate. The matrix is
/// kept as given (no normalisation), so that serialising and reading back is exact.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "[[f64; 3]; 3]", into = "[[f64; 3]; 3]")]
pub struct Homography {
    m: [[f64; 3]; 3],
}

impl Homography {
    /// The identity map.
    pub const IDENTITY: Homography = Homography {
        m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    };

    /// Builds a homography from its rows; fails on non-finite entries or a singular matrix.
    pub fn from_rows(m: [[f64; 3]; 3]) -> Result<Self, GeometryError> {
        for (row, r) in m.iter().enumerate() {
            for (col, v) in r.iter().enumerate() {
                if !v.is_finite() {
                    return Err(GeometryError::NonFinite { row, col });
                }
            }
        }
        let norm = m.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
        let determinant = if norm > 0.0 {
            det3(&m) / norm.powi(3)
        } else {
            0.0
        };
        if determinant.abs() < 1e-14 {
            return Err(GeometryError::Singular { determinant });
        }
        Ok(Homography { m })
    }

    /// The matrix rows.
    pub fn rows(&self) -> [[f64; 3]; 3] {
        self.m
    }

    /// Maps a point; `None` when it maps to infinity (on the horizon line of the map).
    pub fn apply(&self, p: [f64; 2]) -> Option<[f64; 2]> {
        let m = &self.m;
        let x = m[0][0] * p[0] + m[0][1] * p[1] + m[0][2];
        let y = m[1][0] * p[0] + m[1][1] * p[1] + m[1][2];
        let w = m[2][0] * p[0] + m[2][1] * p[1] + m[2][2];
        if w.abs() < 1e-12 {
            return None;
        }
        Some([x / w, y / w])
    }

    /// The inverse map.
    pub fn inverse(&self) -> Homography {
        let m = &self.m;
        // Adjugate over determinant; the determinant is non-zero by construction.
        let det = det3(m);
        let c = |r0: usize, r1: usize, c0: usize, c1: usize| {
            m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
        };
        let adj = [
            [c(1, 2, 1, 2), -c(0, 2, 1, 2), c(0, 1, 1, 2)],
            [-c(1, 2, 0, 2), c(0, 2, 0, 2), -c(0, 1, 0, 2)],
            [c(1, 2, 0, 1), -c(0, 2, 0, 1), c(0, 1, 0, 1)],
        ];
        let mut inv = [[0.0; 3]; 3];
        for (r, row) in adj.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                inv[r][c] = v / det;
            }
        }
        Homography { m: inv }.normalized()
    }

    /// The composition `self ∘ other`: first `other`, then `self`.
    pub fn compose(&self, other: &Homography) -> Homography {
        let mut out = [[0.0; 3]; 3];
        for (r, row) in out.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|k| self.m[r][k] * other.m[k][c]).sum();
            }
        }
        Homography { m: out }.normalized()
    }

    /// The same map scaled so that the bottom-right entry is 1 (when it is not near zero).
    pub fn normalized(&self) -> Homography {
        let s = self.m[2][2];
        if s.abs() < 1e-12 {
            return *self;
        }
        let mut m = self.m;
        m.iter_mut().flatten().for_each(|v| *v /= s);
        Homography { m }
    }
}

fn det3(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

impl TryFrom<[[f64; 3]; 3]> for Homography {
    type Error = GeometryError;
    fn try_from(m: [[f64; 3]; 3]) -> Result<Self, Self::Error> {
        Homography::from_rows(m)
    }
}

impl From<Homography> for [[f64; 3]; 3] {
    fn from(h: Homography) -> Self {
        h.m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Homography {
        Homography::from_rows([[1.2, 0.1, -30.0], [-0.05, 0.9, 12.0], [0.0004, 0.0011, 1.0]])
            .expect("valid")
    }

    #[test]
    fn inverse_round_trips_points() {
        let h = sample();
        let inv = h.inverse();
        for p in [[0.0, 0.0], [640.0, 360.0], [1279.0, 719.0], [-50.0, 900.0]] {
            let q = inv.apply(h.apply(p).expect("finite")).expect("finite");
            assert!(
                (q[0] - p[0]).abs() < 1e-9 && (q[1] - p[1]).abs() < 1e-9,
                "{p:?} -> {q:?}"
            );
        }
    }

    #[test]
    fn compose_matches_sequential_application() {
        let h = sample();
        let g = h.inverse().compose(
            &Homography::from_rows([[2.0, 0.0, 1.0], [0.0, 2.0, -3.0], [0.0, 0.0, 1.0]])
                .expect("valid"),
        );
        let p = [12.5, -7.25];
        let direct = g.apply(p).expect("finite");
        let step = h
            .inverse()
            .apply([2.0 * p[0] + 1.0, 2.0 * p[1] - 3.0])
            .expect("finite");
        assert!((direct[0] - step[0]).abs() < 1e-9 && (direct[1] - step[1]).abs() < 1e-9);
    }

    #[test]
    fn rejects_singular_and_non_finite() {
        assert!(matches!(
            Homography::from_rows([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 1.0]]),
            Err(GeometryError::Singular { .. })
        ));
        assert_eq!(
            Homography::from_rows([[1.0, 0.0, 0.0], [0.0, f64::NAN, 0.0], [0.0, 0.0, 1.0]]),
            Err(GeometryError::NonFinite { row: 1, col: 1 })
        );
    }
}
