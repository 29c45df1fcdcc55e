//! Live capture: one GStreamer pipeline per camera, RGBA frames with capture timestamps out of a
//! bounded appsink.
//!
//! Sources: a video file (anything `decodebin` plays), RTSP (`rtspsrc`), V4L2, the Jetson's CSI
//! cameras (`nvarguscamerasrc`, NVMM copied to system memory by `nvvidconv`), or a test pattern.
//! A file is read at decoding speed with back-pressure (every frame reaches the pipeline; the
//! appsink blocks when full); live sources keep at most `max-buffers` frames and drop the oldest
//! so a slow stage never makes the camera fall behind real time.

use super::still::{RgbaFrame, frame_of};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::path::PathBuf;

/// Where one camera's frames come from (`[capture.left] source = …` in the config, parsed by
/// [`SourceSpec::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// A video file; the match ends at its end.
    File {
        /// Path of the file.
        path: PathBuf,
    },
    /// An RTSP camera.
    Rtsp {
        /// `rtsp://…` address.
        url: String,
        /// Jitter buffer, ms.
        latency_ms: u32,
    },
    /// A V4L2 device.
    V4l2 {
        /// `/dev/videoN`.
        device: PathBuf,
    },
    /// A Jetson CSI camera through Argus.
    Csi {
        /// Sensor index.
        sensor_id: u32,
        /// Width, pixels.
        width: u32,
        /// Height, pixels.
        height: u32,
        /// Frames per second.
        fps: u32,
    },
    /// GStreamer's test pattern (a live source), for tests and benches without cameras.
    TestPattern {
        /// Width, pixels.
        width: u32,
        /// Height, pixels.
        height: u32,
        /// Frames per second.
        fps: u32,
        /// End after this many frames (a live source that ends is rebuilt: fault tests).
        frames: Option<u64>,
    },
}

/// `WxH@F` → (W, H, F).
fn parse_mode(text: &str) -> Option<(u32, u32, u32)> {
    let (size, fps) = text.split_once('@')?;
    let (w, h) = size.split_once('x')?;
    let (w, h, fps) = (w.parse().ok()?, h.parse().ok()?, fps.parse().ok()?);
    ((16..=16384).contains(&w) && (16..=16384).contains(&h) && (1..=240).contains(&fps))
        .then_some((w, h, fps))
}

impl SourceSpec {
    /// Reads a source as written in the config: `rtsp://…` (RTSP), `/dev/videoN` (V4L2),
    /// `csi:SENSOR:WxH@FPS` (Jetson CSI), `test:WxH@FPS[:FRAMES]` (test pattern), anything else
    /// a file. The error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with("rtsp://") || text.starts_with("rtsps://") {
            return Ok(SourceSpec::Rtsp {
                url: text.to_string(),
                latency_ms: 200,
            });
        }
        if text.starts_with("/dev/video") {
            return Ok(SourceSpec::V4l2 {
                device: PathBuf::from(text),
            });
        }
        if let Some(rest) = text.strip_prefix("csi:") {
            let bad = || format!("{text:?}: a CSI camera is csi:SENSOR:WIDTHxHEIGHT@FPS");
            let (sensor, mode) = rest.split_once(':').ok_or_else(bad)?;
            let (width, height, fps) = parse_mode(mode).ok_or_else(bad)?;
            return Ok(SourceSpec::Csi {
                sensor_id: sensor.parse().map_err(|_| bad())?,
                width,
                height,
                fps,
            });
        }
        if let Some(rest) = text.strip_prefix("test:") {
            let bad = || format!("{text:?}: a test pattern is test:WIDTHxHEIGHT@FPS[:FRAMES]");
            let (mode, frames) = match rest.split_once(':') {
                Some((m, f)) => (m, Some(f.parse::<u64>().map_err(|_| bad())?)),
                None => (rest, None),
            };
            let (width, height, fps) = parse_mode(mode).ok_or_else(bad)?;
            return Ok(SourceSpec::TestPattern {
                width,
                height,
                fps,
                frames,
            });
        }
        if text.is_empty() {
            return Err("empty source".into());
        }
        Ok(SourceSpec::File {
            path: PathBuf::from(text),
        })
    }

    /// Live sources run in real time and drop frames when the pipeline is behind.
    pub fn is_live(&self) -> bool {
        !matches!(self, SourceSpec::File { .. })
    }

    /// The GStreamer description up to (not including) the RGBA conversion.
    fn launch_head(&self) -> Result<String, String> {
        let quoted = |s: &str| -> Result<String, String> {
            if s.contains('"') || s.contains('\\') {
                Err(format!("{s:?}: quotes and backslashes are not supported"))
            } else {
                Ok(format!("\"{s}\""))
            }
        };
        let path = |p: &PathBuf| -> Result<String, String> {
            quoted(
                p.to_str()
                    .ok_or_else(|| format!("{}: path is not UTF-8", p.display()))?,
            )
        };
        Ok(match self {
            SourceSpec::File { path: p } => format!("filesrc location={} ! decodebin", path(p)?),
            SourceSpec::Rtsp { url, latency_ms } => format!(
                "rtspsrc location={} latency={latency_ms} ! decodebin",
                quoted(url)?
            ),
            SourceSpec::V4l2 { device } => format!("v4l2src device={} ! decodebin", path(device)?),
            SourceSpec::Csi {
                sensor_id,
                width,
                height,
                fps,
            } => format!(
                "nvarguscamerasrc sensor-id={sensor_id} ! video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1 ! nvvidconv"
            ),
            SourceSpec::TestPattern {
                width,
                height,
                fps,
                frames,
            } => format!(
                "videotestsrc is-live=true pattern=ball num-buffers={} ! video/x-raw,width={width},height={height},framerate={fps}/1",
                frames.map_or(-1, |n| n.min(i64::MAX as u64) as i64)
            ),
        })
    }

    /// For logs: what the source is, without credentials in RTSP addresses.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::File { path } => format!("file {}", path.display()),
            SourceSpec::Rtsp { url, .. } => {
                let shown = match (url.find("://"), url.rfind('@')) {
                    (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
                    _ => url.clone(),
                };
                format!("rtsp {shown}")
            }
            SourceSpec::V4l2 { device } => format!("v4l2 {}", device.display()),
            SourceSpec::Csi { sensor_id, .. } => format!("csi sensor {sensor_id}"),
            SourceSpec::TestPattern { .. } => "test pattern".into(),
        }
    }
}

/// A frame with its capture time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedFrame {
    /// Capture time on the monotonic clock for live sources, stream position for files, ns.
    pub pts_ns: u64,
    /// The picture.
    pub frame: RgbaFrame,
}

/// What a read gave.
#[derive(Debug)]
pub enum Read {
    /// A frame.
    Frame(TimedFrame),
    /// The source ended normally (end of file).
    End,
}

/// A failed source; the message names the source and what GStreamer reported.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {problem}")]
pub struct CaptureError {
    /// The source, as [`SourceSpec::describe`] gives it.
    pub source_name: String,
    /// What happened.
    pub problem: String,
}

/// One running camera pipeline.
pub struct VideoSource {
    spec: SourceSpec,
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    frames: u64,
}

impl VideoSource {
    /// Builds and starts the pipeline of `spec`.
    pub fn open(spec: &SourceSpec) -> Result<Self, CaptureError> {
        let fail = |problem: String| CaptureError {
            source_name: spec.describe(),
            problem,
        };
        if let SourceSpec::File { path } = spec
            && !path.is_file()
        {
            return Err(fail("no such file".into()));
        }
        gst::init().map_err(|e| fail(format!("GStreamer: {e}")))?;
        let drop = spec.is_live();
        let description = format!(
            "{} ! videoconvert ! video/x-raw,format=RGBA ! appsink name=sink sync=false max-buffers=4 drop={drop}",
            spec.launch_head().map_err(&fail)?
        );
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| fail(format!("cannot build the pipeline: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| fail("not a pipeline".into()))?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| fail("appsink missing".into()))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| fail(format!("cannot start: {e}")))?;
        Ok(VideoSource {
            spec: spec.clone(),
            pipeline,
            sink,
            frames: 0,
        })
    }

    /// The source's description.
    pub fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// Frames read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The next frame, waiting up to `timeout`; an error when the source failed, stalled, or a
    /// file ended before its first frame (not a video).
    pub fn read(&mut self, timeout: std::time::Duration) -> Result<Read, CaptureError> {
        let fail = |problem: String| CaptureError {
            source_name: self.spec.describe(),
            problem,
        };
        let wait = gst::ClockTime::from_nseconds(timeout.as_nanos() as u64);
        match self.sink.try_pull_sample(wait) {
            Some(sample) => {
                let pts = sample
                    .buffer()
                    .and_then(|b| b.pts())
                    .map_or(0, |t| t.nseconds());
                // A live pipeline's PTS is running time; adding its base time gives the
                // monotonic clock time of capture, comparable between the two cameras and
                // across rebuilds. A file's PTS is its stream position, the same for both.
                let base = if self.spec.is_live() {
                    self.pipeline.base_time().map_or(0, |t| t.nseconds())
                } else {
                    0
                };
                let pts_ns = base + pts;
                let frame = frame_of(&sample).map_err(&fail)?;
                self.frames += 1;
                Ok(Read::Frame(TimedFrame { pts_ns, frame }))
            }
            None => {
                if let Some(problem) = self.bus_error() {
                    return Err(fail(problem));
                }
                if self.sink.is_eos() {
                    if self.frames == 0 {
                        return Err(fail(
                            "ended before its first frame (not a video, or empty)".into(),
                        ));
                    }
                    return Ok(Read::End);
                }
                Err(fail(format!(
                    "no frame for {:.1} s (stalled)",
                    timeout.as_secs_f64()
                )))
            }
        }
    }

    /// The first error waiting on the bus, with GStreamer's debug detail.
    fn bus_error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                let detail = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                return Some(format!("{}{detail}", e.error()));
            }
        }
        None
    }
}

impl Drop for VideoSource {
    fn drop(&mut self) {
        // Nothing to report on shutdown: the pipeline is going away either way.
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_read_from_their_config_text() {
        assert_eq!(
            SourceSpec::parse("test:640x360@25:100"),
            Ok(SourceSpec::TestPattern {
                width: 640,
                height: 360,
                fps: 25,
                frames: Some(100)
            })
        );
        assert_eq!(
            SourceSpec::parse("csi:1:1920x1080@30"),
            Ok(SourceSpec::Csi {
                sensor_id: 1,
                width: 1920,
                height: 1080,
                fps: 30
            })
        );
        assert!(matches!(
            SourceSpec::parse("rtsp://u:p@10.0.0.5/s"),
            Ok(SourceSpec::Rtsp { .. })
        ));
        assert!(matches!(
            SourceSpec::parse("/dev/video2"),
            Ok(SourceSpec::V4l2 { .. })
        ));
        assert!(matches!(
            SourceSpec::parse("left.mkv"),
            Ok(SourceSpec::File { .. })
        ));
        let err = SourceSpec::parse("test:640x@25").unwrap_err();
        assert!(err.contains("test:WIDTHxHEIGHT@FPS"), "{err}");
        let err = SourceSpec::parse("csi:0").unwrap_err();
        assert!(err.contains("csi:SENSOR"), "{err}");
    }

    #[test]
    fn rtsp_credentials_stay_out_of_logs() {
        let s = SourceSpec::parse("rtsp://admin:secret@10.0.0.5:554/stream").expect("rtsp");
        let shown = s.describe();
        assert!(
            !shown.contains("secret") && shown.contains("10.0.0.5"),
            "{shown}"
        );
    }
}
