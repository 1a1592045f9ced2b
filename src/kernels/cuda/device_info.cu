// GPU discovery and library versions through the CUDA runtime, cuBLAS and cuSPARSE.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusparse.h>
#include <fmt/format.h>

#include "sparsebench/core/system_info.h"

// cudnn_conv.cpp (declared in cuda_spmm.h, whose C++20 headers this C++17 unit cannot include).
namespace sb::gpu {
std::string cudnn_library_status();
}

namespace sb {

std::vector<GpuInfo> cuda_devices(std::string* why_none) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    if (why_none)
      *why_none = err != cudaSuccess ? fmt::format("unavailable: no usable GPU ({})", cudaGetErrorString(err))
                                     : std::string("unavailable: the CUDA runtime sees no GPU");
    cudaGetLastError();  // clear the sticky error so later calls are not confused
    return {};
  }
  std::vector<GpuInfo> gpus;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    gpus.push_back({i, p.name, p.major, p.minor, p.totalGlobalMem, p.multiProcessorCount});
  }
  if (why_none) *why_none = "ok";
  return gpus;
}

static std::string cuda_version_string(int v) { return fmt::format("{}.{}", v / 1000, v % 1000 / 10); }

std::vector<LibraryVersion> cuda_library_versions() {
  std::vector<LibraryVersion> out;
  out.push_back({"CUDA (compiled against)", cuda_version_string(CUDART_VERSION)});
  int rt = 0, drv = 0;
  out.push_back({"CUDA runtime", cudaRuntimeGetVersion(&rt) == cudaSuccess ? cuda_version_string(rt) : "unavailable"});
  out.push_back({"CUDA driver", cudaDriverGetVersion(&drv) == cudaSuccess && drv > 0
                                    ? cuda_version_string(drv) : "unavailable: no CUDA driver on this machine"});
  out.push_back({"cuBLAS", fmt::format("{}.{}.{}", CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH)});
  out.push_back({"cuSPARSE", fmt::format("{}.{}.{}", CUSPARSE_VER_MAJOR, CUSPARSE_VER_MINOR, CUSPARSE_VER_PATCH)});
  out.push_back({"cuDNN (dlopen)", gpu::cudnn_library_status()});
  return out;
}

}  // namespace sb
