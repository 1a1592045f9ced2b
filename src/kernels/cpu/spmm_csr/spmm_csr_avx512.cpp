// Compiled with -mavx512f/bw/vl/dq -mfma (src/kernels/cpu/CMakeLists.txt); called only when
// max_isa() >= avx512.
#include "kernels/cpu/spmm_csr/spmm_csr_impl.h"

namespace sb::cpu {

void csr_spmm_avx512(const CsrPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  csr_spmm<SimdAvx512>(a, g, r0, r1);
}

void csr_panel_avx512(const CsrPanelPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  csr_panel<SimdAvx512>(a, g, r0, r1);
}

namespace {
template <class Idx>
__m512i load_idx16(const Idx* p) {
  if constexpr (sizeof(Idx) == 2)
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  else
    return _mm512_loadu_si512(p);
}
template <class Idx>
__m512i load_idx16(const Idx* p, __mmask16 m) {
  if constexpr (sizeof(Idx) == 2)
    return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
  else
    return _mm512_maskz_loadu_epi32(m, p);
}

// GEMV: a row's non-zeros 16 at a time: values load contiguously, X[col] through one gather;
// two accumulators hide the FMA latency, one horizontal sum per row.
template <class Idx>
void gemv(const CsrPacked& a, const Idx* col, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  const std::int32_t* rp = a.csr.row_ptr.data();
  const float* val = a.csr.values.data();
  for (std::int64_t i = r0; i < r1; ++i) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
    std::int32_t p = rp[i];
    const std::int32_t e = rp[i + 1];
    // Four gathers in flight: a gather's latency (~20 cycles) is what bounds one chain.
    for (; p + 64 <= e; p += 64) {
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(val + p),
                             _mm512_i32gather_ps(load_idx16(col + p), g.x, 4), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(val + p + 16),
                             _mm512_i32gather_ps(load_idx16(col + p + 16), g.x, 4), acc1);
      acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(val + p + 32),
                             _mm512_i32gather_ps(load_idx16(col + p + 32), g.x, 4), acc2);
      acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(val + p + 48),
                             _mm512_i32gather_ps(load_idx16(col + p + 48), g.x, 4), acc3);
    }
    acc0 = _mm512_add_ps(acc0, acc2);
    acc1 = _mm512_add_ps(acc1, acc3);
    for (; p + 32 <= e; p += 32) {
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(val + p),
                             _mm512_i32gather_ps(load_idx16(col + p), g.x, 4), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(val + p + 16),
                             _mm512_i32gather_ps(load_idx16(col + p + 16), g.x, 4), acc1);
    }
    for (; p < e; p += 16) {
      const int left = e - p;
      const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xFFFF)
                                     : static_cast<__mmask16>((1u << left) - 1u);
      const __m512 xv =
          _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, load_idx16(col + p, m), g.x, 4);
      acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, val + p), xv, acc0);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + (g.bias ? g.bias[i] : 0.f);
    g.y[i] = g.relu && s < 0.f ? 0.f : s;
  }
}
}  // namespace

void csr_gemv_avx512(const CsrPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  if (a.csr.index_width == IndexWidth::u16)
    gemv(a, a.csr.col16.data(), g, r0, r1);
  else
    gemv(a, a.csr.col32.data(), g, r0, r1);
}

}  // namespace sb::cpu
