//! The safe side of the shim: an engine built (or taken from the cache), loaded and run.
#![allow(unsafe_code)]

use super::cache::{EngineCache, EngineKey, Precision, file_sha256};
use super::ffi;
use std::ffi::{CStr, CString, c_char, c_void};
use std::path::{Path, PathBuf};

const ERROR_LEN: usize = 1024;

/// How to build an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where engines are cached.
    pub cache_dir: PathBuf,
    /// Precision (FP16 by default).
    pub precision: Precision,
    /// INT8 calibration cache (for [`Precision::Int8`]).
    pub calibration_cache: Option<PathBuf>,
    /// Largest batch.
    pub max_batch: u32,
    /// Builder workspace, bytes.
    pub workspace_bytes: usize,
    /// CUDA device.
    pub device: i32,
}

/// TensorRT's messages into `tracing`. Never unwinds into C++: a panic is caught and dropped.
extern "C" fn log_message(_user: *mut c_void, severity: i32, message: *const c_char) {
    let _ = std::panic::catch_unwind(|| {
        if message.is_null() {
            return;
        }
        // SAFETY: TensorRT passes a NUL-terminated string valid for this call.
        let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
        match severity {
            0 | 1 => tracing::error!(target: "tensorrt", "{text}"),
            2 => tracing::warn!(target: "tensorrt", "{text}"),
            3 => tracing::info!(target: "tensorrt", "{text}"),
            _ => tracing::debug!(target: "tensorrt", "{text}"),
        }
    });
}

fn error_text(buf: &[c_char]) -> String {
    // SAFETY: the shim always NUL-terminates within the buffer; the buffer starts zeroed.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn c_path(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{}: a path with a NUL byte", p.display()))
}

/// A loaded engine with its input and output shapes.
pub struct Engine {
    raw: *mut ffi::PvtrtEngine,
    /// Input shape as built (-1: chosen per run).
    pub input_dims: Vec<i64>,
    /// First output's shape as built.
    pub output_dims: Vec<i64>,
    /// The engine file (from the cache).
    pub path: PathBuf,
}

// SAFETY: the engine owns its context, stream and buffers; it is used by one thread at a time
// (`&mut self` for inference), which TensorRT allows.
unsafe impl Send for Engine {}

impl Engine {
    /// The engine for `model`: from the cache when its key matches, otherwise built from the
    /// ONNX file first (minutes on a Jetson), then loaded.
    pub fn open(model: &Path, options: &EngineOptions) -> Result<Self, String> {
        // SAFETY: no arguments; returns an integer.
        let version = unsafe { ffi::pvtrt_library_version() };
        let mut name: [c_char; 256] = [0; 256];
        let mut err: [c_char; ERROR_LEN] = [0; ERROR_LEN];
        // SAFETY: buffers are valid for their lengths.
        let rc = unsafe {
            ffi::pvtrt_device_name(
                options.device,
                name.as_mut_ptr(),
                name.len(),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            return Err(format!(
                "CUDA device {}: {}",
                options.device,
                error_text(&err)
            ));
        }
        let gpu_name = error_text(&name);
        let model_sha256 = file_sha256(model).map_err(|e| format!("{}: {e}", model.display()))?;
        let calibration_sha256 = match (&options.calibration_cache, options.precision) {
            (Some(c), Precision::Int8) => file_sha256(c)
                .map_err(|e| format!("INT8 calibration cache {}: {e}", c.display()))?,
            (None, Precision::Int8) => {
                return Err("INT8 needs a calibration cache (detect.calibration_cache)".into());
            }
            _ => String::new(),
        };
        let key = EngineKey {
            model_sha256,
            tensorrt_version: version,
            gpu_name,
            precision: options.precision,
            max_batch: options.max_batch.max(1),
            calibration_sha256,
        };
        let cache = EngineCache::new(&options.cache_dir);
        let (path, built) = cache.get_or_build(model, &key, |tmp| {
            tracing::info!(model = %model.display(), precision = options.precision.name(), gpu = %key.gpu_name, tensorrt = version, "building the TensorRT engine (minutes, once per model, TensorRT and GPU)");
            let onnx = c_path(model)?;
            let out = c_path(tmp)?;
            let calibration = options
                .calibration_cache
                .as_deref()
                .map(c_path)
                .transpose()?;
            let precision = match options.precision {
                Precision::Fp32 => ffi::PvtrtPrecision::PVTRT_FP32,
                Precision::Fp16 => ffi::PvtrtPrecision::PVTRT_FP16,
                Precision::Int8 => ffi::PvtrtPrecision::PVTRT_INT8,
            };
            let mut err: [c_char; ERROR_LEN] = [0; ERROR_LEN];
            // SAFETY: strings are NUL-terminated and outlive the call; the error buffer is valid.
            let rc = unsafe {
                ffi::pvtrt_build_engine(
                    onnx.as_ptr(),
                    out.as_ptr(),
                    precision,
                    calibration.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
                    key.max_batch as i32,
                    options.workspace_bytes,
                    Some(log_message),
                    std::ptr::null_mut(),
                    err.as_mut_ptr(),
                    err.len(),
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(format!("building the engine: {}", error_text(&err)))
            }
        })?;
        if !built {
            tracing::info!(engine = %path.display(), "TensorRT engine from the cache");
        }
        let file = c_path(&path)?;
        let mut err: [c_char; ERROR_LEN] = [0; ERROR_LEN];
        // SAFETY: the path is NUL-terminated; the error buffer is valid.
        let raw = unsafe {
            ffi::pvtrt_engine_load(
                file.as_ptr(),
                options.device,
                Some(log_message),
                std::ptr::null_mut(),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if raw.is_null() {
            return Err(format!("{}: {}", path.display(), error_text(&err)));
        }
        let mut engine = Engine {
            raw,
            input_dims: Vec::new(),
            output_dims: Vec::new(),
            path,
        };
        // SAFETY: `raw` is a live engine.
        let count = unsafe { ffi::pvtrt_engine_tensor_count(engine.raw) };
        for index in 0..count {
            // SAFETY: an all-zero PvtrtTensorInfo is valid (plain integers and chars).
            let mut info: ffi::PvtrtTensorInfo = unsafe { std::mem::zeroed() };
            // SAFETY: `raw` is live, `info` and `err` are valid.
            let rc = unsafe {
                ffi::pvtrt_engine_tensor(engine.raw, index, &mut info, err.as_mut_ptr(), err.len())
            };
            if rc != 0 {
                return Err(format!("{}: {}", engine.path.display(), error_text(&err)));
            }
            let n = (info.nb_dims.max(0) as usize).min(info.dims.len());
            let dims = info.dims[..n].to_vec();
            if info.is_input == 1 && engine.input_dims.is_empty() {
                engine.input_dims = dims;
            } else if info.is_input == 0 && engine.output_dims.is_empty() {
                engine.output_dims = dims;
            }
        }
        if engine.input_dims.len() != 4 || engine.output_dims.len() != 3 {
            return Err(format!(
                "{}: expected an input [N, 3, H, W] and an output [N, 4+classes, boxes] (or transposed); found {:?} and {:?}",
                engine.path.display(),
                engine.input_dims,
                engine.output_dims
            ));
        }
        Ok(engine)
    }

    /// Runs a batch: `input` holds `batch × 3 × H × W` floats. Returns the first output and its
    /// shape.
    pub fn infer(&mut self, input: &[f32], batch: usize) -> Result<(Vec<f32>, Vec<usize>), String> {
        let mut dims = self.input_dims.clone();
        dims[0] = batch as i64;
        let want: i64 = dims.iter().product();
        if want < 0 || input.len() as i64 != want {
            return Err(format!(
                "input of {} values for shape {dims:?}",
                input.len()
            ));
        }
        let per_item: i64 = self.output_dims[1..].iter().product::<i64>().max(1);
        let mut output = vec![0f32; (per_item.max(0) as usize) * batch];
        let mut out_dims = [0i64; ffi::PVTRT_MAX_DIMS as usize];
        let mut out_n = 0i32;
        let mut err: [c_char; ERROR_LEN] = [0; ERROR_LEN];
        // SAFETY: every pointer is valid for the lengths passed; `raw` is live and used by this
        // thread only (`&mut self`).
        let rc = unsafe {
            ffi::pvtrt_engine_infer(
                self.raw,
                input.as_ptr(),
                dims.as_ptr(),
                dims.len() as i32,
                output.as_mut_ptr(),
                output.len(),
                out_dims.as_mut_ptr(),
                &mut out_n,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            return Err(format!("TensorRT: {}", error_text(&err)));
        }
        let shape: Vec<usize> = out_dims[..(out_n.max(0) as usize).min(out_dims.len())]
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        output.truncate(shape.iter().product());
        Ok((output, shape))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: `raw` came from pvtrt_engine_load and is freed once.
        unsafe { ffi::pvtrt_engine_free(self.raw) };
    }
}
