//! The CUDA backend: the kernels of `cuda/kernels/*.cu`, loaded through `cudarc` at run time.
//!
//! # Which binary is loaded
//!
//! The kernels are compiled ahead of time by `cuda/build-kernels.py` (NVRTC and ptxas 12.6 from
//! PyPI) into committed artifacts that are compiled into this crate: an `sm_87` cubin for the
//! Jetson Orin (no JIT at start-up), `compute_87` PTX (ISA 8.5, which JetPack 6's driver loads),
//! and `compute_75` PTX that the driver of any GPU from Turing on compiles at load time. Ahead of
//! time rather than NVRTC at start-up because the rig then needs no NVRTC library (it is not
//! part of the Jetson's runtime image), starts instantly, and runs exactly the code CI compiled;
//! `scripts/test.sh` checks that the artifacts match their sources.
//!
//! On compute capability 8.7 the cubin is loaded, elsewhere the `compute_75` PTX;
//! `POLYVISION_CUDA_MODULE=cubin|ptx87|ptx75` forces one (the GPU check loads each in turn).
//!
//! # Safety
//!
//! Kernel launches are `unsafe`: the arguments must match the kernel's parameters and every
//! buffer must hold what the kernel reads and writes. Each launch below checks the sizes first
//! (the plans' `check_*` functions) and passes buffers allocated for exactly those sizes.
#![allow(unsafe_code)]

pub mod preprocess;
pub mod stitch;

use crate::image::KernelError;
use cudarc::driver::{CudaContext, CudaFunction, CudaStream, DriverError};
use cudarc::nvrtc::Ptx;
use std::sync::Arc;

const STITCH_CUBIN: &[u8] = include_bytes!("../../kernels/build/stitch.sm_87.cubin");
const STITCH_PTX87: &str = include_str!("../../kernels/build/stitch.compute_87.ptx");
const STITCH_PTX75: &str = include_str!("../../kernels/build/stitch.compute_75.ptx");
const PREPROCESS_CUBIN: &[u8] = include_bytes!("../../kernels/build/preprocess.sm_87.cubin");
const PREPROCESS_PTX87: &str = include_str!("../../kernels/build/preprocess.compute_87.ptx");
const PREPROCESS_PTX75: &str = include_str!("../../kernels/build/preprocess.compute_75.ptx");

pub(crate) fn cuda_error(e: DriverError) -> KernelError {
    KernelError::Cuda(e.to_string())
}

/// Which compiled form of the kernels to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    /// The `sm_87` cubin (Jetson Orin).
    Cubin87,
    /// `compute_87` PTX, compiled by the driver.
    Ptx87,
    /// `compute_75` PTX, compiled by the driver.
    Ptx75,
}

impl ModuleKind {
    fn from_env() -> Option<Self> {
        match std::env::var("POLYVISION_CUDA_MODULE").ok()?.as_str() {
            "cubin" => Some(ModuleKind::Cubin87),
            "ptx87" => Some(ModuleKind::Ptx87),
            "ptx75" => Some(ModuleKind::Ptx75),
            _ => None,
        }
    }
}

/// A GPU with the kernels loaded.
#[derive(Debug)]
pub struct GpuDevice {
    /// The CUDA context.
    pub ctx: Arc<CudaContext>,
    /// The stream every launch goes to.
    pub stream: Arc<CudaStream>,
    /// Device name.
    pub name: String,
    /// Compute capability.
    pub compute_capability: (i32, i32),
    /// The compiled form that was loaded.
    pub module: ModuleKind,
    pub(crate) stitch_rgba: CudaFunction,
    pub(crate) stitch_nv12: CudaFunction,
    pub(crate) preprocess_f32: CudaFunction,
    pub(crate) preprocess_f16: CudaFunction,
}

/// Whether the CUDA driver library can be loaded (never panics).
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen libcuda by its usual names; nothing is called through it.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

impl GpuDevice {
    /// Opens GPU `ordinal` and loads the kernels; `None` for `kind` picks by compute capability.
    pub fn open(ordinal: usize, kind: Option<ModuleKind>) -> Result<Arc<Self>, KernelError> {
        if !driver_present() {
            return Err(KernelError::Cuda(
                "no CUDA driver (libcuda) on this machine".into(),
            ));
        }
        let ctx = CudaContext::new(ordinal).map_err(cuda_error)?;
        let name = ctx.name().map_err(cuda_error)?;
        let compute_capability = ctx.compute_capability().map_err(cuda_error)?;
        let module =
            kind.or_else(ModuleKind::from_env)
                .unwrap_or(if compute_capability == (8, 7) {
                    ModuleKind::Cubin87
                } else {
                    ModuleKind::Ptx75
                });
        let load = |cubin: &[u8], ptx87: &str, ptx75: &str| {
            let image = match module {
                ModuleKind::Cubin87 => Ptx::from_binary(cubin.to_vec()),
                ModuleKind::Ptx87 => Ptx::from_src(ptx87),
                ModuleKind::Ptx75 => Ptx::from_src(ptx75),
            };
            ctx.load_module(image).map_err(cuda_error)
        };
        let stitch = load(STITCH_CUBIN, STITCH_PTX87, STITCH_PTX75)?;
        let preprocess = load(PREPROCESS_CUBIN, PREPROCESS_PTX87, PREPROCESS_PTX75)?;
        let function = |m: &Arc<cudarc::driver::CudaModule>, name: &str| {
            m.load_function(name).map_err(cuda_error)
        };
        Ok(Arc::new(GpuDevice {
            stream: ctx.default_stream(),
            stitch_rgba: function(&stitch, "stitch_rgba")?,
            stitch_nv12: function(&stitch, "stitch_nv12")?,
            preprocess_f32: function(&preprocess, "preprocess_f32")?,
            preprocess_f16: function(&preprocess, "preprocess_f16")?,
            ctx,
            name,
            compute_capability,
            module,
        }))
    }

    /// Waits for everything queued on the stream.
    pub fn synchronize(&self) -> Result<(), KernelError> {
        self.stream.synchronize().map_err(cuda_error)
    }

    /// Device-to-device copy bandwidth (bytes read plus written per second) over `bytes`.
    pub fn copy_bandwidth(&self, bytes: usize, repeats: usize) -> Result<f64, KernelError> {
        let n = bytes / 4;
        let src = self.stream.alloc_zeros::<u32>(n).map_err(cuda_error)?;
        let mut dst = self.stream.alloc_zeros::<u32>(n).map_err(cuda_error)?;
        self.stream
            .memcpy_dtod(&src, &mut dst)
            .map_err(cuda_error)?;
        self.synchronize()?;
        let start = std::time::Instant::now();
        for _ in 0..repeats {
            self.stream
                .memcpy_dtod(&src, &mut dst)
                .map_err(cuda_error)?;
        }
        self.synchronize()?;
        Ok(2.0 * (n * 4 * repeats) as f64 / start.elapsed().as_secs_f64())
    }
}
