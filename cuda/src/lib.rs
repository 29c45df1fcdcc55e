//! Everything that touches the GPU, each function next to its CPU reference.
//!
//! This crate owns the pixel work between capture and detection:
//!
//! - [`stitch`]: two camera frames (RGBA8 or NV12) → the panorama, through the stitching table
//!   of `polyvision-calibration`;
//! - [`preprocess`]: tiles of the panorama → the detector's batched, letterboxed, normalised
//!   planar tensor (FP32 or FP16).
//!
//! Each exists twice with the same signature: a CUDA kernel ([`gpu`], `cuda/kernels/*.cu`, loaded
//! through `cudarc` at run time, so nothing of CUDA is needed to build or start) and a
//! multi-threaded CPU reference ([`cpu`]) that computes the same bytes. Which one runs is a value
//! chosen once at start-up ([`Backend::select`]); a machine without a GPU gets the CPU with one
//! log line, never a panic.
//!
//! # CPU and GPU agree bit for bit
//!
//! The stitch is integer arithmetic (12.4 fixed-point positions, weights that sum to 256, exact
//! division by 255), the same operations in the same order in `kernels/stitch.cu` and
//! [`cpu::stitch`]; the preprocessing is `f32` in a fixed order with fused multiply-add turned
//! off in the kernels (`--fmad=false`), so both produce identical bits, and FP16 is the
//! round-to-nearest-even of that `f32` on both. Bit-exact rather than "within 1 LSB" because
//! nothing forces a difference, and equality is the one tolerance a test cannot argue with.
//! `tests/backends.rs` holds every backend to an independent per-channel statement of the
//! arithmetic.
//!
//! The CPU stitch packs two channels per 16-bit lane of a `u32` (four texel loads, eight
//! multiplies per pixel), splits rows into one band per thread, and takes the one-camera path
//! for every pixel outside the seam band. The CPU preprocessing is separable (horizontal rows
//! cached between output rows) so the vertical blend and normalisation are vectorised loops
//! (packed `mulps`/`subps` in the release build). NV12 output for the encoder is not there: the
//! detector wants RGB, and no encoder is in the pipeline yet.
//!
//! [`tensorrt`] holds the detector's TensorRT engine: a C++ shim with a C header, bindings
//! generated from it, and an engine cache; the shim and the engine are compiled with the
//! `tensorrt` cargo feature only.
//!
//! `unsafe` is confined to [`gpu`] (kernel launches and `cudarc`'s driver probe) and the
//! TensorRT engine's calls into the shim.
#![deny(unsafe_code)]

pub mod backend;
pub mod cpu;
pub mod gpu;
pub mod image;
pub mod preprocess;
pub mod stitch;
pub mod tensorrt;

pub use backend::{Backend, Preference};
pub use image::{KernelError, Nv12, Rgba, YuvMatrix};
pub use preprocess::{Normalisation, Preprocessor, TensorOut, TilePlacement};
pub use stitch::{StitchPlan, Stitcher};
