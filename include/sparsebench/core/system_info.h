#pragma once
// The machine and the libraries a measurement was taken with; stored with every result.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparsebench/core/cpu_info.h"

namespace sb {

struct LibraryVersion {
  std::string name;     // "oneDNN", "libtorch", "CUDA runtime", ...
  std::string version;  // "2.6.3", or "unavailable: <reason>"
};

struct GpuInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  std::size_t memory_bytes = 0;
  int multiprocessors = 0;
};

struct SystemInfo {
  CpuInfo cpu;
  int threads = 0;                       // the library's thread setting
  std::string os;                        // uname sysname + release
  std::string compiler;                  // e.g. "GCC 12.2.0"
  std::string sparsebench_version;
  std::string build_type;
  std::vector<LibraryVersion> libraries;
  std::vector<GpuInfo> gpus;
  std::string gpu_status;                // "ok", or why no GPU is listed
};

SystemInfo system_info();
nlohmann::json to_json(const SystemInfo& info);

// Implemented by the CUDA backend when it is built, else a stub that says why.
std::vector<GpuInfo> cuda_devices(std::string* why_none);
std::vector<LibraryVersion> cuda_library_versions();
// Versions of the peer libraries the kernels are compared with (Eigen, libxsmm, XNNPACK, ...).
std::vector<LibraryVersion> extra_library_versions();

}  // namespace sb
