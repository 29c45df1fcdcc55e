//! Compiles the TensorRT shim (`tensorrt/pvtrt.cpp`) when the `tensorrt` feature is on, against
//! TensorRT and CUDA where JetPack puts them (or `TENSORRT_ROOT` / `CUDA_HOME`). Without the
//! feature nothing happens: the default build needs neither.
//!
//! `POLYVISION_TENSORRT_SKIP_SHIM=1` skips compiling and linking the shim, so that
//! `cargo check --features tensorrt` type-checks the Rust side on a machine without TensorRT
//! (CI does); such a build cannot link a binary.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "tensorrt")]
    shim::build();
}

#[cfg(feature = "tensorrt")]
mod shim {
    use std::path::PathBuf;

    pub(crate) fn build() {
        println!("cargo:rerun-if-changed=tensorrt/pvtrt.cpp");
        println!("cargo:rerun-if-changed=tensorrt/pvtrt.h");
        println!("cargo:rerun-if-env-changed=TENSORRT_ROOT");
        println!("cargo:rerun-if-env-changed=CUDA_HOME");
        println!("cargo:rerun-if-env-changed=POLYVISION_TENSORRT_SKIP_SHIM");
        if std::env::var_os("POLYVISION_TENSORRT_SKIP_SHIM").is_some() {
            println!(
                "cargo:warning=POLYVISION_TENSORRT_SKIP_SHIM: the TensorRT shim is not compiled; this build type-checks only"
            );
            return;
        }
        let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
        let multiarch = if arch == "aarch64" {
            "aarch64-linux-gnu"
        } else {
            "x86_64-linux-gnu"
        };
        let cuda = std::env::var_os("CUDA_HOME")
            .map_or_else(|| PathBuf::from("/usr/local/cuda"), PathBuf::from);
        let (trt_include, trt_lib) = match std::env::var_os("TENSORRT_ROOT") {
            Some(root) => {
                let root = PathBuf::from(root);
                (root.join("include"), root.join("lib"))
            }
            // JetPack (and NVIDIA's Debian packages) install TensorRT under the multiarch paths.
            None => (
                PathBuf::from(format!("/usr/include/{multiarch}")),
                PathBuf::from(format!("/usr/lib/{multiarch}")),
            ),
        };
        if !trt_include.join("NvInfer.h").exists() {
            panic!(
                "the tensorrt feature needs TensorRT's headers: no NvInfer.h in {} (set TENSORRT_ROOT)",
                trt_include.display()
            );
        }
        cc::Build::new()
            .cpp(true)
            .std("c++17")
            .file("tensorrt/pvtrt.cpp")
            .include("tensorrt")
            .include(&trt_include)
            .include(cuda.join("include"))
            // The INT8 calibrator interface is deprecated in TensorRT 10 but is what 10.3 has.
            .flag_if_supported("-Wno-deprecated-declarations")
            .compile("pvtrt");
        println!("cargo:rustc-link-search=native={}", trt_lib.display());
        for lib in [cuda.join("lib64"), cuda.join("lib")] {
            println!("cargo:rustc-link-search=native={}", lib.display());
        }
        for lib in ["nvinfer", "nvonnxparser", "cudart"] {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
    }
}
