//! Rendering a whole match: motion → three views (left, right, panorama) → video and truth.
//!
//! The motion source runs on the calling thread and hands each frame to one worker per view
//! through a bounded channel (4 frames), so memory stays flat for a match of any length. The
//! camera workers draw the frame over their pre-rendered background and push it to their
//! encoder; the panorama worker only computes boxes and visibility.

use crate::camera::Camera;
use crate::encode::VideoWriter;
use crate::motion::Motion;
use crate::render::background::{Stadium, render_background};
use crate::render::figures::{ObjectView, draw_objects};
use crate::render::{Canvas, Image};
use crate::rig::RigConfig;
use crate::scene::{Cast, FrameState};
use crate::truth;
use anyhow::{Context, Result};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

/// Renders single frames of one rig: the expensive static part is done once in [`Renderer::new`].
pub struct Renderer {
    /// The rig.
    pub rig: RigConfig,
    /// Who is on the pitch.
    pub cast: Cast,
    /// Left and right cameras.
    pub cameras: [Camera; 2],
    /// The panorama's virtual camera.
    pub panorama: Camera,
    backgrounds: [Image; 2],
}

impl Renderer {
    /// Prepares both cameras' backgrounds, for the standard cast.
    pub fn new(rig: RigConfig, seed: u64) -> Self {
        Renderer::with_cast(rig, seed, Cast::standard(seed))
    }

    /// Prepares both cameras' backgrounds, for `cast`.
    pub fn with_cast(rig: RigConfig, seed: u64, cast: Cast) -> Self {
        let cameras = Camera::rig_cameras(&rig);
        let stadium = Stadium::new(rig.pitch, seed);
        let backgrounds = [
            render_background(&cameras[0], &stadium),
            render_background(&cameras[1], &stadium),
        ];
        Renderer {
            cast,
            panorama: Camera::panorama(&rig),
            cameras,
            rig,
            backgrounds,
        }
    }

    /// The background of camera `i` (0 left, 1 right).
    pub fn background(&self, i: usize) -> &Image {
        &self.backgrounds[i]
    }

    /// Exposure time used for motion blur: half the frame interval (a 180° shutter).
    pub fn exposure_s(&self) -> f64 {
        0.5 / self.rig.fps as f64
    }

    /// Draws `frame` as camera `i` sees it, into `image` (which must have the camera's size) and
    /// `ids`; returns each object's box and visibility.
    pub fn draw(
        &self,
        i: usize,
        frame: &FrameState,
        image: &mut Image,
        ids: &mut Vec<u16>,
    ) -> Vec<ObjectView> {
        let cam = &self.cameras[i];
        image.rgba.copy_from_slice(&self.backgrounds[i].rgba);
        ids.resize(cam.width as usize * cam.height as usize, 0);
        let mut canvas = Canvas {
            width: cam.width as usize,
            height: cam.height as usize,
            rgba: Some(&mut image.rgba),
            ids,
        };
        draw_objects(cam, &self.cast, frame, self.exposure_s(), &mut canvas)
    }

    /// Boxes and visibility of `frame` as `camera` sees it, without drawing colour: the
    /// panorama's truth, and the cameras' truth when no video is written.
    pub fn views_only(
        &self,
        camera: &Camera,
        frame: &FrameState,
        ids: &mut Vec<u16>,
    ) -> Vec<ObjectView> {
        ids.resize(camera.width as usize * camera.height as usize, 0);
        let mut canvas = Canvas {
            width: camera.width as usize,
            height: camera.height as usize,
            rgba: None,
            ids,
        };
        draw_objects(camera, &self.cast, frame, self.exposure_s(), &mut canvas)
    }
}

/// What to render.
pub struct RenderJob {
    /// Output folder.
    pub out: PathBuf,
    /// Seed for the cast, the stadium and the procedural match.
    pub seed: u64,
    /// Write the two videos (otherwise only the truth).
    pub video: bool,
    /// Frames (0-based) to also save as PNG for both cameras.
    pub snapshots: Vec<u64>,
    /// Name of the motion source, for the summary.
    pub source: String,
    /// Show progress.
    pub progress: bool,
}

/// Figures of a finished rendering.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenderSummary {
    /// Motion source.
    pub source: String,
    /// Seed used.
    pub seed: u64,
    /// Frames per camera.
    pub frames: u64,
    /// Frames per second of the videos.
    pub fps: u32,
    /// Length, seconds.
    pub seconds: f64,
    /// Camera image size.
    pub camera_size: [[u32; 2]; 2],
    /// Panorama size.
    pub panorama_size: [u32; 2],
    /// Truth rows written per view (left, right, panorama).
    pub gt_rows: [u64; 3],
    /// Seconds spent on the static backgrounds.
    pub setup_s: f64,
    /// Seconds spent rendering and encoding the frames.
    pub render_s: f64,
    /// Frames per second of the whole run (each frame = both cameras).
    pub frames_per_s: f64,
    /// Video files written.
    pub videos: Vec<String>,
}

struct ViewResult {
    rows: u64,
}

/// Renders a match to `job.out`.
pub fn render_match(
    rig: RigConfig,
    mut motion: Box<dyn Motion + Send>,
    job: &RenderJob,
) -> Result<RenderSummary> {
    let start = Instant::now();
    let out = &job.out;
    std::fs::create_dir_all(out.join("truth"))
        .with_context(|| format!("cannot create {}", out.display()))?;
    let renderer = Arc::new(Renderer::new(rig.clone(), job.seed));
    let setup_s = start.elapsed().as_secs_f64();
    let frames = motion.frame_count();
    let fps = rig.fps;

    std::fs::write(out.join("rig.toml"), rig.to_toml())?;
    let cameras = &renderer.cameras;
    truth::calibration(rig.pitch, cameras, &renderer.panorama)
        .save(&out.join("truth/calibration.json"))
        .context("writing truth/calibration.json")?;
    std::fs::write(
        out.join("truth/cameras.json"),
        serde_json::to_string_pretty(&[&cameras[0], &cameras[1], &renderer.panorama])?,
    )?;
    std::fs::write(
        out.join("truth/objects.json"),
        serde_json::to_string_pretty(&renderer.cast)?,
    )?;
    for (name, cam) in [
        ("left", &cameras[0]),
        ("right", &cameras[1]),
        ("panorama", &renderer.panorama),
    ] {
        truth::write_seqinfo(&out.join("truth").join(name), name, cam, fps, frames)?;
    }
    if !job.snapshots.is_empty() {
        std::fs::create_dir_all(out.join("snapshots"))?;
    }

    let render_start = Instant::now();
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for view in 0..3usize {
        let (tx, rx) = sync_channel::<Arc<FrameState>>(4);
        senders.push(tx);
        let r = Arc::clone(&renderer);
        let out = out.clone();
        let video = job.video;
        let snapshots = job.snapshots.clone();
        workers.push(std::thread::spawn(move || -> Result<ViewResult> {
            let name = ["left", "right", "panorama"][view];
            let gt_path = out.join("truth").join(name).join("gt/gt.txt");
            let mut gt = BufWriter::new(
                std::fs::File::create(&gt_path)
                    .with_context(|| format!("cannot create {}", gt_path.display()))?,
            );
            let mut ids = Vec::new();
            let mut rows = 0u64;
            if view == 2 {
                for frame in rx {
                    let views = r.views_only(&r.panorama, &frame, &mut ids);
                    rows +=
                        truth::write_gt_rows(&mut gt, &r.cast, &frame, &r.panorama, &views)? as u64;
                }
            } else {
                let cam = &r.cameras[view];
                let path = out.join(format!("camera-{name}.mkv"));
                let mut writer = if video {
                    Some(VideoWriter::create(
                        &path, cam.width, cam.height, r.rig.fps,
                    )?)
                } else {
                    None
                };
                let mut image = Image::new(cam.width, cam.height);
                for frame in rx {
                    let snapshot = snapshots.contains(&frame.index);
                    // Colour only when something shows it: the video or a still.
                    let coloured = writer.is_some() || snapshot;
                    let views = if coloured {
                        r.draw(view, &frame, &mut image, &mut ids)
                    } else {
                        r.views_only(cam, &frame, &mut ids)
                    };
                    rows += truth::write_gt_rows(&mut gt, &r.cast, &frame, cam, &views)? as u64;
                    if let Some(w) = writer.as_mut() {
                        w.push(&image.rgba)?;
                    }
                    if snapshot {
                        image.write_png(
                            &out.join(format!("snapshots/{name}-{:06}.png", frame.index)),
                        )?;
                    }
                }
                if let Some(w) = writer {
                    w.finish()?;
                }
            }
            gt.flush()?;
            Ok(ViewResult { rows })
        }));
    }

    let positions_path = out.join("truth/positions.csv");
    let mut positions = BufWriter::new(std::fs::File::create(&positions_path)?);
    writeln!(positions, "{}", truth::POSITIONS_HEADER)?;
    let mut bar = progress_bar(frames, job.progress);
    let mut sent = 0u64;
    let mut send_failed = false;
    while let Some(frame) = motion.next_frame() {
        truth::write_positions(&mut positions, &renderer.cast, &frame)?;
        let frame = Arc::new(frame);
        // A worker that stopped has an error to report; collect it below.
        if senders
            .iter()
            .any(|tx| tx.send(Arc::clone(&frame)).is_err())
        {
            send_failed = true;
            break;
        }
        sent += 1;
        bar.tick(sent);
    }
    positions.flush()?;
    drop(senders);
    let mut rows = [0u64; 3];
    for (i, w) in workers.into_iter().enumerate() {
        let result = w
            .join()
            .map_err(|_| anyhow::anyhow!("view worker {i} panicked"))?;
        rows[i] = result?.rows;
    }
    if send_failed {
        anyhow::bail!("a view worker stopped early");
    }
    bar.finish();
    let render_s = render_start.elapsed().as_secs_f64();
    let summary = RenderSummary {
        source: job.source.clone(),
        seed: job.seed,
        frames: sent,
        fps,
        seconds: sent as f64 / fps as f64,
        camera_size: [
            [cameras[0].width, cameras[0].height],
            [cameras[1].width, cameras[1].height],
        ],
        panorama_size: [renderer.panorama.width, renderer.panorama.height],
        gt_rows: rows,
        setup_s,
        render_s,
        frames_per_s: sent as f64 / render_s.max(1e-9),
        videos: if job.video {
            vec!["camera-left.mkv".into(), "camera-right.mkv".into()]
        } else {
            vec![]
        },
    };
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    Ok(summary)
}

/// Progress on a terminal as a bar; elsewhere (logs, CI) a line every 10%.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    next_line: u64,
}

fn progress_bar(total: u64, enabled: bool) -> Progress {
    let tty = std::io::stderr().is_terminal();
    let bar = (enabled && tty).then(|| {
        let b = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "rendering {bar:40} {pos}/{len} frames {per_sec} eta {eta}",
        ) {
            b.set_style(style);
        }
        b
    });
    Progress {
        bar,
        total: if enabled && !tty { total } else { 0 },
        next_line: total / 10,
    }
}

impl Progress {
    fn tick(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        } else if self.total > 0 && done >= self.next_line.max(1) {
            eprintln!("rendering: {done}/{} frames", self.total);
            self.next_line += (self.total / 10).max(1);
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
