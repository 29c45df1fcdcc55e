//! Ground-truth files.
//!
//! ```text
//! truth/calibration.json      the true lenses and homographies, in the calibration-file format
//! truth/cameras.json          full 3-D pose and lens of both cameras and the panorama camera
//! truth/objects.json          every person: id, role, team, shirt number, height, colours
//! truth/positions.csv         frame,time_s,id,role,team,x_m,y_m,z_m,vx_mps,vy_mps
//! truth/{left,right,panorama}/gt/gt.txt     MOTChallenge ground truth per view
//! truth/{left,right,panorama}/seqinfo.ini   MOTChallenge sequence description
//! ```
//!
//! `gt.txt` rows are `frame,id,left,top,width,height,1,class,visibility`: 1-based frames, the
//! box in pixels of that view clipped to the image, class 1 player, 2 goalkeeper, 3 referee or
//! assistant, 4 ball, and the visible fraction (not hidden by nearer objects and inside the
//! image). Objects whose box misses the image are left out. `positions.csv` gives pitch metres
//! (origin at the centre spot); `z_m` is the height of the ball's lowest point (0 for people and
//! a rolling ball). Ball heights in Metrica-driven renderings are estimated (see
//! [`crate::motion::metrica`]).

use crate::camera::Camera;
use crate::render::figures::ObjectView;
use crate::scene::{BALL_ID, Cast, FrameState, Role, Side};
use polyvision_calibration::file::{PanoramaCalibration, Projection, Provenance};
use polyvision_calibration::{CalibrationFile, CameraCalibration, PitchSize};
use std::io::Write;
use std::path::Path;

/// The calibration file that describes the simulated rig exactly.
pub fn calibration(pitch: PitchSize, cameras: &[Camera], panorama: &Camera) -> CalibrationFile {
    let mut cal = CalibrationFile::new(
        pitch,
        cameras
            .iter()
            .map(|c| CameraCalibration {
                name: c.name.clone(),
                image_size: [c.width, c.height],
                lens: c.lens,
                pitch_from_image: c.pitch_from_image(),
                fit: None,
            })
            .collect(),
    );
    cal.panorama = Some(PanoramaCalibration {
        image_size: [panorama.width, panorama.height],
        projection: Projection::Perspective,
        pitch_from_image: panorama.pitch_from_image(),
        tilt_deg: Some(panorama.tilt_deg()),
        intrinsics: Some([panorama.lens.fx, panorama.lens.cx, panorama.lens.cy]),
        fit: None,
    });
    cal.created = Provenance {
        by: Some(format!("rig-sim {}", env!("CARGO_PKG_VERSION"))),
        at: None,
        note: Some("ground truth of a simulated rig".into()),
    };
    cal
}

/// Writes `seqinfo.ini` for one view.
pub fn write_seqinfo(
    dir: &Path,
    name: &str,
    camera: &Camera,
    fps: u32,
    frames: u64,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("gt"))?;
    std::fs::write(
        dir.join("seqinfo.ini"),
        format!(
            "[Sequence]\nname={name}\nimDir=img1\nframeRate={fps}\nseqLength={frames}\nimWidth={}\nimHeight={}\nimExt=.png\n",
            camera.width, camera.height
        ),
    )
}

/// Appends one frame's rows to a view's `gt.txt`; returns the number of rows.
pub fn write_gt_rows(
    out: &mut impl Write,
    cast: &Cast,
    frame: &FrameState,
    camera: &Camera,
    views: &[ObjectView],
) -> std::io::Result<usize> {
    let mut rows = 0;
    for v in views {
        let [x0, y0, x1, y1] = v.bbox;
        let (l, t) = (x0.max(0.0), y0.max(0.0));
        let (r, b) = (x1.min(camera.width as f64), y1.min(camera.height as f64));
        if r - l < 1.0 || b - t < 1.0 {
            continue;
        }
        let class = if v.id == BALL_ID {
            Role::Ball.mot_class()
        } else {
            cast.person(v.id).map(|p| p.role.mot_class()).unwrap_or(0)
        };
        writeln!(
            out,
            "{},{},{:.2},{:.2},{:.2},{:.2},1,{},{:.3}",
            frame.index + 1,
            v.id,
            l,
            t,
            r - l,
            b - t,
            class,
            v.visibility
        )?;
        rows += 1;
    }
    Ok(rows)
}

/// Header of `positions.csv`.
pub const POSITIONS_HEADER: &str = "frame,time_s,id,role,team,x_m,y_m,z_m,vx_mps,vy_mps";

/// Appends one frame's rows to `positions.csv`.
pub fn write_positions(
    out: &mut impl Write,
    cast: &Cast,
    frame: &FrameState,
) -> std::io::Result<()> {
    let n = frame.index + 1;
    let t = frame.time_s;
    for p in &frame.people {
        let (role, side) = cast
            .person(p.id)
            .map(|x| (x.role, x.side))
            .unwrap_or((Role::Player, Side::None));
        writeln!(
            out,
            "{n},{t:.4},{},{},{},{:.3},{:.3},0.000,{:.3},{:.3}",
            p.id,
            role.name(),
            side.name(),
            p.pos[0],
            p.pos[1],
            p.vel[0],
            p.vel[1]
        )?;
    }
    if let Some(b) = frame.ball {
        writeln!(
            out,
            "{n},{t:.4},{BALL_ID},ball,none,{:.3},{:.3},{:.3},{:.3},{:.3}",
            b.pos[0], b.pos[1], b.pos[2], b.vel[0], b.vel[1]
        )?;
    }
    Ok(())
}
