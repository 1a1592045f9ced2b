#pragma once
// What the CPU can do, detected at run time (cpuid + XGETBV for OS support, sysfs for caches).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sb {

struct CpuFeatures {
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false, avx512cd = false;
  bool avx512_vnni = false, avx512_bf16 = false, avx512_fp16 = false, avx512_vbmi = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  bool avx_vnni = false;
};

struct CacheInfo {
  int level = 0;
  std::string type;               // "Data", "Instruction", "Unified"
  std::size_t size_bytes = 0;     // one instance
  int shared_by_cpus = 0;         // logical CPUs that share one instance
  int instances = 0;              // instances across the machine (online CPUs / sharing)
};

struct CpuInfo {
  std::string vendor;             // "GenuineIntel", "AuthenticAMD"
  std::string model;              // brand string
  int family = 0, model_number = 0, stepping = 0;
  CpuFeatures features;
  int logical_cpus = 0;           // online
  int physical_cores = 0;
  int sockets = 0;
  std::vector<CacheInfo> caches;
  std::size_t memory_total_bytes = 0;
  std::size_t memory_available_bytes = 0;
  bool hypervisor = false;

  // Size of the last-level cache, whole machine (one instance times instances); 0 if unknown.
  std::size_t llc_total_bytes() const;
  // The ISA names present, most capable last: "avx2", "avx512f", ...
  std::vector<std::string> feature_names() const;
};

// Detected once, then cached.
const CpuInfo& cpu_info();

// SB_ISA=scalar|avx2|avx512 caps the ISA the dispatcher may use (for testing and comparison).
enum class Isa { scalar = 0, avx2 = 1, avx512 = 2 };
Isa max_isa();            // what the CPU supports, capped by SB_ISA
const char* isa_name(Isa isa);

// The OPENBLAS_CORETYPE that matches this CPU's ISA ("Cooperlake" for AVX-512 with BF16,
// "SkylakeX" for AVX-512, "Haswell" for AVX2 + FMA, empty otherwise). OpenBLAS 0.3.21 (Debian 12)
// picks its kernels from cpuid at load and can misdetect CPUs it does not know (it may fall back to
// generic kernels, several times slower); libtorch's BLAS is OpenBLAS when installed, so the
// libtorch baselines set it (see tools/main.cpp, which re-executes itself with it set).
std::string openblas_coretype_for(const CpuInfo& cpu);

}  // namespace sb
