//! Property tests of the geometry: random maps, random lenses.

use polyvision_calibration::fit::{FitOptions, ImageView, PointPair, fit_field_homography};
use polyvision_calibration::{Homography, LensModel, PitchSize};
use proptest::prelude::*;

/// A random camera-like pitch → pixel map: a camera 8–25 m up, 5–40 m behind the near
/// touchline, panned ±30°, tilted 15–45°, focal 400–1200 px.
fn camera_map(height: f64, back: f64, yaw: f64, tilt: f64, f: f64) -> Homography {
    let (sy, cy) = yaw.to_radians().sin_cos();
    let (st, ct) = tilt.to_radians().sin_cos();
    let forward = [sy * ct, cy * ct, -st];
    let right = [cy, -sy, 0.0];
    let down = [
        forward[1] * right[2] - forward[2] * right[1],
        forward[2] * right[0] - forward[0] * right[2],
        forward[0] * right[1] - forward[1] * right[0],
    ];
    let centre = [0.0, -34.0 - back, height];
    let rows = [right, down, forward];
    let t = rows.map(|r| -(r[0] * centre[0] + r[1] * centre[1] + r[2] * centre[2]));
    let k = [[f, 0.0, 960.0], [0.0, f, 540.0], [0.0, 0.0, 1.0]];
    let cols = [
        [right[0], down[0], forward[0]],
        [right[1], down[1], forward[1]],
        t,
    ];
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, col) in cols.iter().enumerate() {
            row[j] = (0..3).map(|q| k[i][q] * col[q]).sum();
        }
    }
    Homography::from_rows(m).expect("a camera above the pitch gives a regular map")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn fitting_transformed_points_recovers_the_transform(
        height in 8.0..25.0f64,
        back in 5.0..40.0f64,
        yaw in -30.0..30.0f64,
        tilt in 15.0..45.0f64,
        f in 400.0..1200.0f64,
        seed in any::<u64>(),
    ) {
        let truth = camera_map(height, back, yaw, tilt, f);
        let pitch = PitchSize::default();
        // Landmarks the camera sees, in front of it and inside a 1920×1080 image.
        let pairs: Vec<PointPair> = pitch
            .landmarks()
            .into_iter()
            .filter_map(|l| {
                let px = truth.apply(l.position)?;
                let m = truth.rows();
                let w = m[2][0] * l.position[0] + m[2][1] * l.position[1] + m[2][2];
                (w > 0.0 && px[0] > 0.0 && px[1] > 0.0 && px[0] < 1920.0 && px[1] < 1080.0)
                    .then_some(PointPair { pixel: px, pitch: l.position, label: l.name })
            })
            .collect();
        prop_assume!(pairs.len() >= 6);
        let options = FitOptions { seed, ..FitOptions::default() };
        match fit_field_homography(&pairs, &ImageView::plain([1920, 1080]), &pitch, &options) {
            Ok(fit) => {
                prop_assert_eq!(fit.inliers, pairs.len());
                let image_from_pitch = fit.pitch_from_image.inverse();
                for p in &pairs {
                    let q = image_from_pitch.apply(p.pitch).expect("finite");
                    prop_assert!((q[0] - p.pixel[0]).hypot(q[1] - p.pixel[1]) < 1e-6, "{:?} vs {:?}", q, p.pixel);
                }
            }
            // Landmarks visible to a narrow view can all sit on one or two lines.
            Err(polyvision_calibration::FitError::Collinear { .. }) => {}
            Err(e) => prop_assert!(false, "{e}"),
        }
    }

    #[test]
    fn distort_after_undistort_is_the_identity_over_the_image(
        k1 in -0.35..0.15f64,
        k2 in -0.05..0.12f64,
        k3 in -0.01..0.01f64,
        p1 in -0.002..0.002f64,
        p2 in -0.002..0.002f64,
        u in 0.0..1280.0f64,
        v in 0.0..720.0f64,
    ) {
        let lens = LensModel { k1, k2, k3, p1, p2, ..LensModel::pinhole(760.0, 760.0, 642.0, 357.0) };
        let corner = [[0.0, 0.0], [1280.0, 0.0], [0.0, 720.0], [1280.0, 720.0]]
            .map(|c| { let n = lens.normalize(c); n[0].hypot(n[1]) })
            .into_iter()
            .fold(0.0, f64::max);
        // Only lenses that are invertible over the image (the calibration file refuses others).
        prop_assume!(lens.is_invertible_to(corner * 1.05));
        let undistorted = lens.undistort_pixel([u, v]).expect("invertible inside the image");
        let back = lens.distort_pixel(undistorted);
        prop_assert!((back[0] - u).hypot(back[1] - v) < 1e-3, "{:?} -> {:?}", [u, v], back);
    }
}
