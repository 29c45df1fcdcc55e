//! One frame of a camera source, as RGBA: a PNG, or frame N of a video file decoded by
//! GStreamer.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use polyvision_calibration::png_io;
use std::path::{Path, PathBuf};

/// An RGBA frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbaFrame {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Rows of RGBA bytes, no padding.
    pub rgba: Vec<u8>,
}

/// Why a frame could not be grabbed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct GrabError {
    /// The source.
    pub path: PathBuf,
    /// What went wrong.
    pub problem: String,
}

/// Grabs frame `index` (0-based) of `path`: a PNG, a video file, or a live source as the config
/// writes it (`rtsp://…`, `/dev/videoN`, `csi:…`, `test:…`; frame `index` after it starts).
pub fn grab_frame(path: &Path, index: u64) -> Result<RgbaFrame, GrabError> {
    let fail = |problem: String| GrabError {
        path: path.to_owned(),
        problem,
    };
    let spec = super::video::SourceSpec::parse(&path.to_string_lossy()).map_err(&fail)?;
    if spec.is_live() {
        let mut source = super::video::VideoSource::open(&spec).map_err(|e| fail(e.problem))?;
        loop {
            match source.read(std::time::Duration::from_secs(10)) {
                Ok(super::video::Read::Frame(f)) if source.frames() > index => return Ok(f.frame),
                Ok(super::video::Read::Frame(_)) => {}
                Ok(super::video::Read::End) => {
                    return Err(fail(format!("ended after {} frames", source.frames())));
                }
                Err(e) => return Err(fail(e.problem)),
            }
        }
    }
    if !path.exists() {
        return Err(fail("no such file".into()));
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
    {
        return read_png(path).map_err(fail);
    }
    gst::init().map_err(|e| fail(format!("GStreamer: {e}")))?;
    let location = path
        .to_str()
        .ok_or_else(|| fail("path is not UTF-8".into()))?;
    if location.contains('"') {
        return Err(fail("paths with double quotes are not supported".into()));
    }
    let top = gst::parse::launch(&format!(
        "filesrc location=\"{location}\" ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! appsink name=sink sync=false max-buffers=2"
    ))
    .map_err(|e| fail(e.to_string()))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| fail("not a pipeline".into()))?;
    let sink = top
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| fail("appsink missing".into()))?;
    top.set_state(gst::State::Playing)
        .map_err(|e| fail(format!("cannot play: {e}")))?;
    let mut seen = 0u64;
    let outcome = loop {
        match sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
            Some(sample) if seen == index => break frame_of(&sample).map_err(&fail),
            Some(_) => seen += 1,
            None if sink.is_eos() => {
                break Err(fail(format!(
                    "has {seen} frames; frame {index} does not exist"
                )));
            }
            None => {
                break Err(fail(
                    "the decoder stalled or failed (is this a video file?)".into(),
                ));
            }
        }
    };
    let _ = top.set_state(gst::State::Null);
    outcome
}

pub(crate) fn frame_of(sample: &gst::Sample) -> Result<RgbaFrame, String> {
    let caps = sample.caps().ok_or("sample without caps")?;
    let s = caps.structure(0).ok_or("caps without structure")?;
    let width = s.get::<i32>("width").map_err(|e| e.to_string())? as u32;
    let height = s.get::<i32>("height").map_err(|e| e.to_string())? as u32;
    let buffer = sample.buffer().ok_or("sample without buffer")?;
    let map = buffer.map_readable().map_err(|e| e.to_string())?;
    let row = width as usize * 4;
    // GStreamer pads RGBA rows to 4 bytes, which RGBA always is; the stride is the row.
    let expected = row * height as usize;
    if map.len() < expected {
        return Err(format!(
            "frame has {} bytes, {width}×{height} RGBA needs {expected}",
            map.len()
        ));
    }
    Ok(RgbaFrame {
        width,
        height,
        rgba: map[..expected].to_vec(),
    })
}

fn read_png(path: &Path) -> Result<RgbaFrame, String> {
    let (rgba, [width, height]) = png_io::read_png(path)?;
    Ok(RgbaFrame {
        width,
        height,
        rgba,
    })
}

/// Encodes a frame as PNG.
pub fn encode_png(frame: &RgbaFrame) -> Result<Vec<u8>, String> {
    png_io::encode_png(&frame.rgba, [frame.width, frame.height])
}
