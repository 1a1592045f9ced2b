// RAPL through powercap (see include/sparsebench/bench/energy.h).
#include "sparsebench/bench/energy.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

namespace sb {
namespace fs = std::filesystem;
namespace {

bool read_u64(const std::string& path, std::uint64_t& v) {
  std::ifstream in(path);
  return static_cast<bool>(in >> v);
}

}  // namespace

EnergyMeter::EnergyMeter(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    note_ = fmt::format("unavailable: no {} (no powercap driver; a VM without RAPL)", root);
    return;
  }
  // Package domains only ("intel-rapl:0", not the sub-domains "intel-rapl:0:0", which the package
  // already contains): summing both would count core energy twice.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("intel-rapl:", 0) == 0 && std::count(name.begin(), name.end(), ':') == 1) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) {
    note_ = fmt::format("unavailable: no {}/intel-rapl:* (VM without RAPL)", root);
    return;
  }
  std::string unreadable;
  for (const std::string& n : names) {
    Domain d;
    d.path = (fs::path(root) / n / "energy_uj").string();
    const std::string max_path = (fs::path(root) / n / "max_energy_range_uj").string();
    if (!read_u64(d.path, d.last_uj)) {
      unreadable = d.path;
      continue;
    }
    if (!read_u64(max_path, d.max_uj)) d.max_uj = 0;
    domains_.push_back(d);
  }
  if (domains_.empty()) {
    note_ = fmt::format("unavailable: {} not readable (root only since Linux 5.10; run as root or "
                        "chmod o+r it)",
                        unreadable);
    return;
  }
  note_ = fmt::format("rapl: {} package domain{}, whole socket (other processes included)", domains_.size(),
                      domains_.size() == 1 ? "" : "s");
}

double EnergyMeter::joules() {
  double sum = 0;
  for (Domain& d : domains_) {
    std::uint64_t now = 0;
    if (read_u64(d.path, now)) {
      const std::uint64_t delta = now >= d.last_uj ? now - d.last_uj : (d.max_uj ? d.max_uj - d.last_uj + now : 0);
      d.total_j += static_cast<double>(delta) * 1e-6;
      d.last_uj = now;
    }
    sum += d.total_j;
  }
  return sum;
}

}  // namespace sb
