// Built when the CUDA backend is not: says why no GPU can be listed.
#include "sparsebench/core/system_info.h"

namespace sb {

std::vector<GpuInfo> cuda_devices(std::string* why_none) {
  if (why_none) *why_none = "unavailable: sparsebench was built without CUDA (nvcc not found or SB_CUDA=OFF)";
  return {};
}

std::vector<LibraryVersion> cuda_library_versions() {
  return {{"CUDA", "unavailable: built without CUDA"}};
}

}  // namespace sb
