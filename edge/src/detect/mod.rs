//! Detection: people and the ball in the panorama.
//!
//! - [`card`]: the model card next to each ONNX file (class names, input size) — nothing about
//!   a model is a constant in code;
//! - [`decode`]: YOLO detection heads (`[1, 4 + classes, N]`, or the transposed `[1, N, 4 +
//!   classes]`) to boxes;
//! - [`tiling`]: the panorama cut into overlapping tiles at the model's native scale, boxes
//!   mapped back and merged across tile borders.
//!
//! The inference backends (tract on CPU, TensorRT on the Jetson) and the trained model are not
//! here yet.

pub mod card;
pub mod decode;
pub mod tiling;
