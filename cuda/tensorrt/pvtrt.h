/*
 * pvtrt.h — the C interface of Polyvision's TensorRT shim (pvtrt.cpp), written against the
 * TensorRT 10.3 C++ API that JetPack 6 ships. Rust reaches it through bindings generated from
 * this header alone (cuda/src/tensorrt/ffi.rs, scripts/gen-tensorrt-bindings.sh), so building the
 * Rust side never needs TensorRT's headers; only compiling pvtrt.cpp does.
 *
 * Conventions: functions returning int32_t return 0 on success and non-zero on failure, with a
 * NUL-terminated message in `error` (truncated to `error_len` bytes). No C++ exception crosses
 * this interface. Strings are UTF-8 file paths or tensor names.
 */
#ifndef PVTRT_H
#define PVTRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most dimensions of a tensor (TensorRT's Dims::MAX_DIMS). */
#define PVTRT_MAX_DIMS 8
/* Longest tensor name kept, including the NUL. */
#define PVTRT_MAX_NAME 128

/* A deserialized engine with its execution context, CUDA stream and device buffers. */
typedef struct PvtrtEngine PvtrtEngine;

/*
 * TensorRT's log messages, as ILogger::Severity: 0 internal error, 1 error, 2 warning, 3 info,
 * 4 verbose. Called from TensorRT's threads; must not unwind.
 */
typedef void (*PvtrtLogFn)(void *user, int32_t severity, const char *message);

/* Precision of an engine build. INT8 needs a calibration cache and falls back to FP16. */
typedef enum PvtrtPrecision {
    PVTRT_FP32 = 0,
    PVTRT_FP16 = 1,
    PVTRT_INT8 = 2
} PvtrtPrecision;

/* One input or output tensor of an engine. */
typedef struct PvtrtTensorInfo {
    char name[PVTRT_MAX_NAME];
    /* 1 for an input, 0 for an output. */
    int32_t is_input;
    int32_t nb_dims;
    /* -1 marks a dimension chosen at run time (the batch). */
    int64_t dims[PVTRT_MAX_DIMS];
} PvtrtTensorInfo;

/* The TensorRT library's version: major * 10000 + minor * 100 + patch (10.3.0 is 100300). */
int32_t pvtrt_library_version(void);

/* The name of CUDA device `device` (e.g. "Orin"), for the engine cache key. */
int32_t pvtrt_device_name(int32_t device, char *name, size_t name_len, char *error,
                          size_t error_len);

/*
 * Parses the ONNX model at `onnx_path`, builds an engine for batches of 1 to `max_batch` (when
 * the model's batch is dynamic) at `precision`, and writes the serialized engine to
 * `engine_path`. `int8_calibration_cache` is read for PVTRT_INT8 and ignored otherwise.
 */
int32_t pvtrt_build_engine(const char *onnx_path, const char *engine_path,
                           PvtrtPrecision precision, const char *int8_calibration_cache,
                           int32_t max_batch, size_t workspace_bytes, PvtrtLogFn log, void *user,
                           char *error, size_t error_len);

/* Loads a serialized engine onto CUDA device `device`; NULL on failure. */
PvtrtEngine *pvtrt_engine_load(const char *engine_path, int32_t device, PvtrtLogFn log,
                               void *user, char *error, size_t error_len);

/* Frees an engine (NULL is allowed). */
void pvtrt_engine_free(PvtrtEngine *engine);

/* Number of input and output tensors. */
int32_t pvtrt_engine_tensor_count(const PvtrtEngine *engine);

/* The `index`th tensor, as built (dynamic dimensions are -1). */
int32_t pvtrt_engine_tensor(const PvtrtEngine *engine, int32_t index, PvtrtTensorInfo *info,
                            char *error, size_t error_len);

/*
 * Runs the engine once on the stream it owns: copies `input` (float32, shape `input_dims`) to
 * the device, enqueues (enqueueV3), and copies the first output (float32) into `output`, whose
 * capacity is `output_capacity` floats; its shape goes to `output_dims`/`output_nb_dims`.
 */
int32_t pvtrt_engine_infer(PvtrtEngine *engine, const float *input, const int64_t *input_dims,
                           int32_t input_nb_dims, float *output, size_t output_capacity,
                           int64_t *output_dims, int32_t *output_nb_dims, char *error,
                           size_t error_len);

#ifdef __cplusplus
}
#endif

#endif /* PVTRT_H */
