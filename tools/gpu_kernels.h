#pragma once
// `sparsebench kernels --device cuda`: the GPU half of cmd_kernels.cpp, kept in its own file.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparsebench/bench/gpu_model_bench.h"
#include "sparsebench/bench/kernel_bench.h"

namespace sb::cli {

// Runs the GPU sweep over cfg's shapes / matrices and prints table, csv or json. `dtypes` is a
// comma-separated list (f32, tf32, f16, bf16, i8); `kernel`: only this one of ours (plus the
// libraries); `skip`: implementations not to run. Returns the exit status: 0, or kExitContextLost
// when an implementation lost the CUDA context (the output is still written, its records say what
// ran; stderr names the implementation to skip on a rerun). Throws sb::Error (no GPU, bad dtype,
// unknown name) for the CLI to print.
constexpr int kExitContextLost = 3;
int run_kernels_cuda(const KernelBenchConfig& cfg, const std::string& dtypes, bool energy, const std::string& kernel,
                     const std::vector<std::string>& skip, const std::string& format);

// `sparsebench bench --device cuda`: run_gpu_model_bench and its table or JSON.
int run_bench_cuda(const GpuModelBenchConfig& config, const std::string& format);
nlohmann::json gpu_model_json(const GpuModelBenchResult& r);

}  // namespace sb::cli
