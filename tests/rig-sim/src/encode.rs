//! Writing frames to a video file through GStreamer.
//!
//! `appsrc (RGBA) → videoconvert → I420 → H.264 encoder → h264parse → matroskamux → filesink`.
//! The I420 caps before the encoder matter: without them x264 negotiates 4:4:4, which many
//! decoders (the Jetson's among them) refuse. The encoder is x264enc when present, else
//! openh264enc. `appsrc` blocks when its queue is full, so a slow encoder slows the renderer
//! instead of growing memory.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::path::{Path, PathBuf};

/// Errors from the video writer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// GStreamer could not be initialised or a pipeline could not be built.
    #[error("cannot build the encoding pipeline for {path}: {message}")]
    Setup {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The pipeline reported an error while running.
    #[error("encoding {path} failed in element {element}: {message}")]
    Pipeline {
        /// The output file.
        path: PathBuf,
        /// The element that failed.
        element: String,
        /// The error text.
        message: String,
    },
}

/// An H.264 Matroska file being written.
pub struct VideoWriter {
    path: PathBuf,
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    fps: u32,
    frames: u64,
    frame_bytes: usize,
}

/// Name of the H.264 encoder this machine has, if any.
pub fn h264_encoder() -> Option<&'static str> {
    if gst::init().is_err() {
        return None;
    }
    ["x264enc", "openh264enc"]
        .into_iter()
        .find(|e| gst::ElementFactory::find(e).is_some())
}

impl VideoWriter {
    /// Starts writing `path` with frames of `width`×`height` RGBA at `fps`.
    pub fn create(path: &Path, width: u32, height: u32, fps: u32) -> Result<Self, EncodeError> {
        let setup = |message: String| EncodeError::Setup {
            path: path.to_owned(),
            message,
        };
        gst::init().map_err(|e| setup(e.to_string()))?;
        let encoder = match h264_encoder() {
            Some("x264enc") => format!(
                "x264enc speed-preset=veryfast pass=quant quantizer=21 key-int-max={} bframes=0",
                fps * 2
            ),
            Some(other) => other.to_string(),
            None => {
                return Err(setup(
                    "no H.264 encoder (install gstreamer1.0-plugins-ugly for x264enc, or openh264)"
                        .into(),
                ));
            }
        };
        let location = path
            .to_str()
            .ok_or_else(|| setup("path is not UTF-8".into()))?;
        let description = format!(
            "appsrc name=src format=time is-live=false block=true max-bytes={} \
             caps=video/x-raw,format=RGBA,width={width},height={height},framerate={fps}/1 \
             ! videoconvert ! video/x-raw,format=I420 ! {encoder} ! h264parse ! matroskamux \
             ! filesink location=\"{location}\"",
            width as usize * height as usize * 4 * 4
        );
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| setup(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| setup("not a pipeline".into()))?;
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| setup("appsrc missing".into()))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| setup(e.to_string()))?;
        Ok(VideoWriter {
            path: path.to_owned(),
            pipeline,
            src,
            fps,
            frames: 0,
            frame_bytes: width as usize * height as usize * 4,
        })
    }

    fn check_bus(&self) -> Result<(), EncodeError> {
        let Some(bus) = self.pipeline.bus() else {
            return Ok(());
        };
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = msg.view() {
                return Err(self.pipeline_error(err));
            }
        }
        Ok(())
    }

    fn pipeline_error(&self, err: &gst::message::Error) -> EncodeError {
        let _ = self.pipeline.set_state(gst::State::Null);
        EncodeError::Pipeline {
            path: self.path.clone(),
            element: err
                .src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_else(|| "?".into()),
            message: format!("{} ({:?})", err.error(), err.debug()),
        }
    }

    /// Appends one RGBA frame.
    pub fn push(&mut self, rgba: &[u8]) -> Result<(), EncodeError> {
        if rgba.len() != self.frame_bytes {
            return Err(EncodeError::Setup {
                path: self.path.clone(),
                message: format!(
                    "frame has {} bytes, expected {}",
                    rgba.len(),
                    self.frame_bytes
                ),
            });
        }
        self.check_bus()?;
        let mut buffer = gst::Buffer::from_slice(rgba.to_vec());
        if let Some(b) = buffer.get_mut() {
            let ns = |n: u64| gst::ClockTime::from_nseconds(n * 1_000_000_000 / self.fps as u64);
            b.set_pts(ns(self.frames));
            b.set_duration(ns(self.frames + 1) - ns(self.frames));
        }
        self.src
            .push_buffer(buffer)
            .map_err(|e| EncodeError::Pipeline {
                path: self.path.clone(),
                element: "appsrc".into(),
                message: format!("{e:?}"),
            })?;
        self.frames += 1;
        Ok(())
    }

    /// Ends the stream and waits until the file is complete.
    pub fn finish(self) -> Result<u64, EncodeError> {
        let _ = self.src.end_of_stream();
        let bus = self.pipeline.bus().ok_or_else(|| EncodeError::Setup {
            path: self.path.clone(),
            message: "pipeline has no bus".into(),
        })?;
        let result = loop {
            let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_seconds(120),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            ) else {
                break Err(EncodeError::Pipeline {
                    path: self.path.clone(),
                    element: "pipeline".into(),
                    message: "no end of stream after 120 s".into(),
                });
            };
            match msg.view() {
                gst::MessageView::Eos(_) => break Ok(self.frames),
                gst::MessageView::Error(err) => break Err(self.pipeline_error(err)),
                _ => {}
            }
        };
        let _ = self.pipeline.set_state(gst::State::Null);
        result
    }
}

impl Drop for VideoWriter {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Decodes a video file and returns (frame count, width, height): used to check output.
pub fn probe_video(path: &Path) -> Result<(u64, u32, u32), EncodeError> {
    let fail = |message: String| EncodeError::Setup {
        path: path.to_owned(),
        message,
    };
    gst::init().map_err(|e| fail(e.to_string()))?;
    let location = path
        .to_str()
        .ok_or_else(|| fail("path is not UTF-8".into()))?;
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{location}\" ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! appsink name=sink sync=false"
    ))
    .map_err(|e| fail(e.to_string()))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| fail("not a pipeline".into()))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| fail("appsink missing".into()))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| fail(e.to_string()))?;
    let (mut frames, mut size) = (0u64, (0u32, 0u32));
    let outcome = loop {
        match sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
            Some(sample) => {
                frames += 1;
                if let Some(s) = sample.caps().and_then(|c| c.structure(0)) {
                    size = (
                        s.get::<i32>("width").unwrap_or(0) as u32,
                        s.get::<i32>("height").unwrap_or(0) as u32,
                    );
                }
            }
            None if sink.is_eos() => break Ok(()),
            None => break Err(fail("decoder stalled or failed".into())),
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    outcome.map(|()| (frames, size.0, size.1))
}
