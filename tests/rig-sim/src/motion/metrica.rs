//! Real trajectories: Metrica Sports sample tracking data (FIFA EPTS text format).
//!
//! One line per frame, 25 fps: `frame:p1x,p1y;…;p22x,p22y:bx,by`, normalised coordinates with
//! (0, 0) at the top-left corner and y pointing down, `NaN` where a value is missing. Slots 1–11
//! are team A (slot 1 its goalkeeper) and become ids 1–11; slots 12–22 are team B (slot 12 its
//! goalkeeper) and become ids 12–22. Positions are linearly resampled to the rig's frame rate.
//!
//! The data has no ball height. Long, straight, fast ball movements (more than 25 m between
//! touches, what a lofted pass or a clearance looks like) get a ballistic arc whose height follows
//! from the flight time; everything else rolls on the grass. This is a heuristic, stated in the
//! truth files' documentation.

use super::{Motion, Officials};
use crate::scene::{BallState, FrameState, PersonState, advance_strides};
use polyvision_calibration::PitchSize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Frame rate of the Metrica data.
pub const METRICA_FPS: f64 = 25.0;
/// Path of the excerpt inside the shared data folder.
pub const EXCERPT: &str = "metrica/game3_excerpt/Sample_Game_3_tracking_frames_0001-2100.txt.gz";

/// Errors from reading Metrica tracking data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricaError {
    /// The file could not be read or decompressed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line does not follow the EPTS layout.
    #[error("{path}:{line}: {problem}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The requested time range is not in the data.
    #[error(
        "{path}: the data covers {available_s:.2} s, but {start_s:.2} s + {seconds:.2} s were requested"
    )]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Length of the data, seconds.
        available_s: f64,
        /// Requested start, seconds.
        start_s: f64,
        /// Requested length, seconds.
        seconds: f64,
    },
}

/// One raw frame: 22 player positions and the ball, in pitch metres.
#[derive(Debug, Clone, PartialEq)]
pub struct RawFrame {
    /// Frame number in the file.
    pub frame: u64,
    /// Player positions (NaN where missing), slots in file order.
    pub players: Vec<[f64; 2]>,
    /// Ball position on the ground, when present.
    pub ball: Option<[f64; 2]>,
}

/// Finds the shared data folder: `$POLYVISION_DATA`, or `shared/data` beside any folder above
/// the current one (the repository sits next to `shared/`).
pub fn find_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("POLYVISION_DATA") {
        return Some(PathBuf::from(dir));
    }
    let mut starts = vec![];
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for start in starts {
        for dir in start.ancestors() {
            let candidate = dir.join("shared").join("data");
            if candidate.join(EXCERPT).is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Reads an EPTS tracking file (`.txt` or `.txt.gz`) and converts it to pitch metres.
pub fn read_tracking(path: &Path, pitch: &PitchSize) -> Result<Vec<RawFrame>, MetricaError> {
    let io = |source| MetricaError::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let mut text = String::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .map_err(io)?;
    } else {
        text = String::from_utf8(bytes)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    }
    let (len, wid) = (pitch.length_m, pitch.width_m);
    let to_m = |x: f64, y: f64| [(x - 0.5) * len, (0.5 - y) * wid];
    let mut frames = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fail = |problem: String| MetricaError::Format {
            path: path.to_owned(),
            line: i + 1,
            problem,
        };
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.trim().split(':');
        let (Some(frame), Some(players), Some(ball), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(fail("expected `frame:players:ball`".into()));
        };
        let frame: u64 = frame
            .parse()
            .map_err(|_| fail(format!("frame number `{frame}` is not an integer")))?;
        let pair = |s: &str| -> Result<[f64; 2], MetricaError> {
            let mut xy = s.split(',');
            match (xy.next(), xy.next(), xy.next()) {
                (Some(x), Some(y), None) => {
                    let x: f64 = x
                        .trim()
                        .parse()
                        .map_err(|_| fail(format!("`{x}` is not a number")))?;
                    let y: f64 = y
                        .trim()
                        .parse()
                        .map_err(|_| fail(format!("`{y}` is not a number")))?;
                    Ok([x, y])
                }
                _ => Err(fail(format!("`{s}` is not an `x,y` pair"))),
            }
        };
        let players = players
            .split(';')
            .map(|p| pair(p).map(|[x, y]| to_m(x, y)))
            .collect::<Result<Vec<_>, _>>()?;
        if players.len() != 22 {
            return Err(fail(format!("{} player slots, expected 22", players.len())));
        }
        let [bx, by] = pair(ball)?;
        let ball = (bx.is_finite() && by.is_finite()).then(|| to_m(bx, by));
        frames.push(RawFrame {
            frame,
            players,
            ball,
        });
    }
    if frames.is_empty() {
        return Err(MetricaError::Format {
            path: path.to_owned(),
            line: 0,
            problem: "no frames".into(),
        });
    }
    Ok(frames)
}

/// Estimated ball height per raw frame (see the module doc).
pub fn ball_heights(frames: &[RawFrame]) -> Vec<f64> {
    let mut z = vec![0.0; frames.len()];
    let dt = 1.0 / METRICA_FPS;
    let mut i = 0;
    while i + 1 < frames.len() {
        let speed = |k: usize| match (frames[k].ball, frames[k + 1].ball) {
            (Some(a), Some(b)) => (b[0] - a[0]).hypot(b[1] - a[1]) / dt,
            _ => 0.0,
        };
        if speed(i) < 12.0 || speed(i) > 45.0 {
            i += 1;
            continue;
        }
        // A run of fast movement: a candidate flight from frame i to j.
        let mut j = i;
        while j + 1 < frames.len() && (8.0..45.0).contains(&speed(j)) {
            j += 1;
        }
        if let (Some(a), Some(b)) = (frames[i].ball, frames[j].ball) {
            let chord = (b[0] - a[0]).hypot(b[1] - a[1]);
            let path: f64 = (i..j).map(|k| speed(k) * dt).sum();
            let t = (j - i) as f64 * dt;
            if chord > 25.0 && chord > 0.9 * path {
                let top = (9.81 * t * t / 8.0).min(25.0);
                for (k, zk) in z.iter_mut().enumerate().take(j + 1).skip(i) {
                    let s = (k - i) as f64 / (j - i) as f64;
                    *zk = 4.0 * top * s * (1.0 - s);
                }
            }
        }
        i = j.max(i + 1);
    }
    z
}

/// Frames resampled from Metrica data to the rig's frame rate.
#[derive(Debug)]
pub struct MetricaMotion {
    frames: Vec<RawFrame>,
    heights: Vec<f64>,
    fps: f64,
    start_s: f64,
    count: u64,
    next: u64,
    officials: Officials,
    prev: Vec<PersonState>,
}

impl MetricaMotion {
    /// A source for `seconds` of data starting `start_s` into the file, at `fps`.
    pub fn open(
        path: &Path,
        pitch: PitchSize,
        fps: u32,
        start_s: f64,
        seconds: f64,
    ) -> Result<Self, MetricaError> {
        let frames = read_tracking(path, &pitch)?;
        let available_s = (frames.len() - 1) as f64 / METRICA_FPS;
        if !(start_s >= 0.0 && seconds > 0.0 && start_s + seconds <= available_s + 1e-9) {
            return Err(MetricaError::TooShort {
                path: path.to_owned(),
                available_s,
                start_s,
                seconds,
            });
        }
        let heights = ball_heights(&frames);
        Ok(MetricaMotion {
            frames,
            heights,
            fps: fps as f64,
            start_s,
            count: (seconds * fps as f64).round() as u64,
            next: 0,
            officials: Officials::new(pitch),
            prev: Vec::new(),
        })
    }

    fn sample(&self, t: f64) -> (Vec<[f64; 2]>, Option<[f64; 3]>) {
        let f = (t * METRICA_FPS).clamp(0.0, (self.frames.len() - 1) as f64);
        let i = (f.floor() as usize).min(self.frames.len() - 1);
        let j = (i + 1).min(self.frames.len() - 1);
        let w = f - i as f64;
        let lerp = |a: f64, b: f64| a + (b - a) * w;
        let players = self.frames[i]
            .players
            .iter()
            .zip(&self.frames[j].players)
            .map(|(a, b)| {
                // A missing value holds the other end.
                let a = if a[0].is_finite() { *a } else { *b };
                let b = if b[0].is_finite() { *b } else { a };
                [lerp(a[0], b[0]), lerp(a[1], b[1])]
            })
            .collect();
        let ball = match (self.frames[i].ball, self.frames[j].ball) {
            (Some(a), Some(b)) => Some([
                lerp(a[0], b[0]),
                lerp(a[1], b[1]),
                lerp(self.heights[i], self.heights[j]),
            ]),
            _ => None,
        };
        (players, ball)
    }
}

impl Motion for MetricaMotion {
    fn frame_count(&self) -> u64 {
        self.count
    }

    fn next_frame(&mut self) -> Option<FrameState> {
        if self.next >= self.count {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let time_s = index as f64 / self.fps;
        let t = self.start_s + time_s;
        let h = 0.5 / METRICA_FPS;
        let (now, ball) = self.sample(t);
        let (before, ball_before) = self.sample((t - h).max(0.0));
        let (after, ball_after) = self.sample(t + h);
        let span = (t + h).min((self.frames.len() - 1) as f64 / METRICA_FPS) - (t - h).max(0.0);
        let mut people: Vec<PersonState> = now
            .iter()
            .enumerate()
            .map(|(k, p)| PersonState {
                id: k as u32 + 1,
                pos: *p,
                vel: [
                    (after[k][0] - before[k][0]) / span,
                    (after[k][1] - before[k][1]) / span,
                ],
                stride_phase: 0.0,
            })
            .collect();
        let ball = ball.map(|pos| {
            let vel = match (ball_before, ball_after) {
                (Some(a), Some(b)) => [
                    (b[0] - a[0]) / span,
                    (b[1] - a[1]) / span,
                    (b[2] - a[2]) / span,
                ],
                _ => [0.0; 3],
            };
            BallState { pos, vel }
        });
        let officials = self.officials.step(&people, ball.as_ref(), 1.0 / self.fps);
        people.extend(officials);
        if self.prev.len() == people.len() {
            advance_strides(&self.prev, &mut people, 1.0 / self.fps);
        }
        self.prev = people.clone();
        Some(FrameState {
            index,
            time_s,
            people,
            ball,
        })
    }
}
