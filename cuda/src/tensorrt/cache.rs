//! Where built TensorRT engines are kept, and when one must be built again.
//!
//! Building an engine from the ONNX model takes minutes on a Jetson, and an engine only runs on
//! the TensorRT version and GPU that built it. So engines are cached on disk under a key made of
//! the model's SHA-256, the TensorRT version, the GPU's name, the precision and the largest
//! batch; when any of them changes (a new model, a JetPack upgrade, a different module), the key
//! changes and the engine is built again. The engine is written to a temporary file and renamed,
//! so a power cut mid-build never leaves a half engine under a valid name. Pure Rust: tested on
//! every machine.

use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

/// Numeric precision of an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats.
    Fp32,
    /// 16-bit floats (the default: Orin's tensor cores, no accuracy loss worth measuring here).
    Fp16,
    /// 8-bit integers from a calibration cache, FP16 where a layer has no INT8 kernel.
    Int8,
}

impl Precision {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
        }
    }

    /// Parses the config spelling.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "fp32" => Ok(Precision::Fp32),
            "fp16" => Ok(Precision::Fp16),
            "int8" => Ok(Precision::Int8),
            other => Err(format!("precision {other:?}: fp32, fp16 or int8")),
        }
    }
}

/// Everything an engine depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineKey {
    /// SHA-256 of the ONNX file, hex.
    pub model_sha256: String,
    /// TensorRT version (major·10000 + minor·100 + patch).
    pub tensorrt_version: i32,
    /// The CUDA device's name.
    pub gpu_name: String,
    /// Precision.
    pub precision: Precision,
    /// Largest batch the engine takes.
    pub max_batch: u32,
    /// SHA-256 of the INT8 calibration cache, hex (empty otherwise).
    pub calibration_sha256: String,
}

/// SHA-256 of a file, hex.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path)?;
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl EngineKey {
    /// The cache file name: the model's stem and a digest of every part of the key.
    pub fn file_name(&self, model_stem: &str) -> String {
        let text = format!(
            "model={}\ntensorrt={}\ngpu={}\nprecision={}\nmax_batch={}\ncalibration={}\n",
            self.model_sha256,
            self.tensorrt_version,
            self.gpu_name,
            self.precision.name(),
            self.max_batch,
            self.calibration_sha256
        );
        let digest = hex(&Sha256::digest(text.as_bytes()));
        let stem: String = model_stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{stem}-{}.engine", &digest[..16])
    }
}

/// The engine cache folder.
#[derive(Debug, Clone)]
pub struct EngineCache {
    dir: PathBuf,
}

impl EngineCache {
    /// A cache in `dir` (created when needed).
    pub fn new(dir: &Path) -> Self {
        EngineCache {
            dir: dir.to_owned(),
        }
    }

    /// Where the engine for `key` lives.
    pub fn path(&self, model: &Path, key: &EngineKey) -> PathBuf {
        let stem = model
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned());
        self.dir.join(key.file_name(&stem))
    }

    /// The cached engine for `key`, or — when there is none — builds it with `build` (given a
    /// temporary path in the same folder) and moves it into place. Returns the path and whether
    /// it was built now.
    pub fn get_or_build(
        &self,
        model: &Path,
        key: &EngineKey,
        build: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<(PathBuf, bool), String> {
        let path = self.path(model, key);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            return Ok((path, false));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("engine cache {}: {e}", self.dir.display()))?;
        let tmp = path.with_extension(format!("engine.{}.tmp", std::process::id()));
        let built = build(&tmp).and_then(|()| {
            std::fs::rename(&tmp, &path)
                .map_err(|e| format!("moving the engine to {}: {e}", path.display()))
        });
        if let Err(e) = built {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok((path, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EngineKey {
        EngineKey {
            model_sha256: "ab".repeat(32),
            tensorrt_version: 100_300,
            gpu_name: "Orin".into(),
            precision: Precision::Fp16,
            max_batch: 8,
            calibration_sha256: String::new(),
        }
    }

    #[test]
    fn every_part_of_the_key_names_another_engine() {
        let base = key().file_name("polyvision-det");
        assert!(base.starts_with("polyvision-det-") && base.ends_with(".engine"));
        let variants = [
            EngineKey {
                model_sha256: "cd".repeat(32),
                ..key()
            },
            EngineKey {
                tensorrt_version: 100_400,
                ..key()
            },
            EngineKey {
                gpu_name: "NVIDIA H200".into(),
                ..key()
            },
            EngineKey {
                precision: Precision::Int8,
                ..key()
            },
            EngineKey {
                max_batch: 4,
                ..key()
            },
            EngineKey {
                calibration_sha256: "ef".repeat(32),
                ..key()
            },
        ];
        for v in variants {
            assert_ne!(v.file_name("polyvision-det"), base, "{v:?}");
        }
        assert_eq!(key().file_name("polyvision-det"), base, "stable");
    }

    #[test]
    fn an_engine_is_built_once_and_a_failed_build_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = EngineCache::new(&dir.path().join("engines"));
        let model = dir.path().join("polyvision-det.onnx");
        let mut builds = 0;
        for round in 0..2 {
            let (path, built) = cache
                .get_or_build(&model, &key(), |tmp| {
                    builds += 1;
                    std::fs::write(tmp, b"plan").map_err(|e| e.to_string())
                })
                .expect("engine");
            assert_eq!(std::fs::read(&path).expect("read"), b"plan");
            assert_eq!(built, round == 0);
        }
        assert_eq!(builds, 1, "the second start uses the cached engine");
        // A new TensorRT version builds again; a build that fails leaves no file behind.
        let newer = EngineKey {
            tensorrt_version: 100_400,
            ..key()
        };
        let err = cache
            .get_or_build(&model, &newer, |tmp| {
                std::fs::write(tmp, b"half").map_err(|e| e.to_string())?;
                Err("out of memory".into())
            })
            .expect_err("failed build");
        assert_eq!(err, "out of memory");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("engines"))
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "only the first engine: {left:?}");
    }

    #[test]
    fn the_model_hash_is_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("m.onnx");
        std::fs::write(&f, b"abc").expect("write");
        assert_eq!(
            file_sha256(&f).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
