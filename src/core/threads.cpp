#include "sparsebench/core/threads.h"

#include <omp.h>
#include <sched.h>

#include <atomic>

#include "sparsebench/core/error.h"

namespace sb {

static std::atomic<int> g_threads{0};

int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1, omp_get_num_procs());
}

void set_num_threads(int n) {
  SB_CHECK(n >= 0, "thread count {} is negative: expected 0 (all cores) or a positive count", n);
  g_threads = n;
  omp_set_num_threads(num_threads());
}

int num_threads() {
  int n = g_threads.load();
  return n > 0 ? n : available_cpus();
}

}  // namespace sb
