// Compiled with -mavx2 -mfma (src/kernels/cpu/CMakeLists.txt); called only when max_isa() >= avx2.
#include "kernels/cpu/spmm_csr/spmm_csr_impl.h"

namespace sb::cpu {

void csr_spmm_avx2(const CsrPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  csr_spmm<SimdAvx2>(a, g, r0, r1);
}

void csr_panel_avx2(const CsrPanelPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  csr_panel<SimdAvx2>(a, g, r0, r1);
}

namespace {
template <class Idx>
__m256i load_idx8(const Idx* p) {
  if constexpr (sizeof(Idx) == 2)
    return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  else
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

template <class Idx>
void gemv(const CsrPacked& a, const Idx* col, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  const std::int32_t* rp = a.csr.row_ptr.data();
  const float* val = a.csr.values.data();
  for (std::int64_t i = r0; i < r1; ++i) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    std::int32_t p = rp[i];
    const std::int32_t e = rp[i + 1];
    for (; p + 16 <= e; p += 16) {
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(val + p),
                             _mm256_i32gather_ps(g.x, load_idx8(col + p), 4), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(val + p + 8),
                             _mm256_i32gather_ps(g.x, load_idx8(col + p + 8), 4), acc1);
    }
    acc0 = _mm256_add_ps(acc0, acc1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; p < e; ++p) s += val[p] * g.x[col[p]];
    s += g.bias ? g.bias[i] : 0.f;
    g.y[i] = g.relu && s < 0.f ? 0.f : s;
  }
}
}  // namespace

void csr_gemv_avx2(const CsrPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  if (a.csr.index_width == IndexWidth::u16)
    gemv(a, a.csr.col16.data(), g, r0, r1);
  else
    gemv(a, a.csr.col32.data(), g, r0, r1);
}

}  // namespace sb::cpu
