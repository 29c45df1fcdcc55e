//! Where a detected person stands: the foot point of a box, through the view's homography,
//! against the simulator's true position.

use polyvision_calibration::ViewGeometry;
use rig_sim::clicks::quantile;
use rig_sim::motion::Motion;
use rig_sim::motion::procedural::ProceduralMotion;
use rig_sim::rig::RigConfig;
use rig_sim::sim::Renderer;
use rig_sim::truth;

#[test]
fn foot_points_of_true_boxes_land_on_the_true_positions() {
    let rig = RigConfig::default();
    let renderer = Renderer::new(rig.clone(), 3);
    let cal = truth::calibration(rig.pitch, &renderer.cameras, &renderer.panorama);
    let mut motion = ProceduralMotion::new(rig.pitch, rig.fps, 8.0, 3);
    let mut ids = Vec::new();
    for (view, camera) in [
        ("panorama", &renderer.panorama),
        ("left", &renderer.cameras[0]),
    ] {
        let geometry = ViewGeometry::from_calibration(&cal, Some(view)).expect("view");
        let (mut foot, mut bottom) = (Vec::new(), Vec::new());
        let mut frames = 0;
        while let Some(frame) = motion.next_frame() {
            frames += 1;
            if frames % 5 != 0 {
                continue;
            }
            for v in renderer.views_only(camera, &frame, &mut ids) {
                let Some(person) = frame.people.iter().find(|p| p.id == v.id) else {
                    continue;
                };
                if v.visibility < 0.99 {
                    continue;
                }
                let [l, t, r, b] = v.bbox;
                let bbox = [l, t, r - l, b - t];
                let err = |px: [f64; 2]| {
                    geometry.to_pitch(px).map_or(f64::INFINITY, |q| {
                        (q[0] - person.pos[0]).hypot(q[1] - person.pos[1])
                    })
                };
                foot.push(geometry.position_of_box(bbox).map_or(f64::INFINITY, |q| {
                    (q[0] - person.pos[0]).hypot(q[1] - person.pos[1])
                }));
                bottom.push(err([l + (r - l) / 2.0, b]));
            }
            if frames > 150 {
                break;
            }
        }
        let (m, p95) = (quantile(&foot, 0.5), quantile(&foot, 0.95));
        println!(
            "{view}: foot point error median {:.2} m, p95 {:.2} m (bottom centre: median {:.2} m, p95 {:.2} m) over {} boxes",
            m,
            p95,
            quantile(&bottom, 0.5),
            quantile(&bottom, 0.95),
            foot.len()
        );
        // Measured when written: panorama 0.08 / 0.23 m, camera L 0.16 / 0.57 m (its near,
        // steep views put more of the body below the feet's near edge); 20 % headroom.
        let (m_max, p95_max) = if view == "panorama" {
            (0.10, 0.28)
        } else {
            (0.20, 0.70)
        };
        assert!(
            m < m_max && p95 < p95_max,
            "{view}: positions are {m:.2} / {p95:.2} m off"
        );
    }
}
