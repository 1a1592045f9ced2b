// ISA flags for this file are set in src/kernels/cpu/CMakeLists.txt; called only when
// max_isa() allows it.
#include "kernels/cpu/spmm_balanced/spmm_balanced_impl.h"

namespace sb::cpu {
void balanced_spmm_avx2(const BalancedPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  balanced_spmm<SimdAvx2>(a, g, r0, r1);
}
void balanced_panel_avx2(const BalancedPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  balanced_panel<SimdAvx2>(a, g, r0, r1);
}
}  // namespace sb::cpu
