// Our CPU kernels, in dispatch order: per format, the fastest ISA first and the scalar fallback
// last; each declines (with its reason) what it cannot run, so dispatch falls through.
#include "kernels/internal.h"

namespace sb::cpu {
void register_csr_kernels(SpmmRegistry& r);
void register_bsr_kernels(SpmmRegistry& r);
void register_balanced_kernels(SpmmRegistry& r);
}  // namespace sb::cpu

namespace sb::detail {
void register_cpu_kernels(SpmmRegistry& r) {
  cpu::register_csr_kernels(r);
  cpu::register_bsr_kernels(r);
  cpu::register_balanced_kernels(r);
}
}  // namespace sb::detail
