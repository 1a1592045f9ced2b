// Portable fallback: no ISA flags; the compiler may still vectorize for the baseline target.
#include "kernels/cpu/spmm_csr/spmm_csr_impl.h"

namespace sb::cpu {

void csr_spmm_scalar(const CsrPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  csr_spmm<SimdScalar>(a, g, r0, r1);
}

void csr_gemv_scalar(const CsrPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  if (a.csr.index_width == IndexWidth::u16)
    csr_gemv_portable(a, a.csr.col16.data(), g, r0, r1);
  else
    csr_gemv_portable(a, a.csr.col32.data(), g, r0, r1);
}

}  // namespace sb::cpu
