//! Everything that touches the GPU, each function next to its CPU reference.
//!
//! It will own the stitching and preprocessing kernels (`.cu` files loaded through `cudarc` at
//! run time) and the TensorRT binding (bindgen over a small C shim), behind cargo features so
//! that the CPU build needs no CUDA. This is the only crate allowed `unsafe` code, confined to
//! its FFI modules.
//!
//! Nothing is implemented yet: the crate exists so that the workspace has its final shape.
