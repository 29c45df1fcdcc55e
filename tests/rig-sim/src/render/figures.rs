//! The moving objects: people as upright figures, the ball with motion blur, and their shadows.
//!
//! A person is a set of flat parts (legs, shorts, shirt, arms, neck, head) on a vertical plane
//! through their position that faces the camera. Each part's corners are placed in 3-D and
//! projected through the full camera model, lens included, so sizes and perspective are exact
//! and the truth box is the box of what is drawn. Legs and arms swing with the stride phase in
//! the direction of running, so a player running across the view opens their stride and one
//! running towards the camera does not. Objects are drawn far to near (painter's order).

use super::{Canvas, Paint};
use crate::camera::{Camera, normalize};
use crate::scene::{BALL_ID, BALL_RADIUS_M, Cast, FrameState, Person, Rgb};

/// Where an object ended up in one view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectView {
    /// Object id.
    pub id: u32,
    /// Box of everything drawn for the object, `[left, top, right, bottom]` in pixels, not
    /// clipped to the image.
    pub bbox: [f64; 4],
    /// Fraction of the object that can be seen: not hidden by nearer objects and inside the
    /// image.
    pub visibility: f64,
}

/// Direction of the sun's shadows on the ground (unit, pitch metres).
const SUN_SHADOW: [f64; 2] = [0.55, 0.83];

fn paint(camera: &Camera, c: Rgb, alpha: f32, id: u32) -> Paint {
    Paint {
        colour: [0, 1, 2].map(|k| (c[k] as f64 * camera.gain[k]).min(255.0) as f32),
        alpha,
        id: id as u16,
    }
}

struct Figure {
    id: u32,
    depth: f64,
    parts: Vec<Part>,
    discs: Vec<([f64; 2], f64, Rgb)>,
}

struct Frame3 {
    pos: [f64; 3],
    side: [f64; 3],
    fwd: [f64; 3],
}

impl Frame3 {
    fn at(&self, s: f64, f: f64, up: f64) -> [f64; 3] {
        [
            self.pos[0] + self.side[0] * s + self.fwd[0] * f,
            self.pos[1] + self.side[1] * s + self.fwd[1] * f,
            self.pos[2] + up,
        ]
    }
}

type Part = (Vec<[f64; 2]>, Rgb);

/// A limb from `a` to `b`, `w` wide in the figure's plane, cut into colour bands at fractions of
/// its length.
fn limb(
    camera: &Camera,
    side: [f64; 3],
    parts: &mut Vec<Part>,
    a: [f64; 3],
    b: [f64; 3],
    w: f64,
    bands: &[(f64, f64, Rgb)],
) -> Option<()> {
    let lerp = |t: f64| {
        [
            a[0] + (b[0] - a[0]) * t,
            a[1] + (b[1] - a[1]) * t,
            a[2] + (b[2] - a[2]) * t,
        ]
    };
    let off = [side[0] * w / 2.0, side[1] * w / 2.0];
    for &(t0, t1, colour) in bands {
        let (p0, p1) = (lerp(t0), lerp(t1));
        let quad = vec![
            camera.project([p0[0] - off[0], p0[1] - off[1], p0[2]])?,
            camera.project([p0[0] + off[0], p0[1] + off[1], p0[2]])?,
            camera.project([p1[0] + off[0], p1[1] + off[1], p1[2]])?,
            camera.project([p1[0] - off[0], p1[1] - off[1], p1[2]])?,
        ];
        parts.push((quad, colour));
    }
    Some(())
}

fn person_figure(
    camera: &Camera,
    person: &Person,
    pos: [f64; 2],
    vel: [f64; 2],
    phase: f64,
) -> Option<Figure> {
    let h = person.height_m;
    let b = person.build;
    let to_cam = normalize([
        camera.position[0] - pos[0],
        camera.position[1] - pos[1],
        0.0,
    ]);
    let side = [-to_cam[1], to_cam[0], 0.0];
    let speed = vel[0].hypot(vel[1]);
    let fwd = if speed > 0.2 {
        [vel[0] / speed, vel[1] / speed, 0.0]
    } else {
        [0.0; 3]
    };
    let f3 = Frame3 {
        pos: [pos[0], pos[1], 0.0],
        side,
        fwd,
    };
    let depth = camera.to_camera(f3.at(0.0, 0.0, h * 0.5))[2];
    if depth < 0.5 {
        return None;
    }
    let swing = phase.sin() * 0.2 * h * (speed / 5.0).min(1.0);
    let proj = |p: [f64; 3]| camera.project(p);
    let mut parts: Vec<Part> = Vec::new();
    let look = person.look;
    let leg_bands = [
        (0.0, 0.07, look.boots),
        (0.07, 0.52, look.socks),
        (0.52, 0.78, look.skin),
        (0.78, 1.0, look.shorts),
    ];
    for s in [-1.0, 1.0] {
        let foot = f3.at(s * 0.05 * h * b, s * swing, 0.0);
        let hip = f3.at(s * 0.055 * h * b, 0.0, 0.5 * h);
        limb(
            camera,
            side,
            &mut parts,
            foot,
            hip,
            0.075 * h * b,
            &leg_bands,
        )?;
    }
    let trapezoid = |z0: f64, z1: f64, w0: f64, w1: f64| -> Option<Vec<[f64; 2]>> {
        Some(vec![
            proj(f3.at(-w0 / 2.0, 0.0, z0))?,
            proj(f3.at(w0 / 2.0, 0.0, z0))?,
            proj(f3.at(w1 / 2.0, 0.0, z1))?,
            proj(f3.at(-w1 / 2.0, 0.0, z1))?,
        ])
    };
    parts.push((
        trapezoid(0.42 * h, 0.56 * h, 0.25 * h * b, 0.24 * h * b)?,
        look.shorts,
    ));
    parts.push((
        trapezoid(0.54 * h, 0.81 * h, 0.235 * h * b, 0.28 * h * b)?,
        look.shirt,
    ));
    parts.push((
        trapezoid(0.80 * h, 0.86 * h, 0.07 * h, 0.065 * h)?,
        look.skin,
    ));
    let arm_bands = [(0.0, 0.35, look.shirt), (0.35, 1.0, look.skin)];
    for s in [-1.0, 1.0] {
        let shoulder = f3.at(s * 0.148 * h * b, 0.0, 0.79 * h);
        let hand = f3.at(s * 0.175 * h * b, -s * swing * 0.7, 0.47 * h);
        limb(
            camera,
            side,
            &mut parts,
            shoulder,
            hand,
            0.052 * h * b,
            &arm_bands,
        )?;
    }
    let head = |z: f64, r: f64| -> Option<([f64; 2], f64)> {
        let c = proj(f3.at(0.0, 0.0, z))?;
        let e = proj(f3.at(r, 0.0, z))?;
        Some((c, (e[0] - c[0]).hypot(e[1] - c[1])))
    };
    let (hair_c, hair_r) = head(0.925 * h, 0.062 * h)?;
    let (face_c, face_r) = head(0.91 * h, 0.056 * h)?;
    Some(Figure {
        id: person.id,
        depth,
        parts,
        discs: vec![(hair_c, hair_r, look.hair), (face_c, face_r, look.skin)],
    })
}

impl Figure {
    fn bbox(&self) -> [f64; 4] {
        let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        for (pts, _) in &self.parts {
            for p in pts {
                b = [
                    b[0].min(p[0]),
                    b[1].min(p[1]),
                    b[2].max(p[0]),
                    b[3].max(p[1]),
                ];
            }
        }
        for (c, r, _) in &self.discs {
            b = [
                b[0].min(c[0] - r),
                b[1].min(c[1] - r),
                b[2].max(c[0] + r),
                b[3].max(c[1] + r),
            ];
        }
        b
    }
}

/// Ground polygon of an ellipse around `centre` with semi-axes `a` along `dir` and `b` across.
fn ground_ellipse(
    camera: &Camera,
    centre: [f64; 2],
    dir: [f64; 2],
    a: f64,
    b: f64,
) -> Option<Vec<[f64; 2]>> {
    (0..16)
        .map(|k| {
            let t = k as f64 / 16.0 * std::f64::consts::TAU;
            let (u, v) = (a * t.cos(), b * t.sin());
            camera.project([
                centre[0] + dir[0] * u - dir[1] * v,
                centre[1] + dir[1] * u + dir[0] * v,
                0.0,
            ])
        })
        .collect()
}

/// Draws one frame's objects onto `canvas` (which already holds the background when it has
/// colour) and returns where each object landed, with its visibility.
///
/// `exposure_s` is the shutter time used for the ball's motion blur.
pub fn draw_objects(
    camera: &Camera,
    cast: &Cast,
    frame: &FrameState,
    exposure_s: f64,
    canvas: &mut Canvas<'_>,
) -> Vec<ObjectView> {
    canvas.ids.fill(0);
    let shadow = paint(camera, [0, 0, 0], 0.32, 0);
    let mut figures = Vec::new();
    for st in &frame.people {
        let Some(person) = cast.person(st.id) else {
            continue;
        };
        if canvas.rgba.is_some() {
            let c = [
                st.pos[0] + SUN_SHADOW[0] * 0.35,
                st.pos[1] + SUN_SHADOW[1] * 0.35,
            ];
            if let Some(poly) =
                ground_ellipse(camera, c, SUN_SHADOW, 0.6 * person.height_m / 1.8, 0.28)
            {
                canvas.fill_convex(&poly, &shadow);
            }
        }
        figures.extend(person_figure(
            camera,
            person,
            st.pos,
            st.vel,
            st.stride_phase,
        ));
    }
    let ball = frame.ball.and_then(|b| {
        let centre = [b.pos[0], b.pos[1], b.pos[2] + BALL_RADIUS_M];
        let depth = camera.to_camera(centre)[2];
        (depth > 0.3).then_some((b, centre, depth))
    });
    if let (Some((b, _, _)), true) = (ball, canvas.rgba.is_some()) {
        let z = b.pos[2];
        let c = [
            b.pos[0] + SUN_SHADOW[0] * z * 0.6,
            b.pos[1] + SUN_SHADOW[1] * z * 0.6,
        ];
        let r = BALL_RADIUS_M * (1.0 + z * 0.05);
        if let Some(poly) = ground_ellipse(camera, c, SUN_SHADOW, r * 1.3, r) {
            canvas.fill_convex(
                &poly,
                &paint(camera, [0, 0, 0], (0.45 / (1.0 + z * 0.4)) as f32, 0),
            );
        }
    }

    enum Item {
        Person(Figure),
        Ball,
    }
    let mut items: Vec<(f64, Item)> = figures
        .into_iter()
        .map(|f| (f.depth, Item::Person(f)))
        .collect();
    if let Some((_, _, depth)) = ball {
        items.push((depth, Item::Ball));
    }
    items.sort_by(|a, b| b.0.total_cmp(&a.0));

    // (view, pixel region its id may occupy, pixels it owned right after it was drawn)
    let mut drawn: Vec<(ObjectView, [f64; 4], u32)> = Vec::new();
    for (_, item) in items {
        match item {
            Item::Person(fig) => {
                for (pts, colour) in &fig.parts {
                    canvas.fill_convex(pts, &paint(camera, *colour, 1.0, fig.id));
                }
                for (c, r, colour) in &fig.discs {
                    canvas.fill_disc(*c, *r, &paint(camera, *colour, 1.0, fig.id));
                }
                let bbox = fig.bbox();
                // Parts overlap, so count distinct pixels rather than summing the fills.
                let own = count_id(canvas, bbox, fig.id);
                drawn.push((
                    ObjectView {
                        id: fig.id,
                        bbox,
                        visibility: 0.0,
                    },
                    bbox,
                    own,
                ));
            }
            Item::Ball => {
                let Some((b, centre, _)) = ball else { continue };
                if let Some((bbox, region, own)) =
                    draw_ball(camera, centre, b.vel, exposure_s, canvas)
                {
                    drawn.push((
                        ObjectView {
                            id: BALL_ID,
                            bbox,
                            visibility: 0.0,
                        },
                        region,
                        own,
                    ));
                }
            }
        }
    }

    // Visibility: pixels still showing the object over the pixels it had when drawn, times the
    // part of its box inside the image.
    drawn
        .into_iter()
        .map(|(mut v, region, own)| {
            let [x0, y0, x1, y1] = v.bbox;
            let full = ((x1 - x0) * (y1 - y0)).max(1e-9);
            let clipped = (x1.min(canvas.width as f64) - x0.max(0.0)).max(0.0)
                * (y1.min(canvas.height as f64) - y0.max(0.0)).max(0.0);
            let seen = count_id(canvas, region, v.id);
            v.visibility = if own == 0 {
                0.0
            } else {
                (seen as f64 / own as f64 * clipped / full).clamp(0.0, 1.0)
            };
            v
        })
        .collect()
}

/// Pixels inside `region` (`[left, top, right, bottom]`) whose id is `id`.
fn count_id(canvas: &Canvas<'_>, region: [f64; 4], id: u32) -> u32 {
    let x0 = region[0].floor().max(0.0) as usize;
    let y0 = region[1].floor().max(0.0) as usize;
    let x1 = (region[2].ceil().max(0.0) as usize).min(canvas.width);
    let y1 = (region[3].ceil().max(0.0) as usize).min(canvas.height);
    let mut n = 0;
    for y in y0..y1.max(y0) {
        let row = &canvas.ids[y * canvas.width..(y + 1) * canvas.width];
        n += row[x0.min(x1)..x1]
            .iter()
            .filter(|v| **v as u32 == id)
            .count() as u32;
    }
    n
}

/// Draws the ball at `centre` moving at `vel`, blurred over the exposure; returns its sharp box,
/// the region its blur covers and the pixels it owns.
fn draw_ball(
    camera: &Camera,
    centre: [f64; 3],
    vel: [f64; 3],
    exposure_s: f64,
    canvas: &mut Canvas<'_>,
) -> Option<([f64; 4], [f64; 4], u32)> {
    let c = camera.project(centre)?;
    let to_cam = normalize([
        camera.position[0] - centre[0],
        camera.position[1] - centre[1],
        0.0,
    ]);
    let e = camera.project([
        centre[0] - to_cam[1] * BALL_RADIUS_M,
        centre[1] + to_cam[0] * BALL_RADIUS_M,
        centre[2],
    ])?;
    let r = (e[0] - c[0]).hypot(e[1] - c[1]);
    let bbox = [c[0] - r, c[1] - r, c[0] + r, c[1] + r];
    let half = exposure_s / 2.0;
    let ends = [-half, half].map(|t| {
        camera.project([
            centre[0] + vel[0] * t,
            centre[1] + vel[1] * t,
            centre[2] + vel[2] * t,
        ])
    });
    let [Some(a), Some(b)] = ends else {
        return Some((bbox, bbox, 0));
    };
    let streak = (b[0] - a[0]).hypot(b[1] - a[1]);
    let samples = ((streak / (r * 0.5).max(0.5)).ceil() as usize).clamp(1, 16);
    let x0 = (a[0].min(b[0]) - r - 1.0).floor().max(0.0) as usize;
    let y0 = (a[1].min(b[1]) - r - 1.0).floor().max(0.0) as usize;
    let x1 = ((a[0].max(b[0]) + r + 1.0).ceil().max(0.0) as usize).min(canvas.width);
    let y1 = ((a[1].max(b[1]) + r + 1.0).ceil().max(0.0) as usize).min(canvas.height);
    if x1 <= x0 || y1 <= y0 {
        return Some((bbox, bbox, 0));
    }
    let w = x1 - x0;
    let mut coverage = vec![0.0f32; w * (y1 - y0)];
    let rr = r.max(0.6);
    for k in 0..samples {
        let t = if samples == 1 {
            0.5
        } else {
            k as f64 / (samples - 1) as f64
        };
        let p = [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
        for (i, cov) in coverage.iter_mut().enumerate() {
            let (x, y) = ((x0 + i % w) as f64 + 0.5, (y0 + i / w) as f64 + 0.5);
            let d = (x - p[0]).hypot(y - p[1]);
            *cov += ((rr - d + 0.5).clamp(0.0, 1.0) * (r / rr).min(1.0)) as f32 / samples as f32;
        }
    }
    let n = canvas.fill_coverage(
        [x0, y0],
        w,
        &coverage,
        &paint(camera, [246, 246, 242], 1.0, BALL_ID),
    );
    Some((bbox, [x0 as f64, y0 as f64, x1 as f64, y1 as f64], n))
}
