//! Inference backends behind one trait; chosen once at start-up and passed down as a value.
//!
//! - [`TractBackend`]: tract (pure Rust ONNX), always available; its matrix products run on a
//!   thread pool of the size asked for (tract's default is one thread).
//! - TensorRT on the Jetson: not written yet.

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
