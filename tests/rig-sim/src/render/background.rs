//! The static part of each camera's view, rendered once by casting rays through every pixel.
//!
//! Each pixel averages 3×3 rays traced through the real lens (distortion included), so painted
//! lines are anti-aliased and bend exactly as the lens bends them. Rays hit, nearest first:
//! goal frames and nets, advertising boards, the ground (grass with mowing stripes and the
//! markings, then a gravel surround), a tree line 150 m out, and the sky.

use super::Image;
use crate::camera::Camera;
use polyvision_calibration::pitch::{GOAL_HEIGHT_M, GOAL_WIDTH_M};
use polyvision_calibration::{Marking, PitchSize};

/// The static scene around the pitch.
#[derive(Debug, Clone)]
pub struct Stadium {
    pitch: PitchSize,
    markings: Vec<Marking>,
    seed: u64,
}

const SUB: usize = 3;
const POST_RADIUS: f64 = 0.06;
const NET_DEPTH: f64 = 2.0;
const TREE_RADIUS: f64 = 150.0;
const BOARD_HEIGHT: f64 = 0.9;
const BOARD_COLOURS: [[f32; 3]; 5] = [
    [20.0, 60.0, 150.0],
    [200.0, 40.0, 40.0],
    [240.0, 190.0, 30.0],
    [30.0, 30.0, 30.0],
    [0.0, 130.0, 110.0],
];

impl Stadium {
    /// The pitch and its surroundings; `seed` varies the grass texture and the trees.
    pub fn new(pitch: PitchSize, seed: u64) -> Self {
        Stadium {
            pitch,
            markings: pitch.markings(),
            seed,
        }
    }

    /// Colour seen along a ray from `o` in direction `d` (unit), before the camera's gain.
    pub fn shade(&self, o: [f64; 3], d: [f64; 3]) -> [f32; 3] {
        let [hl, hw] = self.pitch.half_extents();
        let mut best = f64::INFINITY;
        let mut colour = self.sky(d);

        // Tree line: a vertical cylinder around the pitch.
        let (a, b, c) = (
            d[0] * d[0] + d[1] * d[1],
            2.0 * (o[0] * d[0] + o[1] * d[1]),
            o[0] * o[0] + o[1] * o[1] - TREE_RADIUS * TREE_RADIUS,
        );
        let disc = b * b - 4.0 * a * c;
        if a > 1e-12 && disc > 0.0 {
            let t = (-b + disc.sqrt()) / (2.0 * a);
            let p = at(o, d, t);
            let angle = p[1].atan2(p[0]);
            let top = 13.0
                + 7.0 * noise1(angle * 40.0, self.seed)
                + 3.0 * noise1(angle * 160.0, self.seed + 1);
            if t > 0.0 && p[2] < top {
                best = t;
                let n = noise2(p[0] * 0.4 + p[2], p[1] * 0.4 + p[2] * 0.7, self.seed + 2) as f32;
                colour = [34.0 + 10.0 * n, 62.0 + 16.0 * n, 34.0 + 8.0 * n];
            }
        }

        // Ground; what lies beyond the tree line is distant woodland in haze.
        if d[2] < -1e-9 {
            let t = -o[2] / d[2];
            if t < best {
                best = t;
                let p = at(o, d, t);
                colour = if p[0].hypot(p[1]) > TREE_RADIUS {
                    let n = noise2(p[0] * 0.05, p[1] * 0.05, self.seed + 7) as f32;
                    [70.0 + 8.0 * n, 92.0 + 10.0 * n, 78.0 + 6.0 * n]
                } else {
                    self.ground(p)
                };
            }
        }

        // Advertising boards: along the far touchline and behind both goals.
        let boards = [
            (1usize, hw + 4.0, -hl + 2.0, hl - 2.0),
            (0usize, hl + 4.5, -hw + 6.0, hw - 6.0),
            (0usize, -(hl + 4.5), -hw + 6.0, hw - 6.0),
        ];
        for (axis, plane, lo, hi) in boards {
            if d[axis].abs() < 1e-12 {
                continue;
            }
            let t = (plane - o[axis]) / d[axis];
            if t <= 0.0 || t >= best {
                continue;
            }
            let p = at(o, d, t);
            let along = p[1 - axis];
            if p[2] >= 0.0 && p[2] <= BOARD_HEIGHT && along >= lo && along <= hi {
                best = t;
                let panel = ((along - lo) / 6.0).floor() as usize;
                let base = BOARD_COLOURS[(panel + axis * 2) % BOARD_COLOURS.len()];
                let within = (along - lo) / 6.0 - panel as f64;
                let lettering = p[2] > 0.3
                    && p[2] < 0.6
                    && within > 0.2
                    && within < 0.8
                    && ((within * 30.0) as i32) % 3 != 0;
                colour = if lettering {
                    [245.0, 245.0, 240.0]
                } else {
                    base
                };
            }
        }

        // Goal frames and nets.
        let post_y = GOAL_WIDTH_M / 2.0 + POST_RADIUS;
        let bar_z = GOAL_HEIGHT_M + POST_RADIUS;
        for side in [-1.0, 1.0] {
            let gx = side * (hl + POST_RADIUS);
            for py in [-post_y, post_y] {
                if let Some(t) = vertical_cylinder(o, d, [gx, py], POST_RADIUS)
                    && t < best
                    && (0.0..=bar_z + POST_RADIUS).contains(&at(o, d, t)[2])
                {
                    best = t;
                    colour = [250.0, 250.0, 250.0];
                }
            }
            if let Some(t) = bar_cylinder(o, d, gx, bar_z, POST_RADIUS)
                && t < best
                && at(o, d, t)[1].abs() <= post_y
            {
                best = t;
                colour = [250.0, 250.0, 250.0];
            }
            // Net: back, top and two sides of a box behind the goal line.
            let back = side * (hl + NET_DEPTH);
            let planes = [
                (0usize, back),
                (2usize, GOAL_HEIGHT_M),
                (1usize, GOAL_WIDTH_M / 2.0),
                (1usize, -GOAL_WIDTH_M / 2.0),
            ];
            for (axis, plane) in planes {
                if d[axis].abs() < 1e-12 {
                    continue;
                }
                let t = (plane - o[axis]) / d[axis];
                if t <= 0.0 || t >= best {
                    continue;
                }
                let p = at(o, d, t);
                let depth = (p[0] - side * hl) * side;
                let inside = (0.0..=NET_DEPTH).contains(&depth)
                    && p[1].abs() <= GOAL_WIDTH_M / 2.0 + 1e-9
                    && (0.0..=GOAL_HEIGHT_M + 1e-9).contains(&p[2]);
                if inside {
                    let (u, v) = match axis {
                        0 => (p[1], p[2]),
                        1 => (p[0], p[2]),
                        _ => (p[0], p[1]),
                    };
                    let thread = |x: f64| (x / 0.12).rem_euclid(1.0) < 0.2;
                    if thread(u) || thread(v) {
                        best = t;
                        colour = [215.0, 215.0, 215.0];
                    }
                }
            }
        }
        colour
    }

    fn sky(&self, d: [f64; 3]) -> [f32; 3] {
        let up = d[2].clamp(0.0, 1.0) as f32;
        let k = up.powf(0.6);
        [205.0 - 90.0 * k, 218.0 - 65.0 * k, 232.0 - 20.0 * k]
    }

    fn ground(&self, p: [f64; 3]) -> [f32; 3] {
        let [hl, hw] = self.pitch.half_extents();
        let (x, y) = (p[0], p[1]);
        if x.abs() > hl + 8.0 || y.abs() > hw + 8.0 {
            // A running track around the pitch, then rough grass.
            let ring = (x.abs() - hl - 8.0).max(y.abs() - hw - 8.0);
            let n = noise2(x * 1.5, y * 1.5, self.seed + 3) as f32;
            if ring < 7.0 {
                return [150.0 + 10.0 * n, 80.0 + 6.0 * n, 62.0 + 5.0 * n];
            }
            let m = noise2(x * 0.2, y * 0.2, self.seed + 8) as f32;
            return [
                62.0 + 8.0 * n + 6.0 * m,
                100.0 + 10.0 * n + 8.0 * m,
                48.0 + 6.0 * n,
            ];
        }
        if self.pitch.paint_distance(&self.markings, [x, y]) < 0.0 {
            let n = noise2(x * 3.0, y * 3.0, self.seed + 4) as f32;
            return [232.0 + 8.0 * n, 236.0 + 8.0 * n, 230.0 + 8.0 * n];
        }
        // Mowing stripes across the pitch, 18 over its length.
        let stripe =
            (((x + hl) / (self.pitch.length_m / 18.0)).floor() as i64).rem_euclid(2) as f32;
        let coarse = noise2(x * 0.15, y * 0.15, self.seed + 5) as f32;
        let fine = noise2(x * 2.5, y * 2.5, self.seed + 6) as f32;
        let light = 1.0 + 0.09 * (stripe * 2.0 - 1.0) + 0.05 * coarse + 0.03 * fine;
        [52.0 * light, 124.0 * light, 46.0 * light]
    }
}

fn at(o: [f64; 3], d: [f64; 3], t: f64) -> [f64; 3] {
    [o[0] + d[0] * t, o[1] + d[1] * t, o[2] + d[2] * t]
}

/// Nearest positive hit of a ray with an infinite vertical cylinder.
fn vertical_cylinder(o: [f64; 3], d: [f64; 3], c: [f64; 2], r: f64) -> Option<f64> {
    let (ox, oy) = (o[0] - c[0], o[1] - c[1]);
    let a = d[0] * d[0] + d[1] * d[1];
    let b = 2.0 * (ox * d[0] + oy * d[1]);
    let cc = ox * ox + oy * oy - r * r;
    let disc = b * b - 4.0 * a * cc;
    (a > 1e-12 && disc >= 0.0)
        .then(|| (-b - disc.sqrt()) / (2.0 * a))
        .filter(|t| *t > 0.0)
}

/// Nearest positive hit of a ray with an infinite cylinder along y at (x, z).
fn bar_cylinder(o: [f64; 3], d: [f64; 3], x: f64, z: f64, r: f64) -> Option<f64> {
    let (ox, oz) = (o[0] - x, o[2] - z);
    let a = d[0] * d[0] + d[2] * d[2];
    let b = 2.0 * (ox * d[0] + oz * d[2]);
    let cc = ox * ox + oz * oz - r * r;
    let disc = b * b - 4.0 * a * cc;
    (a > 1e-12 && disc >= 0.0)
        .then(|| (-b - disc.sqrt()) / (2.0 * a))
        .filter(|t| *t > 0.0)
}

fn hash(x: i64, y: i64, seed: u64) -> f64 {
    let mut h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ seed;
    h ^= h >> 31;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 29;
    (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Smooth value noise in [−1, 1] on a unit lattice.
pub(crate) fn noise2(x: f64, y: f64, seed: u64) -> f64 {
    let (xi, yi) = (x.floor(), y.floor());
    let (fx, fy) = (x - xi, y - yi);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let (xi, yi) = (xi as i64, yi as i64);
    let top = hash(xi, yi, seed) * (1.0 - sx) + hash(xi + 1, yi, seed) * sx;
    let bottom = hash(xi, yi + 1, seed) * (1.0 - sx) + hash(xi + 1, yi + 1, seed) * sx;
    top * (1.0 - sy) + bottom * sy
}

fn noise1(x: f64, seed: u64) -> f64 {
    noise2(x, 0.5, seed)
}

/// Renders what `camera` sees of a static scene given by `shade(origin, direction)`, averaging
/// 3×3 rays per pixel, on all available cores, then applies the camera's gain.
pub fn render_static(
    camera: &Camera,
    shade: &(dyn Fn([f64; 3], [f64; 3]) -> [f32; 3] + Sync),
) -> Image {
    let mut image = Image::new(camera.width, camera.height);
    let width = camera.width as usize;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let rows_per = (camera.height as usize).div_ceil(threads * 8).max(1);
    let chunks: Vec<(usize, &mut [u8])> = image
        .rgba
        .chunks_mut(width * 4 * rows_per)
        .enumerate()
        .map(|(i, c)| (i * rows_per, c))
        .collect();
    let queue = std::sync::Mutex::new(chunks);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let job = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some((row0, chunk)) = job else { break };
                    for (r, row) in chunk.chunks_mut(width * 4).enumerate() {
                        let v = (row0 + r) as f64;
                        for (u, px) in row.chunks_exact_mut(4).enumerate() {
                            let mut sum = [0.0f32; 3];
                            for sy in 0..SUB {
                                for sx in 0..SUB {
                                    let p = [
                                        u as f64 + (sx as f64 + 0.5) / SUB as f64,
                                        v + (sy as f64 + 0.5) / SUB as f64,
                                    ];
                                    let c = match camera.ray(p) {
                                        Some(d) => shade(camera.position, d),
                                        None => [0.0; 3],
                                    };
                                    for k in 0..3 {
                                        sum[k] += c[k];
                                    }
                                }
                            }
                            for k in 0..3 {
                                let v = sum[k] / (SUB * SUB) as f32 * camera.gain[k] as f32;
                                px[k] = v.round().clamp(0.0, 255.0) as u8;
                            }
                        }
                    }
                }
            });
        }
    });
    image
}

/// The camera's view of the stadium.
pub fn render_background(camera: &Camera, stadium: &Stadium) -> Image {
    render_static(camera, &|o, d| stadium.shade(o, d))
}
