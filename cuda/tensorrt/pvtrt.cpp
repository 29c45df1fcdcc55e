// pvtrt.cpp — Polyvision's TensorRT shim: the C interface of pvtrt.h over the TensorRT 10.3 C++
// API (JetPack 6). Kept small on purpose: building, loading and running one engine. Every
// function catches every exception, so none crosses into Rust.
//
// Built by cuda/build.rs with the `tensorrt` feature (links nvinfer, nvonnxparser, cudart).

#include "pvtrt.h"

#include <NvInfer.h>
#include <NvOnnxParser.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace {

void set_error(char *error, size_t error_len, const std::string &message) {
    if (error == nullptr || error_len == 0) {
        return;
    }
    size_t n = std::min(message.size(), error_len - 1);
    std::memcpy(error, message.data(), n);
    error[n] = '\0';
}

// Forwards TensorRT's messages to the caller's function.
class Logger : public nvinfer1::ILogger {
  public:
    Logger(PvtrtLogFn fn, void *user) : fn_(fn), user_(user) {}
    void log(Severity severity, const char *msg) noexcept override {
        if (fn_ != nullptr) {
            fn_(user_, static_cast<int32_t>(severity), msg);
        }
    }

  private:
    PvtrtLogFn fn_;
    void *user_;
};

std::string cuda_error(const char *what, cudaError_t e) {
    return std::string(what) + ": " + cudaGetErrorString(e);
}

int64_t volume(const nvinfer1::Dims &d) {
    int64_t v = 1;
    for (int32_t i = 0; i < d.nbDims; ++i) {
        v *= d.d[i];
    }
    return v;
}

// Reads an INT8 calibration cache written earlier (by a TensorRT calibration run); it never
// calibrates itself, so a missing cache is an error.
class CacheCalibrator : public nvinfer1::IInt8EntropyCalibrator2 {
  public:
    explicit CacheCalibrator(std::vector<char> cache) : cache_(std::move(cache)) {}
    int32_t getBatchSize() const noexcept override { return 1; }
    bool getBatch(void *[], const char *[], int32_t) noexcept override { return false; }
    const void *readCalibrationCache(size_t &length) noexcept override {
        length = cache_.size();
        return cache_.data();
    }
    void writeCalibrationCache(const void *, size_t) noexcept override {}

  private:
    std::vector<char> cache_;
};

bool read_file(const char *path, std::vector<char> &out) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        return false;
    }
    out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    return true;
}

struct DeviceBuffer {
    std::string name;
    void *ptr = nullptr;
    size_t bytes = 0;
};

}  // namespace

// Members in construction order: the logger outlives the runtime, the runtime the engine, the
// engine its context (destruction runs in reverse).
struct PvtrtEngine {
    explicit PvtrtEngine(PvtrtLogFn fn, void *user) : logger(fn, user) {}
    ~PvtrtEngine() {
        for (auto &b : buffers) {
            if (b.ptr != nullptr) {
                cudaFree(b.ptr);
            }
        }
        if (stream != nullptr) {
            cudaStreamDestroy(stream);
        }
    }
    Logger logger;
    std::unique_ptr<nvinfer1::IRuntime> runtime;
    std::unique_ptr<nvinfer1::ICudaEngine> engine;
    std::unique_ptr<nvinfer1::IExecutionContext> context;
    cudaStream_t stream = nullptr;
    std::vector<DeviceBuffer> buffers;
    int32_t device = 0;

    // A device buffer of at least `bytes` for tensor `name`.
    void *buffer(const char *name, size_t bytes) {
        for (auto &b : buffers) {
            if (b.name == name) {
                if (b.bytes < bytes) {
                    cudaFree(b.ptr);
                    b.ptr = nullptr;
                    b.bytes = 0;
                    if (cudaMalloc(&b.ptr, bytes) != cudaSuccess) {
                        return nullptr;
                    }
                    b.bytes = bytes;
                }
                return b.ptr;
            }
        }
        DeviceBuffer b;
        b.name = name;
        if (cudaMalloc(&b.ptr, bytes) != cudaSuccess) {
            return nullptr;
        }
        b.bytes = bytes;
        buffers.push_back(b);
        return buffers.back().ptr;
    }
};

extern "C" {

int32_t pvtrt_library_version(void) { return getInferLibVersion(); }

int32_t pvtrt_device_name(int32_t device, char *name, size_t name_len, char *error,
                          size_t error_len) {
    try {
        cudaDeviceProp prop{};
        cudaError_t e = cudaGetDeviceProperties(&prop, device);
        if (e != cudaSuccess) {
            set_error(error, error_len, cuda_error("cudaGetDeviceProperties", e));
            return 1;
        }
        set_error(name, name_len, prop.name);
        return 0;
    } catch (const std::exception &e) {
        set_error(error, error_len, e.what());
    } catch (...) {
        set_error(error, error_len, "unknown C++ exception");
    }
    return 1;
}

int32_t pvtrt_build_engine(const char *onnx_path, const char *engine_path,
                           PvtrtPrecision precision, const char *int8_calibration_cache,
                           int32_t max_batch, size_t workspace_bytes, PvtrtLogFn log, void *user,
                           char *error, size_t error_len) {
    try {
        Logger logger(log, user);
        std::unique_ptr<nvinfer1::IBuilder> builder(nvinfer1::createInferBuilder(logger));
        if (!builder) {
            set_error(error, error_len, "createInferBuilder failed");
            return 1;
        }
        // Explicit batch is the only mode in TensorRT 10: no flags.
        std::unique_ptr<nvinfer1::INetworkDefinition> network(builder->createNetworkV2(0U));
        std::unique_ptr<nvonnxparser::IParser> parser(
            nvonnxparser::createParser(*network, logger));
        if (!network || !parser) {
            set_error(error, error_len, "creating the network or the ONNX parser failed");
            return 1;
        }
        if (!parser->parseFromFile(onnx_path,
                                   static_cast<int32_t>(nvinfer1::ILogger::Severity::kWARNING))) {
            std::string message = std::string(onnx_path) + ": ONNX parser:";
            for (int32_t i = 0; i < parser->getNbErrors(); ++i) {
                message += std::string(" ") + parser->getError(i)->desc();
            }
            set_error(error, error_len, message);
            return 1;
        }
        std::unique_ptr<nvinfer1::IBuilderConfig> config(builder->createBuilderConfig());
        config->setMemoryPoolLimit(nvinfer1::MemoryPoolType::kWORKSPACE, workspace_bytes);
        std::unique_ptr<CacheCalibrator> calibrator;
        if (precision == PVTRT_FP16 || precision == PVTRT_INT8) {
            config->setFlag(nvinfer1::BuilderFlag::kFP16);
        }
        if (precision == PVTRT_INT8) {
            std::vector<char> cache;
            if (int8_calibration_cache == nullptr || !read_file(int8_calibration_cache, cache) ||
                cache.empty()) {
                set_error(error, error_len,
                          std::string("INT8 needs a calibration cache; none at ") +
                              (int8_calibration_cache ? int8_calibration_cache : "(not given)"));
                return 1;
            }
            calibrator = std::make_unique<CacheCalibrator>(std::move(cache));
            config->setFlag(nvinfer1::BuilderFlag::kINT8);
            config->setInt8Calibrator(calibrator.get());
        }
        // A dynamic batch gets one profile: 1 to max_batch, tuned for max_batch.
        for (int32_t i = 0; i < network->getNbInputs(); ++i) {
            nvinfer1::ITensor *input = network->getInput(i);
            nvinfer1::Dims dims = input->getDimensions();
            for (int32_t k = 1; k < dims.nbDims; ++k) {
                if (dims.d[k] < 0) {
                    set_error(error, error_len,
                              std::string("input ") + input->getName() +
                                  ": only the batch may be dynamic; export the model with a "
                                  "fixed input size");
                    return 1;
                }
            }
            if (dims.nbDims > 0 && dims.d[0] < 0) {
                nvinfer1::IOptimizationProfile *profile = builder->createOptimizationProfile();
                nvinfer1::Dims lo = dims, hi = dims;
                lo.d[0] = 1;
                hi.d[0] = std::max<int32_t>(1, max_batch);
                profile->setDimensions(input->getName(), nvinfer1::OptProfileSelector::kMIN, lo);
                profile->setDimensions(input->getName(), nvinfer1::OptProfileSelector::kOPT, hi);
                profile->setDimensions(input->getName(), nvinfer1::OptProfileSelector::kMAX, hi);
                config->addOptimizationProfile(profile);
            }
        }
        std::unique_ptr<nvinfer1::IHostMemory> plan(
            builder->buildSerializedNetwork(*network, *config));
        if (!plan || plan->size() == 0) {
            set_error(error, error_len, "buildSerializedNetwork failed (see the log)");
            return 1;
        }
        std::ofstream out(engine_path, std::ios::binary | std::ios::trunc);
        out.write(static_cast<const char *>(plan->data()),
                  static_cast<std::streamsize>(plan->size()));
        out.close();
        if (!out) {
            set_error(error, error_len, std::string(engine_path) + ": cannot write the engine");
            return 1;
        }
        return 0;
    } catch (const std::exception &e) {
        set_error(error, error_len, e.what());
    } catch (...) {
        set_error(error, error_len, "unknown C++ exception");
    }
    return 1;
}

PvtrtEngine *pvtrt_engine_load(const char *engine_path, int32_t device, PvtrtLogFn log,
                               void *user, char *error, size_t error_len) {
    try {
        cudaError_t e = cudaSetDevice(device);
        if (e != cudaSuccess) {
            set_error(error, error_len, cuda_error("cudaSetDevice", e));
            return nullptr;
        }
        std::vector<char> plan;
        if (!read_file(engine_path, plan) || plan.empty()) {
            set_error(error, error_len, std::string(engine_path) + ": cannot read the engine");
            return nullptr;
        }
        auto engine = std::make_unique<PvtrtEngine>(log, user);
        engine->device = device;
        engine->runtime.reset(nvinfer1::createInferRuntime(engine->logger));
        if (!engine->runtime) {
            set_error(error, error_len, "createInferRuntime failed");
            return nullptr;
        }
        engine->engine.reset(engine->runtime->deserializeCudaEngine(plan.data(), plan.size()));
        if (!engine->engine) {
            set_error(error, error_len,
                      std::string(engine_path) +
                          ": not an engine of this TensorRT and GPU (see the log)");
            return nullptr;
        }
        engine->context.reset(engine->engine->createExecutionContext());
        if (!engine->context) {
            set_error(error, error_len, "createExecutionContext failed");
            return nullptr;
        }
        e = cudaStreamCreate(&engine->stream);
        if (e != cudaSuccess) {
            set_error(error, error_len, cuda_error("cudaStreamCreate", e));
            return nullptr;
        }
        return engine.release();
    } catch (const std::exception &e) {
        set_error(error, error_len, e.what());
    } catch (...) {
        set_error(error, error_len, "unknown C++ exception");
    }
    return nullptr;
}

void pvtrt_engine_free(PvtrtEngine *engine) {
    try {
        delete engine;
    } catch (...) {
        // Nothing to report to: a destructor that throws leaks, it does not crash the rig.
    }
}

int32_t pvtrt_engine_tensor_count(const PvtrtEngine *engine) {
    return engine == nullptr ? 0 : engine->engine->getNbIOTensors();
}

int32_t pvtrt_engine_tensor(const PvtrtEngine *engine, int32_t index, PvtrtTensorInfo *info,
                            char *error, size_t error_len) {
    try {
        if (engine == nullptr || info == nullptr || index < 0 ||
            index >= engine->engine->getNbIOTensors()) {
            set_error(error, error_len, "no such tensor");
            return 1;
        }
        const char *name = engine->engine->getIOTensorName(index);
        if (engine->engine->getTensorDataType(name) != nvinfer1::DataType::kFLOAT) {
            set_error(error, error_len,
                      std::string("tensor ") + name + " is not float32 (rebuild the engine)");
            return 1;
        }
        std::memset(info, 0, sizeof(*info));
        set_error(info->name, sizeof(info->name), name);
        info->is_input =
            engine->engine->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT ? 1 : 0;
        nvinfer1::Dims d = engine->engine->getTensorShape(name);
        info->nb_dims = std::min<int32_t>(d.nbDims, PVTRT_MAX_DIMS);
        for (int32_t k = 0; k < info->nb_dims; ++k) {
            info->dims[k] = d.d[k];
        }
        return 0;
    } catch (const std::exception &e) {
        set_error(error, error_len, e.what());
    } catch (...) {
        set_error(error, error_len, "unknown C++ exception");
    }
    return 1;
}

int32_t pvtrt_engine_infer(PvtrtEngine *engine, const float *input, const int64_t *input_dims,
                           int32_t input_nb_dims, float *output, size_t output_capacity,
                           int64_t *output_dims, int32_t *output_nb_dims, char *error,
                           size_t error_len) {
    try {
        if (engine == nullptr || input == nullptr || output == nullptr ||
            input_nb_dims <= 0 || input_nb_dims > PVTRT_MAX_DIMS) {
            set_error(error, error_len, "bad arguments");
            return 1;
        }
        nvinfer1::ICudaEngine &e = *engine->engine;
        nvinfer1::IExecutionContext &ctx = *engine->context;
        const char *input_name = nullptr;
        const char *output_name = nullptr;
        for (int32_t i = 0; i < e.getNbIOTensors(); ++i) {
            const char *name = e.getIOTensorName(i);
            bool is_input = e.getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT;
            if (is_input && input_name == nullptr) {
                input_name = name;
            } else if (!is_input && output_name == nullptr) {
                output_name = name;
            }
        }
        if (input_name == nullptr || output_name == nullptr) {
            set_error(error, error_len, "the engine needs an input and an output");
            return 1;
        }
        nvinfer1::Dims dims{};
        dims.nbDims = input_nb_dims;
        for (int32_t k = 0; k < input_nb_dims; ++k) {
            dims.d[k] = input_dims[k];
        }
        if (!ctx.setInputShape(input_name, dims)) {
            set_error(error, error_len, "input shape outside the engine's profile");
            return 1;
        }
        size_t in_bytes = static_cast<size_t>(volume(dims)) * sizeof(float);
        void *d_in = engine->buffer(input_name, in_bytes);
        if (d_in == nullptr) {
            set_error(error, error_len, "cudaMalloc for the input failed");
            return 1;
        }
        cudaError_t ce = cudaMemcpyAsync(d_in, input, in_bytes, cudaMemcpyHostToDevice,
                                         engine->stream);
        if (ce != cudaSuccess) {
            set_error(error, error_len, cuda_error("copy to the device", ce));
            return 1;
        }
        ctx.setTensorAddress(input_name, d_in);
        // Every output needs an address, even those nobody reads.
        nvinfer1::Dims out_dims{};
        void *d_out = nullptr;
        for (int32_t i = 0; i < e.getNbIOTensors(); ++i) {
            const char *name = e.getIOTensorName(i);
            if (e.getTensorIOMode(name) != nvinfer1::TensorIOMode::kOUTPUT) {
                continue;
            }
            nvinfer1::Dims d = ctx.getTensorShape(name);
            if (volume(d) < 0) {
                set_error(error, error_len, std::string("output ") + name + " has no shape");
                return 1;
            }
            void *ptr = engine->buffer(name, static_cast<size_t>(volume(d)) * sizeof(float));
            if (ptr == nullptr) {
                set_error(error, error_len, "cudaMalloc for an output failed");
                return 1;
            }
            ctx.setTensorAddress(name, ptr);
            if (std::strcmp(name, output_name) == 0) {
                out_dims = d;
                d_out = ptr;
            }
        }
        size_t out_count = static_cast<size_t>(volume(out_dims));
        if (out_count > output_capacity) {
            set_error(error, error_len,
                      "output of " + std::to_string(out_count) + " values; room for " +
                          std::to_string(output_capacity));
            return 1;
        }
        if (!ctx.enqueueV3(engine->stream)) {
            set_error(error, error_len, "enqueueV3 failed (see the log)");
            return 1;
        }
        ce = cudaMemcpyAsync(output, d_out, out_count * sizeof(float), cudaMemcpyDeviceToHost,
                             engine->stream);
        if (ce != cudaSuccess) {
            set_error(error, error_len, cuda_error("copy from the device", ce));
            return 1;
        }
        ce = cudaStreamSynchronize(engine->stream);
        if (ce != cudaSuccess) {
            set_error(error, error_len, cuda_error("cudaStreamSynchronize", ce));
            return 1;
        }
        *output_nb_dims = out_dims.nbDims;
        for (int32_t k = 0; k < out_dims.nbDims && k < PVTRT_MAX_DIMS; ++k) {
            output_dims[k] = out_dims.d[k];
        }
        return 0;
    } catch (const std::exception &e) {
        set_error(error, error_len, e.what());
    } catch (...) {
        set_error(error, error_len, "unknown C++ exception");
    }
    return 1;
}

}  // extern "C"
