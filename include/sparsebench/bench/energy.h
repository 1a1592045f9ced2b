#pragma once
// Energy counters. CPU: RAPL through the Linux powercap interface
// (/sys/class/powercap/intel-rapl:N/energy_uj, one per package; AMD Zen exposes the same files).
// Where no counter can be read (a VM, no permission) the meter says why; nothing is estimated.
#include <cstdint>
#include <string>
#include <vector>

namespace sb {

class EnergyMeter {
 public:
  // Finds the package domains under `root` (the default is the real sysfs; tests pass a fake
  // tree) and reads each once. Never throws: an unusable meter has available() == false.
  explicit EnergyMeter(const std::string& root = "/sys/class/powercap");

  bool available() const { return !domains_.empty(); }
  // Why available() is false, as "unavailable: <reason>" (e.g. "unavailable: no
  // /sys/class/powercap/intel-rapl:* (VM without RAPL)"); when available, what is measured
  // ("rapl: 1 package domain(s), whole socket(s)").
  const std::string& note() const { return note_; }

  // Joules accumulated by every package domain since construction, counter wrap-around handled
  // (the counters wrap at max_energy_range_uj). 0 when unavailable. Call at least once per
  // wrap period (minutes) to keep the count right.
  double joules();

 private:
  struct Domain {
    std::string path;            // .../energy_uj
    std::uint64_t max_uj = 0;    // max_energy_range_uj
    std::uint64_t last_uj = 0;
    double total_j = 0;
  };
  std::vector<Domain> domains_;
  std::string note_;
};

}  // namespace sb
