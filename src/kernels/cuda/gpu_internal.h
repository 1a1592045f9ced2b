#pragma once
// Internal to the GPU backend, free of CUDA headers (the CPU-only build compiles it too): the
// implementation list and the host view of a weight that every implementation packs from.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparsebench/kernels/cuda_spmm.h"

namespace sb::gpu {

using ImplList = std::vector<std::unique_ptr<GpuSpmmImpl>>;
void add_cublas_impls(ImplList& out);
void add_cusparse_impls(ImplList& out);
void add_cusparselt_impls(ImplList& out);
void add_balanced_impls(ImplList& out);
void add_csr_impls(ImplList& out);

// The weight as the GPU implementations see it: rounded to the storage type, row-major [m x k],
// with its keep-mask resolved (the mask, or the non-zeros when there is none).
struct HostWeight {
  std::int64_t m = 0, k = 0;
  std::vector<float> values;       // m * k, round_to(dtype) applied, pruned entries 0
  std::vector<std::uint8_t> kept;  // m * k, 1 = kept
};
HostWeight host_weight(const SpmmWeight& w, GpuDType t);
// True when the weight is a 2-D f32 tensor of [d.m x d.k] and the sizes are positive; else why.
bool weight_matches(const GpuSpmmDesc& d, const SpmmWeight& w, std::string* why);
// Verification against the host: tolerance on max |y - ref| / max |ref| for a dtype and k; the
// double-accumulated reference on the rounded weight and X ([k x n]); compare() returns "" or what
// is wrong, and sets *rel to the relative error.
double tolerance(GpuDType t, std::int64_t k);
std::vector<double> reference(const HostWeight& w, const std::vector<float>& x, std::int64_t n);
std::string compare(const std::vector<double>& ref, const std::vector<float>& y, std::int64_t n, double tol,
                    double* rel);
// A library loaded at run time (cuSPARSELt, cuDNN): dlopen (RTLD_NOW | RTLD_LOCAL) of $env_var when
// set, else of `name`. The handle, with *path the name that loaded; or nullptr, with *why =
// "unavailable: <each dlerror>".
void* open_library(const char* env_var, const std::string& name, std::string* path, std::string* why);
// Sets *why (when non-null) and returns false: the one-line rejection helper.
inline bool reject(std::string* why, std::string text) {
  if (why) *why = std::move(text);
  return false;
}

}  // namespace sb::gpu
