//! The renderer and the true calibration agree: a pitch point mapped through the true
//! homography and lens lands where the ray-casting renderer drew it, within 0.5 px, all over the
//! pitch and near the image edges where the lens distorts most.

use polyvision_calibration::{CalibrationFile, Homography, LensModel};
use rig_sim::camera::Camera;
use rig_sim::render::Image;
use rig_sim::render::background::render_static;
use rig_sim::rig::RigConfig;
use rig_sim::truth;

/// Renders white discs on black ground at `points` and returns the image.
fn render_markers(camera: &Camera, points: &[([f64; 2], f64)]) -> Image {
    let shade = |o: [f64; 3], d: [f64; 3]| -> [f32; 3] {
        if d[2] >= 0.0 {
            return [0.0; 3];
        }
        let t = -o[2] / d[2];
        let (x, y) = (o[0] + d[0] * t, o[1] + d[1] * t);
        let hit = points.iter().any(|(p, r)| (x - p[0]).hypot(y - p[1]) <= *r);
        if hit { [255.0; 3] } else { [0.0; 3] }
    };
    let mut flat = camera.clone();
    flat.gain = [1.0; 3];
    render_static(&flat, &shade)
}

/// Intensity-weighted centroid of the marker within `radius` px of `guess`.
fn centroid(img: &Image, guess: [f64; 2], radius: f64) -> Option<[f64; 2]> {
    let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
    let (w, h) = (img.width as i64, img.height as i64);
    let r = radius.ceil() as i64;
    for y in (guess[1] as i64 - r)..=(guess[1] as i64 + r) {
        for x in (guess[0] as i64 - r)..=(guess[0] as i64 + r) {
            if x < 0 || y < 0 || x >= w || y >= h {
                continue;
            }
            let v = img.rgba[((y * w + x) * 4) as usize] as f64;
            sx += v * (x as f64 + 0.5);
            sy += v * (y as f64 + 0.5);
            sw += v;
        }
    }
    (sw > 0.0).then(|| [sx / sw, sy / sw])
}

struct View {
    camera: Camera,
    lens: LensModel,
    image_from_pitch: Homography,
}

fn expected(view: &View, p: [f64; 2]) -> Option<[f64; 2]> {
    view.image_from_pitch
        .apply(p)
        .map(|u| view.lens.distort_pixel(u))
}

/// Pitch points for one view: a grid over the pitch plus points just inside the image edges.
fn sample_points(view: &View, rig: &RigConfig) -> Vec<[f64; 2]> {
    let [hl, hw] = rig.pitch.half_extents();
    let (w, h) = (view.camera.width as f64, view.camera.height as f64);
    let inside = |q: [f64; 2], m: f64| q[0] > m && q[1] > m && q[0] < w - m && q[1] < h - m;
    let mut pts = Vec::new();
    let mut y = -hw;
    while y <= hw + 1e-9 {
        let mut x = -hl;
        while x <= hl + 1e-9 {
            if expected(view, [x, y]).is_some_and(|q| inside(q, 14.0)) {
                pts.push([x, y]);
            }
            x += 7.5;
        }
        y += 8.5;
    }
    // Near the edges: pixels 16 px in from each border, back to the pitch plane.
    let pitch_from_image = view.image_from_pitch.inverse();
    let mut edge = 0;
    for k in 0..12 {
        let f = (k as f64 + 0.5) / 12.0;
        for px in [
            [16.0, f * h],
            [w - 16.0, f * h],
            [f * w, 16.0],
            [f * w, h - 16.0],
        ] {
            let Some(u) = view.lens.undistort_pixel(px) else {
                continue;
            };
            // Only pixels that look down at the ground, not too far away.
            let Some(ray) = view.camera.ray(px) else {
                continue;
            };
            if ray[2] > -0.12 {
                continue;
            }
            // On or around the pitch, where players can be.
            if let Some(p) = pitch_from_image
                .apply(u)
                .filter(|p| p[0].abs() <= hl + 12.0 && p[1].abs() <= hw + 12.0)
            {
                pts.push(p);
                edge += 1;
            }
        }
    }
    assert!(edge >= 8, "{}: only {edge} edge points", view.camera.name);
    pts
}

#[test]
fn true_homography_lands_where_the_renderer_draws() {
    let rig = RigConfig::default();
    let cameras = Camera::rig_cameras(&rig);
    let panorama = Camera::panorama(&rig);
    // The homographies come from the calibration file, through its own serialisation.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("calibration.json");
    truth::calibration(rig.pitch, &cameras, &panorama)
        .save(&path)
        .expect("save");
    let cal = CalibrationFile::load(&path).expect("load");

    let mut views: Vec<View> = cameras
        .iter()
        .map(|c| {
            let cc = cal.camera(&c.name).expect("camera in calibration");
            View {
                camera: c.clone(),
                lens: cc.lens,
                image_from_pitch: cc.pitch_from_image.inverse(),
            }
        })
        .collect();
    let pano = cal.panorama.as_ref().expect("panorama");
    views.push(View {
        camera: panorama.clone(),
        // Rendered without distortion: its lens is a plain pinhole.
        lens: panorama.lens,
        image_from_pitch: pano.pitch_from_image.inverse(),
    });
    assert!(
        !views[0].lens.is_pinhole(),
        "the default rig must exercise lens distortion"
    );

    for view in &views {
        let mut points = sample_points(view, &rig);
        // Keep markers apart so that each centroid window holds one marker.
        let mut kept: Vec<([f64; 2], [f64; 2])> = Vec::new();
        for p in points.drain(..) {
            let q = expected(view, p).expect("projects");
            if kept
                .iter()
                .all(|(_, k)| (k[0] - q[0]).hypot(k[1] - q[1]) > 20.0)
            {
                kept.push((p, q));
            }
        }
        let points: Vec<[f64; 2]> = kept.iter().map(|(p, _)| *p).collect();
        // Markers at most 3 px across in any direction: a larger disc's centroid drifts from
        // its centre's image where the magnification changes fast (the panorama's edges).
        let markers: Vec<([f64; 2], f64)> = points
            .iter()
            .map(|p| {
                let q = expected(view, *p).expect("projects");
                let scale = [[0.01, 0.0], [0.0, 0.01]]
                    .iter()
                    .filter_map(|d| expected(view, [p[0] + d[0], p[1] + d[1]]))
                    .map(|e| (e[0] - q[0]).hypot(e[1] - q[1]) / 0.01)
                    .fold(0.0, f64::max);
                (*p, (1.5 / scale).min(0.5))
            })
            .collect();
        let img = render_markers(&view.camera, &markers);
        let (mut worst, mut sum, mut n) = (0.0f64, 0.0, 0);
        for p in &points {
            let want = expected(view, *p).expect("projects");
            let got = centroid(&img, want, 9.0).expect("marker drawn");
            let err = (got[0] - want[0]).hypot(got[1] - want[1]);
            assert!(
                err < 0.5,
                "{}: pitch point {p:?}: rendered at {got:?}, homography says {want:?} ({err:.3} px)",
                view.camera.name
            );
            worst = worst.max(err);
            sum += err;
            n += 1;
        }
        println!(
            "{}: {n} points, mean error {:.3} px, worst {:.3} px",
            view.camera.name,
            sum / n as f64,
            worst
        );
    }
}
