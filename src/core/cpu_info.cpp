#include "sparsebench/core/cpu_info.h"

#include <cpuid.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include "sparsebench/core/error.h"

namespace sb {
namespace {

struct Regs { unsigned a = 0, b = 0, c = 0, d = 0; };

Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

std::uint64_t xgetbv0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

bool bit(unsigned v, int b) { return (v >> b) & 1u; }

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  if (!f) return {};
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// "0-3,8,10-11" -> 7
int count_cpu_list(const std::string& list) {
  int n = 0;
  std::stringstream ss(list);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (part.empty()) continue;
    auto dash = part.find('-');
    if (dash == std::string::npos) ++n;
    else n += std::atoi(part.substr(dash + 1).c_str()) - std::atoi(part.substr(0, dash).c_str()) + 1;
  }
  return n;
}

std::size_t parse_size(const std::string& s) {   // "32K", "2048K", "32M"
  if (s.empty()) return 0;
  std::size_t v = std::strtoull(s.c_str(), nullptr, 10);
  switch (s.back()) {
    case 'K': return v << 10;
    case 'M': return v << 20;
    case 'G': return v << 30;
    default: return v;
  }
}

std::size_t meminfo_bytes(std::string_view key) {
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0 && line.size() > key.size() && line[key.size()] == ':')
      return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10) << 10;
  return 0;
}

CpuInfo detect() {
  CpuInfo info;
  Regs r0 = cpuid(0);
  char vendor[13] = {};
  std::memcpy(vendor, &r0.b, 4);
  std::memcpy(vendor + 4, &r0.d, 4);
  std::memcpy(vendor + 8, &r0.c, 4);
  info.vendor = vendor;
  const unsigned max_leaf = r0.a;

  if (cpuid(0x80000000).a >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      Regs r = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i, &r, 16);
    }
    std::string b = brand;
    auto first = b.find_first_not_of(' ');
    auto last = b.find_last_not_of(' ');
    info.model = first == std::string::npos ? "" : b.substr(first, last - first + 1);
  }

  Regs r1 = cpuid(1);
  unsigned base_family = (r1.a >> 8) & 0xf, base_model = (r1.a >> 4) & 0xf;
  info.family = static_cast<int>(base_family == 0xf ? base_family + ((r1.a >> 20) & 0xff) : base_family);
  info.model_number = static_cast<int>(base_family >= 0x6 ? base_model + (((r1.a >> 16) & 0xf) << 4) : base_model);
  info.stepping = static_cast<int>(r1.a & 0xf);
  info.hypervisor = bit(r1.c, 31);

  const bool osxsave = bit(r1.c, 27);
  const std::uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;

  CpuFeatures& f = info.features;
  f.sse42 = bit(r1.c, 20);
  f.avx = bit(r1.c, 28) && os_avx;
  f.fma = bit(r1.c, 12) && os_avx;
  f.f16c = bit(r1.c, 29) && os_avx;
  if (max_leaf >= 7) {
    Regs r7 = cpuid(7, 0);
    f.avx2 = bit(r7.b, 5) && os_avx;
    f.avx512f = bit(r7.b, 16) && os_avx512;
    f.avx512dq = bit(r7.b, 17) && os_avx512;
    f.avx512cd = bit(r7.b, 28) && os_avx512;
    f.avx512bw = bit(r7.b, 30) && os_avx512;
    f.avx512vl = bit(r7.b, 31) && os_avx512;
    f.avx512_vbmi = bit(r7.c, 1) && os_avx512;
    f.avx512_vnni = bit(r7.c, 11) && os_avx512;
    f.avx512_fp16 = bit(r7.d, 23) && os_avx512;
    f.amx_bf16 = bit(r7.d, 22) && os_amx;
    f.amx_tile = bit(r7.d, 24) && os_amx;
    f.amx_int8 = bit(r7.d, 25) && os_amx;
    if (r7.a >= 1) {
      Regs r71 = cpuid(7, 1);
      f.avx_vnni = bit(r71.a, 4) && os_avx;
      f.avx512_bf16 = bit(r71.a, 5) && os_avx512;
    }
  }

  // Topology and caches from sysfs (what the kernel exposes; a VM shows its virtual topology).
  info.logical_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  std::set<std::pair<std::string, std::string>> cores;
  std::set<std::string> packages;
  for (int cpu = 0; cpu < info.logical_cpus; ++cpu) {
    std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::string pkg = read_text(base + "physical_package_id"), core = read_text(base + "core_id");
    if (pkg.empty() && core.empty()) continue;
    packages.insert(pkg);
    cores.insert({pkg, core});
  }
  info.physical_cores = cores.empty() ? info.logical_cpus : static_cast<int>(cores.size());
  info.sockets = packages.empty() ? 1 : static_cast<int>(packages.size());

  for (int idx = 0;; ++idx) {
    std::string base = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(idx) + "/";
    std::string level = read_text(base + "level");
    if (level.empty()) break;
    CacheInfo c;
    c.level = std::atoi(level.c_str());
    c.type = read_text(base + "type");
    c.size_bytes = parse_size(read_text(base + "size"));
    c.shared_by_cpus = std::max(1, count_cpu_list(read_text(base + "shared_cpu_list")));
    c.instances = std::max(1, info.logical_cpus / c.shared_by_cpus);
    info.caches.push_back(c);
  }
  info.memory_total_bytes = meminfo_bytes("MemTotal");
  info.memory_available_bytes = meminfo_bytes("MemAvailable");
  return info;
}

}  // namespace

std::size_t CpuInfo::llc_total_bytes() const {
  const CacheInfo* llc = nullptr;
  for (const auto& c : caches)
    if (c.type != "Instruction" && (!llc || c.level > llc->level)) llc = &c;
  return llc ? llc->size_bytes * static_cast<std::size_t>(llc->instances) : 0;
}

std::vector<std::string> CpuInfo::feature_names() const {
  std::vector<std::string> v;
  const CpuFeatures& f = features;
  auto add = [&](bool on, const char* name) { if (on) v.emplace_back(name); };
  add(f.sse42, "sse4.2"); add(f.avx, "avx"); add(f.f16c, "f16c"); add(f.fma, "fma"); add(f.avx2, "avx2");
  add(f.avx_vnni, "avx_vnni");
  add(f.avx512f, "avx512f"); add(f.avx512dq, "avx512dq"); add(f.avx512cd, "avx512cd");
  add(f.avx512bw, "avx512bw"); add(f.avx512vl, "avx512vl"); add(f.avx512_vbmi, "avx512_vbmi");
  add(f.avx512_vnni, "avx512_vnni"); add(f.avx512_bf16, "avx512_bf16"); add(f.avx512_fp16, "avx512_fp16");
  add(f.amx_tile, "amx_tile"); add(f.amx_int8, "amx_int8"); add(f.amx_bf16, "amx_bf16");
  return v;
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = detect();
  return info;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

Isa max_isa() {
  const CpuFeatures& f = cpu_info().features;
  Isa hw = Isa::scalar;
  if (f.avx2 && f.fma) hw = Isa::avx2;
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq) hw = Isa::avx512;
  if (const char* cap = std::getenv("SB_ISA"); cap && *cap) {
    std::string_view c = cap;
    Isa want = c == "scalar" ? Isa::scalar : c == "avx2" ? Isa::avx2 : c == "avx512" ? Isa::avx512 : hw;
    if (want < hw) hw = want;
  }
  return hw;
}

std::string openblas_coretype_for(const CpuInfo& cpu) {
  const CpuFeatures& f = cpu.features;
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq) return f.avx512_bf16 ? "Cooperlake" : "SkylakeX";
  if (f.avx2 && f.fma) return "Haswell";
  return {};
}

}  // namespace sb
