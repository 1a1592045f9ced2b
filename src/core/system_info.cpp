#include "sparsebench/core/system_info.h"

#include <cstdlib>
#include <filesystem>
#include <omp.h>
#include <sys/utsname.h>
#include <zlib.h>

#include <dnnl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sparsebench/core/threads.h"
#include "sparsebench/version.h"

namespace sb {

static std::string compiler_string() {
#if defined(__clang__)
  return fmt::format("Clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("GCC {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

SystemInfo system_info() {
  SystemInfo s;
  s.cpu = cpu_info();
  s.threads = num_threads();
  struct utsname u {};
  if (uname(&u) == 0) s.os = fmt::format("{} {} {}", u.sysname, u.release, u.machine);
  s.compiler = compiler_string();
  s.sparsebench_version = kVersion;
  s.build_type = kBuildType;

  const dnnl_version_t* v = dnnl_version();
  s.libraries.push_back({"oneDNN", fmt::format("{}.{}.{} ({}, cpu_runtime={})", v->major, v->minor, v->patch,
                                               v->hash ? v->hash : "", v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other")});
  s.libraries.push_back({"OpenMP", fmt::format("{} (spec date)", _OPENMP)});
  s.libraries.push_back({"zlib", zlibVersion()});
  s.libraries.push_back({"fmt", fmt::format("{}.{}.{}", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100)});
  s.libraries.push_back({"libtorch", kTorchVersion[0] ? std::string(kTorchVersion)
                                                      : std::string("unavailable: built without libtorch (SB_TORCH=OFF or libtorch-dev missing)")});
  {
    // libtorch's BLAS: whatever the libblas.so.3 alternative points to (OpenBLAS when installed).
    std::error_code ec;
    const auto blas = std::filesystem::canonical("/usr/lib/x86_64-linux-gnu/libblas.so.3", ec);
    const char* core = std::getenv("OPENBLAS_CORETYPE");
    s.libraries.push_back({"BLAS (libblas.so.3)", ec ? std::string("unavailable: no /usr/lib/x86_64-linux-gnu/libblas.so.3")
                                                     : fmt::format("{} (OPENBLAS_CORETYPE={})", blas.string(),
                                                                   core ? core : "unset")});
  }
  for (auto& l : cuda_library_versions()) s.libraries.push_back(l);
  for (auto& l : extra_library_versions()) s.libraries.push_back(l);

  s.gpus = cuda_devices(&s.gpu_status);
  if (!s.gpus.empty()) s.gpu_status = "ok";
  return s;
}

nlohmann::json to_json(const SystemInfo& s) {
  using nlohmann::json;
  const CpuInfo& c = s.cpu;
  json caches = json::array();
  for (const auto& k : c.caches)
    caches.push_back({{"level", k.level}, {"type", k.type}, {"size_bytes", k.size_bytes},
                      {"shared_by_cpus", k.shared_by_cpus}, {"instances", k.instances}});
  const CpuFeatures& f = c.features;
  json features = {
      {"sse4.2", f.sse42}, {"avx", f.avx}, {"fma", f.fma}, {"f16c", f.f16c}, {"avx2", f.avx2},
      {"avx_vnni", f.avx_vnni}, {"avx512f", f.avx512f}, {"avx512dq", f.avx512dq}, {"avx512cd", f.avx512cd},
      {"avx512bw", f.avx512bw}, {"avx512vl", f.avx512vl}, {"avx512_vbmi", f.avx512_vbmi},
      {"avx512_vnni", f.avx512_vnni}, {"avx512_bf16", f.avx512_bf16}, {"avx512_fp16", f.avx512_fp16},
      {"amx_tile", f.amx_tile}, {"amx_int8", f.amx_int8}, {"amx_bf16", f.amx_bf16}};
  json libs = json::object();
  for (const auto& l : s.libraries) libs[l.name] = l.version;
  json gpus = json::array();
  for (const auto& g : s.gpus)
    gpus.push_back({{"index", g.index}, {"name", g.name}, {"compute_capability", fmt::format("{}.{}", g.cc_major, g.cc_minor)},
                    {"memory_bytes", g.memory_bytes}, {"multiprocessors", g.multiprocessors}});
  return {
      {"sparsebench", {{"version", s.sparsebench_version}, {"build_type", s.build_type}}},
      {"cpu",
       {{"vendor", c.vendor}, {"model", c.model}, {"family", c.family}, {"model_number", c.model_number},
        {"stepping", c.stepping}, {"hypervisor", c.hypervisor}, {"features", features},
        {"isa_dispatch", isa_name(max_isa())}, {"logical_cpus", c.logical_cpus},
        {"physical_cores", c.physical_cores}, {"sockets", c.sockets}, {"caches", caches},
        {"llc_total_bytes", c.llc_total_bytes()}}},
      {"threads", s.threads},
      {"memory", {{"total_bytes", c.memory_total_bytes}, {"available_bytes", c.memory_available_bytes}}},
      {"os", s.os},
      {"compiler", s.compiler},
      {"libraries", libs},
      {"gpus", gpus},
      {"gpu_status", s.gpu_status},
  };
}

}  // namespace sb
