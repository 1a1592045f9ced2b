// Process memory (see include/sparsebench/bench/memory.h).
#include "sparsebench/bench/memory.h"

#include <sys/resource.h>

#include <fstream>
#include <string>

namespace sb {

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

std::optional<std::size_t> peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return static_cast<std::size_t>(std::stoull(line.substr(6))) * 1024;
  struct rusage ru {};
  if (getrusage(RUSAGE_SELF, &ru) == 0) return static_cast<std::size_t>(ru.ru_maxrss) * 1024;
  return std::nullopt;
}

}  // namespace sb
