//! Inference backends behind one trait; chosen once at start-up and passed down as a value.
//!
//! - [`TractBackend`]: tract (pure Rust ONNX), always available; its matrix products run on a
//!   thread pool of the size asked for (tract's default is one thread).
//! - `TensorRtBackend` (cargo feature `tensorrt`): the engine of `polyvision_cuda::tensorrt`,
//!   built from the same ONNX file on first start and cached.
//!
//! [`load`] picks one from the `[detect]` config.

use super::card::ModelCard;
use std::path::Path;
use tract_onnx::prelude::tract_data::internal::DimLike;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// Runs a detector on a batch of `N × 3 × S × S` inputs.
pub trait InferenceBackend: Send {
    /// `tract`, `tensorrt`.
    fn name(&self) -> &'static str;
    /// How many inputs one run takes.
    fn batch(&self) -> usize;
    /// Runs `input` (`batch() × 3 × S × S` values); returns the first output and its shape.
    fn run(&mut self, input: &[f32]) -> Result<(Vec<f32>, Vec<usize>), String>;
}

/// tract.
pub struct TractBackend {
    model: std::sync::Arc<TypedRunnableModel>,
    size: usize,
    batch: usize,
}

impl TractBackend {
    /// Loads `path` for batches of `batch` (1 when the model's batch is fixed at 1), with
    /// `threads` threads for the matrix products.
    pub fn load(
        path: &Path,
        card: &ModelCard,
        batch: usize,
        threads: usize,
    ) -> Result<Self, String> {
        let fail = |e: TractError| format!("{}: {e:#}", path.display());
        if threads > 1 {
            tract_linalg::multithread::set_default_executor(
                tract_linalg::multithread::Executor::multithread(threads),
            );
        }
        let model = tract_onnx::onnx().model_for_path(path).map_err(fail)?;
        let fact = model.input_fact(0).map_err(fail)?;
        let dims: Vec<Option<usize>> = fact
            .shape
            .dims()
            .map(|d| d.concretize().and_then(|d| d.to_usize().ok()))
            .collect();
        let size = card.input_size as usize;
        if dims.len() != 4 {
            return Err(format!(
                "{}: the input has {} dimensions; a detector takes [N, 3, H, W]",
                path.display(),
                dims.len()
            ));
        }
        for (i, want, what) in [(1, 3, "channels"), (2, size, "height"), (3, size, "width")] {
            if let Some(got) = dims[i]
                && got != want
            {
                return Err(format!(
                    "{}: the model's input {what} is {got}, its card says {want}",
                    path.display()
                ));
            }
        }
        let batch = match dims[0] {
            Some(fixed) => fixed,
            None => batch.max(1),
        };
        let model = model
            .with_input_fact(0, f32::fact([batch, 3, size, size]).into())
            .map_err(fail)?
            .into_optimized()
            .map_err(fail)?
            .into_runnable()
            .map_err(fail)?;
        Ok(TractBackend { model, size, batch })
    }
}

impl InferenceBackend for TractBackend {
    fn name(&self) -> &'static str {
        "tract"
    }

    fn batch(&self) -> usize {
        self.batch
    }

    fn run(&mut self, input: &[f32]) -> Result<(Vec<f32>, Vec<usize>), String> {
        let s = self.size;
        let tensor = Tensor::from_shape(&[self.batch, 3, s, s], input)
            .map_err(|e| format!("input: {e:#}"))?;
        let out = self
            .model
            .run(tvec!(tensor.into()))
            .map_err(|e| format!("inference: {e:#}"))?;
        let first = out.first().ok_or("the model gave no output")?;
        let view = first
            .to_plain_array_view::<f32>()
            .map_err(|e| format!("output: {e:#}"))?;
        Ok((view.iter().copied().collect(), view.shape().to_vec()))
    }
}

/// The backend the `[detect]` section asks for: `tract`, `tensorrt`, or `auto` (TensorRT when
/// this build has it, else tract). Logs which one runs, once.
pub fn load(
    config: &crate::config::DetectConfig,
    card: &ModelCard,
) -> Result<Box<dyn InferenceBackend>, String> {
    let tensorrt =
        config.backend == "tensorrt" || (config.backend == "auto" && cfg!(feature = "tensorrt"));
    let backend: Box<dyn InferenceBackend> = if tensorrt {
        load_tensorrt(config, card)?
    } else {
        Box::new(TractBackend::load(
            &config.model,
            card,
            config.batch,
            config.threads,
        )?)
    };
    tracing::info!(
        backend = backend.name(),
        batch = backend.batch(),
        model = %config.model.display(),
        "detector loaded"
    );
    Ok(backend)
}

#[cfg(feature = "tensorrt")]
fn load_tensorrt(
    config: &crate::config::DetectConfig,
    card: &ModelCard,
) -> Result<Box<dyn InferenceBackend>, String> {
    Ok(Box::new(TensorRtBackend::load(config, card)?))
}

#[cfg(not(feature = "tensorrt"))]
fn load_tensorrt(
    _config: &crate::config::DetectConfig,
    _card: &ModelCard,
) -> Result<Box<dyn InferenceBackend>, String> {
    Err("this build has no TensorRT (cargo feature tensorrt)".into())
}

/// TensorRT.
#[cfg(feature = "tensorrt")]
pub struct TensorRtBackend {
    engine: polyvision_cuda::tensorrt::Engine,
    batch: usize,
}

#[cfg(feature = "tensorrt")]
impl TensorRtBackend {
    /// The engine for the configured model (from the cache, or built now), checked against the
    /// model card.
    pub fn load(config: &crate::config::DetectConfig, card: &ModelCard) -> Result<Self, String> {
        use polyvision_cuda::tensorrt::cache::Precision;
        let options = polyvision_cuda::tensorrt::EngineOptions {
            cache_dir: config.engine_cache.clone(),
            precision: Precision::parse(&config.precision)?,
            calibration_cache: config.calibration_cache.clone(),
            max_batch: config.batch as u32,
            workspace_bytes: 1 << 30,
            device: 0,
        };
        let engine = polyvision_cuda::tensorrt::Engine::open(&config.model, &options)?;
        let size = card.input_size as i64;
        let dims = &engine.input_dims;
        if dims[1] != 3 || dims[2] != size || dims[3] != size {
            return Err(format!(
                "{}: the engine's input is {dims:?}, the card says [N, 3, {size}, {size}]",
                engine.path.display()
            ));
        }
        let batch = if dims[0] > 0 {
            dims[0] as usize
        } else {
            config.batch.max(1)
        };
        Ok(TensorRtBackend { engine, batch })
    }
}

#[cfg(feature = "tensorrt")]
impl InferenceBackend for TensorRtBackend {
    fn name(&self) -> &'static str {
        "tensorrt"
    }

    fn batch(&self) -> usize {
        self.batch
    }

    fn run(&mut self, input: &[f32]) -> Result<(Vec<f32>, Vec<usize>), String> {
        self.engine.infer(input, self.batch)
    }
}
