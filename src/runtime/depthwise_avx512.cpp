// Depthwise plane loop, avx512 build (ISA flags: src/runtime/CMakeLists.txt).
//
// Stride 1 and 2 with kw <= kMaxKw run a register-blocked kernel: up to four 16-wide output
// chunks of one row stay in zmm accumulators while every tap is applied, and the row is stored
// once with bias and activation fused. The generic loop (depthwise_impl.h) reads and writes each
// output row once per tap, which made it load/store bound (mobilenet_v2's depthwise layers took
// most of the model's time with it). Out-of-row columns (padding, row ends, the tail chunk) are
// handled with masked loads, which never fault on masked-off lanes, so no padded copy is needed.
#include <immintrin.h>

#include "runtime/depthwise_impl.h"

namespace sb::rt {

namespace {

constexpr int kMaxKw = 7;
constexpr int kChunks = 4;  // 64 output columns per block: 4 independent FMA chains

inline __mmask16 lane_mask(std::int64_t first_col, std::int64_t step, std::int64_t W) {
  // Lanes j with 0 <= first_col + j * step < W.
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i col = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(first_col)),
                                       _mm512_mullo_epi32(iota, _mm512_set1_epi32(static_cast<int>(step))));
  const __mmask16 ge0 = _mm512_cmpge_epi32_mask(col, _mm512_setzero_si512());
  const __mmask16 ltw = _mm512_cmplt_epi32_mask(col, _mm512_set1_epi32(static_cast<int>(W)));
  return ge0 & ltw;
}

// R output rows x NC 16-wide chunks per tile, all in registers: R * NC independent FMA chains
// hide the FMA latency (a 14-wide plane has one chunk per row, so rows supply the parallelism).
template <int S, int R, int NC>
void dw_tile(const float* __restrict in, const float* __restrict w, float bias, float* __restrict out,
             const DwGeom& g, std::int64_t ox0, std::int64_t oy0, const __mmask16 (*mlo)[kMaxKw],
             const __mmask16 (*mhi)[kMaxKw], const __mmask16* mout) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  __m512 acc[R][NC];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_set1_ps(bias);
  for (std::int64_t ky = 0; ky < g.kh; ++ky) {
    for (int kx = 0; kx < g.kw; ++kx) {
      const __m512 wv = _mm512_set1_ps(w[ky * g.kw + kx]);
      for (int r = 0; r < R; ++r) {
        const std::int64_t iy = (oy0 + r) * g.sh - g.ph + ky * g.dh;
        if (iy < 0 || iy >= g.H) continue;  // zero padding rows contribute nothing
        const float* row = in + iy * g.W;
        for (int c = 0; c < NC; ++c) {
          const std::int64_t first = (ox0 + 16 * c) * S + kx * g.dw - g.pw;
          __m512 v;
          if constexpr (S == 1) {
            v = _mm512_maskz_loadu_ps(mlo[c][kx], row + first);
          } else {
            const __m512 a = _mm512_maskz_loadu_ps(mlo[c][kx], row + first);
            const __m512 b = _mm512_maskz_loadu_ps(mhi[c][kx], row + first + 16);
            v = _mm512_permutex2var_ps(a, even, b);
          }
          acc[r][c] = _mm512_fmadd_ps(wv, v, acc[r][c]);
        }
      }
    }
  }
  const __m512 vzero = _mm512_setzero_ps(), vsix = _mm512_set1_ps(6.f);
  for (int r = 0; r < R; ++r) {
    float* o = out + (oy0 + r) * g.Wo + ox0;
    for (int c = 0; c < NC; ++c) {
      __m512 v = acc[r][c];
      if (g.act == 1) v = _mm512_max_ps(v, vzero);
      if (g.act == 2) v = _mm512_min_ps(_mm512_max_ps(v, vzero), vsix);
      _mm512_mask_storeu_ps(o + 16 * c, mout[c], v);
    }
  }
}

template <int S, int R, int NC>
void dw_rows(const float* in, const float* w, float bias, float* out, const DwGeom& g, std::int64_t ox0,
             const __mmask16 (*mlo)[kMaxKw], const __mmask16 (*mhi)[kMaxKw], const __mmask16* mout) {
  std::int64_t oy = 0;
  for (; oy + R <= g.Ho; oy += R) dw_tile<S, R, NC>(in, w, bias, out, g, ox0, oy, mlo, mhi, mout);
  for (; oy < g.Ho; ++oy) dw_tile<S, 1, NC>(in, w, bias, out, g, ox0, oy, mlo, mhi, mout);
}

template <int S>
void dw_plane_blocked(const float* __restrict in, const float* __restrict w, float bias, float* __restrict out,
                      const DwGeom& g) {
  for (std::int64_t ox0 = 0; ox0 < g.Wo; ox0 += 16 * kChunks) {
    const int nch = static_cast<int>(std::min<std::int64_t>(kChunks, (g.Wo - ox0 + 15) / 16));
    // Input masks per (chunk, kx): they depend on the columns only, so they are set once per block.
    __mmask16 mlo[kChunks][kMaxKw] = {}, mhi[kChunks][kMaxKw] = {};
    __mmask16 mout[kChunks] = {};
    for (int c = 0; c < nch; ++c) {
      const std::int64_t oc = ox0 + 16 * c;
      const std::int64_t valid = std::min<std::int64_t>(16, g.Wo - oc);
      mout[c] = static_cast<__mmask16>((1u << valid) - 1u);
      for (int kx = 0; kx < g.kw; ++kx) {
        const std::int64_t first = oc * S + kx * g.dw - g.pw;
        if (S == 1) {
          mlo[c][kx] = lane_mask(first, 1, g.W) & mout[c];
        } else {
          // 32 consecutive input columns, of which the even lanes feed the 16 outputs; columns
          // past the last needed one stay masked.
          const std::int64_t wlim = std::min(g.W, first + 2 * valid);
          mlo[c][kx] = lane_mask(first, 1, wlim);
          mhi[c][kx] = lane_mask(first + 16, 1, wlim);
        }
      }
    }
    switch (nch) {
      case 1: dw_rows<S, 4, 1>(in, w, bias, out, g, ox0, mlo, mhi, mout); break;
      case 2: dw_rows<S, 2, 2>(in, w, bias, out, g, ox0, mlo, mhi, mout); break;
      case 3: dw_rows<S, 1, 3>(in, w, bias, out, g, ox0, mlo, mhi, mout); break;
      default: dw_rows<S, 1, 4>(in, w, bias, out, g, ox0, mlo, mhi, mout); break;
    }
  }
}

}  // namespace

void dw_plane_avx512(const float* in, const float* w, float bias, float* out, const DwGeom& g) {
  if (g.kw <= kMaxKw && g.sw == 1)
    dw_plane_blocked<1>(in, w, bias, out, g);
  else if (g.kw <= kMaxKw && g.sw == 2)
    dw_plane_blocked<2>(in, w, bias, out, g);
  else
    dw_plane_impl(in, w, bias, out, g);
}

}  // namespace sb::rt
