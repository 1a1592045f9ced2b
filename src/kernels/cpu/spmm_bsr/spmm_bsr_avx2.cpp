// ISA flags for this file are set in src/kernels/cpu/CMakeLists.txt; called only when
// max_isa() allows it.
#include "kernels/cpu/spmm_bsr/spmm_bsr_impl.h"

namespace sb::cpu {
void bsr_spmm_avx2(const BsrPacked& a, const RunArgs& g, std::int64_t I0, std::int64_t I1) {
  bsr_spmm<SimdAvx2>(a, g, I0, I1);
}
}  // namespace sb::cpu
