//! Detection: people and the ball in the panorama.
//!
//! - [`card`]: the model card next to each ONNX file (class names, input size) — nothing about
//!   a model is a constant in code;
//! - [`decode`]: YOLO detection heads (`[1, 4 + classes, N]`, or the transposed `[1, N, 4 +
//!   classes]`) to boxes;
//! - [`tiling`]: the panorama cut into overlapping tiles at the model's native scale, boxes
//!   mapped back and merged across tile borders;
//! - [`backend`]: inference behind one trait (tract now; TensorRT to come);
//! - [`detector`]: the stage itself, panorama in, boxes out;
//! - [`eval`]: COCO-style average precision, precision and recall against true boxes.
//!
//! No trained model ships yet (`models/`).

pub mod backend;
pub mod card;
pub mod decode;
pub mod detector;
pub mod eval;
pub mod tiling;
