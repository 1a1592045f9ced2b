// GELU and softmax rows with AVX-512 intrinsics (see elementwise.h; ISA flags:
// src/runtime/CMakeLists.txt).
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "runtime/elementwise.h"

namespace sb::rt {

namespace {

// exp(x) as the executor's scalar fast_exp: Cody-Waite reduction, Cephes' degree-6 polynomial,
// 2^n applied by scalef; 0 below -80 so that no result is denormal (see fast_exp).
inline __m512 exp_ps(__m512 x0) {
  const __m512 x = _mm512_min_ps(_mm512_max_ps(x0, _mm512_set1_ps(-80.f)), _mm512_set1_ps(88.f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.f));
  const __mmask16 tiny = _mm512_cmp_ps_mask(x0, _mm512_set1_ps(-80.f), _CMP_LT_OQ);
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~tiny), _mm512_scalef_ps(e, n));
}

// erf(x) by Abramowitz & Stegun 7.1.26; `e` gets exp(-x^2) (GELU's backward needs it too).
inline __m512 erf_ps(__m512 x, __m512& e) {
  const __m512 sign = _mm512_set1_ps(-0.f);
  const __m512 z = _mm512_andnot_ps(sign, x);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_fmadd_ps(z, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  p = _mm512_mul_ps(p, t);
  e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z)));
  const __m512 erf_abs = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.f));
  return _mm512_or_ps(erf_abs, _mm512_and_ps(sign, x));
}

inline __m512 gelu_ps(__m512 x) {
  __m512 e;
  const __m512 erf = erf_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)), e);
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.f), erf));
}

// d gelu(x) / dx = Phi(x) + x phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
inline __m512 gelu_grad_ps(__m512 x) {
  __m512 e;  // exp(-x^2 / 2)
  const __m512 erf = erf_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)), e);
  const __m512 cdf = _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_add_ps(_mm512_set1_ps(1.f), erf));
  return _mm512_fmadd_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.39894228040143268f)), e, cdf);
}

// Horizontal max / sum through memory: _mm512_reduce_*_ps trip GCC 12's -Wuninitialized inside
// its own headers (_mm256_undefined_pd); once per softmax row, the cost does not matter.
inline float hmax(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  return *std::max_element(t, t + 16);
}

inline float hsum(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  float s = 0.f;
  for (float e : t) s += e;
  return s;
}

}  // namespace

void gelu_avx512(const float* x, float* y, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, gelu_ps(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const auto m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, gelu_ps(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void gelu_backward_avx512(const float* x, const float* dy, float* dx, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dx + i, _mm512_mul_ps(_mm512_loadu_ps(dy + i), gelu_grad_ps(_mm512_loadu_ps(x + i))));
  if (i < n) {
    const auto m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(dx + i, m,
                          _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), gelu_grad_ps(_mm512_maskz_loadu_ps(m, x + i))));
  }
}

void softmax_row_avx512(float* row, std::int64_t n) {
  __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  std::int64_t j = 0;
  for (; j + 16 <= n; j += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(row + j));
  const auto tail = static_cast<__mmask16>((1u << (n - j)) - 1u);
  if (j < n) vmax = _mm512_mask_max_ps(vmax, tail, vmax, _mm512_maskz_loadu_ps(tail, row + j));
  const __m512 mx = _mm512_set1_ps(hmax(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (j = 0; j + 16 <= n; j += 16) {
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(row + j), mx));
    _mm512_storeu_ps(row + j, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  if (j < n) {
    const __m512 e = _mm512_maskz_mov_ps(tail, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, row + j), mx)));
    _mm512_mask_storeu_ps(row + j, tail, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.f / hsum(vsum));
  for (j = 0; j + 16 <= n; j += 16) _mm512_storeu_ps(row + j, _mm512_mul_ps(_mm512_loadu_ps(row + j), inv));
  if (j < n) _mm512_mask_storeu_ps(row + j, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, row + j), inv));
}

}  // namespace sb::rt
