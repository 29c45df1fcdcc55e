//! TensorRT: the detector's engine on the Jetson.
//!
//! A small C++ shim of our own (`cuda/tensorrt/pvtrt.cpp`, C interface `pvtrt.h`) wraps the
//! TensorRT 10.3 API — builder and ONNX parser, runtime, engine deserialisation, named I/O
//! tensors, `enqueueV3` on a CUDA stream, a logger. Rust reaches it through bindings generated
//! by bindgen from the header (`ffi`, committed; `scripts/gen-tensorrt-bindings.sh --check`
//! in CI), so the Jetson build needs no libclang. The shim and `Engine` are compiled with the
//! `tensorrt` cargo feature only, wherever TensorRT's headers and libraries are installed; the
//! engine cache ([`cache`]) is plain Rust and always built and tested.
//!
//! TensorRT's log messages reach `tracing` through a callback that catches any panic, so none
//! crosses into C++.

pub mod cache;

// Formatted by bindgen; `cargo fmt` leaves it alone so the CI check compares bindgen's output.
#[cfg(feature = "tensorrt")]
#[rustfmt::skip]
#[allow(
    unsafe_code,
    clippy::all,
    non_camel_case_types,
    non_upper_case_globals,
    missing_docs,
    unreachable_pub
)]
pub mod ffi;

#[cfg(feature = "tensorrt")]
mod engine;

#[cfg(feature = "tensorrt")]
pub use engine::{Engine, EngineOptions};
