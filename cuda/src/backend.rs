//! The backend: CPU or CUDA, chosen once at start-up and passed down as a value.

use crate::cpu::preprocess::CpuPreprocessor;
use crate::cpu::stitch::CpuStitcher;
use crate::gpu::preprocess::GpuPreprocessor;
use crate::gpu::stitch::GpuStitcher;
use crate::gpu::{GpuDevice, driver_present};
use crate::image::KernelError;
use crate::preprocess::Preprocessor;
use crate::stitch::{StitchPlan, Stitcher};
use std::sync::Arc;

/// What the configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preference {
    /// CUDA when a GPU and its driver are there, else the CPU.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// CUDA or an error.
    Cuda,
}

impl std::str::FromStr for Preference {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Preference::Auto),
            "cpu" => Ok(Preference::Cpu),
            "cuda" => Ok(Preference::Cuda),
            other => Err(format!("backend \"{other}\" is not one of auto, cpu, cuda")),
        }
    }
}

/// Where the pixel work runs.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The CPU references, on this many threads (`None`: all cores).
    Cpu {
        /// Thread count.
        threads: Option<usize>,
    },
    /// A GPU with the kernels loaded.
    Cuda(Arc<GpuDevice>),
}

impl Backend {
    /// Chooses the backend. `Auto` falls back to the CPU with one log line that says why.
    pub fn select(preference: Preference, threads: Option<usize>) -> Result<Backend, KernelError> {
        let cpu = Backend::Cpu { threads };
        match preference {
            Preference::Cpu => Ok(cpu),
            Preference::Cuda => GpuDevice::open(0, None).map(Backend::Cuda),
            Preference::Auto => {
                if !driver_present() {
                    tracing::info!("pixel backend: CPU (no CUDA driver on this machine)");
                    return Ok(cpu);
                }
                match GpuDevice::open(0, None) {
                    Ok(device) => {
                        tracing::info!(
                            device = %device.name,
                            compute_capability = ?device.compute_capability,
                            module = ?device.module,
                            "pixel backend: CUDA"
                        );
                        Ok(Backend::Cuda(device))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "pixel backend: CPU (the CUDA driver is there but no GPU could be used)");
                        Ok(cpu)
                    }
                }
            }
        }
    }

    /// `cpu` or `cuda`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Cpu { .. } => "cpu",
            Backend::Cuda(_) => "cuda",
        }
    }

    /// A stitcher for `plan`.
    pub fn stitcher(&self, plan: StitchPlan) -> Result<Box<dyn Stitcher>, KernelError> {
        Ok(match self {
            Backend::Cpu { threads } => Box::new(CpuStitcher::new(plan, *threads)),
            Backend::Cuda(device) => Box::new(GpuStitcher::new(device.clone(), plan)?),
        })
    }

    /// A preprocessor.
    pub fn preprocessor(&self) -> Box<dyn Preprocessor> {
        match self {
            Backend::Cpu { threads } => Box::new(CpuPreprocessor::new(*threads)),
            Backend::Cuda(device) => Box::new(GpuPreprocessor::new(device.clone())),
        }
    }
}
