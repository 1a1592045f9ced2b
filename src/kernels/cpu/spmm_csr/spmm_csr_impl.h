#pragma once
// The CSR kernels as templates over a vector type (kernels/cpu/simd.h). Included once per ISA by
// spmm_csr_<isa>.cpp; everything is in an anonymous namespace (see simd.h).
#include <algorithm>

#include "kernels/cpu/simd.h"
#include "kernels/cpu/spmm_csr/spmm_csr.h"

namespace {

using sb::cpu::CsrPacked;
using sb::cpu::RunArgs;

// How many non-zeros ahead the X row is prefetched: far enough to hide an L2 hit (~15 cycles)
// behind the 8 FMAs of the current non-zeros, near enough to stay in L1.
constexpr int kCsrPrefetch = 6;
static_assert(kCsrPrefetch <= sb::cpu::kPrefetchPad);

// Rows [r0, r1), columns [n0, n0 + V * W) of Y, the last vector masked by `last`.
template <class S, int V, class Idx>
void csr_tile(const CsrPacked& a, const Idx* col, const RunArgs& g, std::int64_t r0, std::int64_t r1,
              std::int64_t n0, typename S::Mask last) {
  constexpr int W = S::kWidth;
  // Lines of 64 bytes that one X row segment spans: prefetch each once.
  constexpr int kLines = (V * W * 4 + 63) / 64;
  const std::int64_t n = g.n;
  const float* xb = g.x + n0;
  const std::int32_t* rp = a.csr.row_ptr.data();
  const float* val = a.csr.values.data();
  for (std::int64_t i = r0; i < r1; ++i) {
    typename S::V acc[V];
    const typename S::V b = S::set1(g.bias ? g.bias[i] : 0.f);
    for (int v = 0; v < V; ++v) acc[v] = b;
    const std::int32_t e = rp[i + 1];
    for (std::int32_t p = rp[i]; p < e; ++p) {
      const float* xr = xb + static_cast<std::int64_t>(col[p]) * n;
      const float* xf = xb + static_cast<std::int64_t>(col[p + kCsrPrefetch]) * n;
      for (int l = 0; l < kLines; ++l) S::prefetch(xf + l * 16);
      const typename S::V w = S::set1(val[p]);
      for (int v = 0; v < V - 1; ++v) acc[v] = S::fma(w, S::load(xr + v * W), acc[v]);
      acc[V - 1] = S::fma(w, S::load(xr + (V - 1) * W, last), acc[V - 1]);
    }
    float* yr = g.y + i * n + n0;
    for (int v = 0; v < V; ++v) {
      if (g.relu) acc[v] = S::relu(acc[v]);
      if (v < V - 1) S::store(yr + v * W, acc[v]);
      else S::store(yr + v * W, acc[v], last);
    }
  }
}

constexpr int kCsrMaxV = 8;  // accumulators per row: 8 zmm = 128 columns of N

template <class S, class Idx, int VT>
void csr_spmm_rows(const CsrPacked& a, const Idx* col, const RunArgs& g, std::int64_t r0,
                   std::int64_t r1) {
  constexpr int W = S::kWidth;
  // VT counts 64-byte vectors (16 floats); narrower ISAs use more registers of their width, up
  // to kCsrMaxV accumulators.
  constexpr int kV = std::min(kCsrMaxV, VT * 16 / W);
  constexpr int kTile = kV * W;
  std::int64_t n0 = 0;
  // Full tiles: the X panel of one tile is what every row of the range reads.
  for (; n0 + kTile <= g.n; n0 += kTile)
    csr_tile<S, kV, Idx>(a, col, g, r0, r1, n0, S::full_mask());
  const std::int64_t rest = g.n - n0;
  if (rest == 0) return;
  const int vecs = static_cast<int>((rest + W - 1) / W);
  const typename S::Mask last = S::tail_mask(static_cast<int>(rest - (vecs - 1) * W));
  switch (vecs) {
    case 1: csr_tile<S, 1, Idx>(a, col, g, r0, r1, n0, last); break;
    case 2: csr_tile<S, 2, Idx>(a, col, g, r0, r1, n0, last); break;
    case 3: csr_tile<S, 3, Idx>(a, col, g, r0, r1, n0, last); break;
    case 4: csr_tile<S, 4, Idx>(a, col, g, r0, r1, n0, last); break;
    case 5: csr_tile<S, 5, Idx>(a, col, g, r0, r1, n0, last); break;
    case 6: csr_tile<S, 6, Idx>(a, col, g, r0, r1, n0, last); break;
    case 7: csr_tile<S, 7, Idx>(a, col, g, r0, r1, n0, last); break;
    default: csr_tile<S, 8, Idx>(a, col, g, r0, r1, n0, last); break;
  }
}

template <class S, class Idx>
void csr_spmm_tiles(const CsrPacked& a, const Idx* col, const RunArgs& g, std::int64_t r0,
                    std::int64_t r1) {
  switch (a.tile_vectors) {
    case 8: return csr_spmm_rows<S, Idx, 8>(a, col, g, r0, r1);
    case 4: return csr_spmm_rows<S, Idx, 4>(a, col, g, r0, r1);
    default: return csr_spmm_rows<S, Idx, 2>(a, col, g, r0, r1);
  }
}

template <class S>
void csr_spmm(const CsrPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  if (a.csr.index_width == sb::IndexWidth::u16)
    csr_spmm_tiles<S>(a, a.csr.col16.data(), g, r0, r1);
  else
    csr_spmm_tiles<S>(a, a.csr.col32.data(), g, r0, r1);
}

// Portable GEMV: y[i] = sum_p val[p] * x[col[p]], four partial sums to break the add chain.
template <class Idx>
void csr_gemv_portable(const CsrPacked& a, const Idx* col, const RunArgs& g, std::int64_t r0,
                       std::int64_t r1) {
  const std::int32_t* rp = a.csr.row_ptr.data();
  const float* val = a.csr.values.data();
  for (std::int64_t i = r0; i < r1; ++i) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::int32_t p = rp[i];
    const std::int32_t e = rp[i + 1];
    for (; p + 4 <= e; p += 4) {
      s0 += val[p] * g.x[col[p]];
      s1 += val[p + 1] * g.x[col[p + 1]];
      s2 += val[p + 2] * g.x[col[p + 2]];
      s3 += val[p + 3] * g.x[col[p + 3]];
    }
    for (; p < e; ++p) s0 += val[p] * g.x[col[p]];
    float s = (s0 + s1) + (s2 + s3) + (g.bias ? g.bias[i] : 0.f);
    g.y[i] = g.relu && s < 0.f ? 0.f : s;
  }
}

// ---- column panels ----------------------------------------------------------------------------

// Rows [r0, r1), columns [n0, n0 + V * W): panel by panel, Y's tile row is the accumulator
// between panels (the first panel starts it from the bias, the last applies ReLU). kRows: X's rows
// at a.x_off (SpmmDesc::x_rows); otherwise at j * n, a multiply rather than a table load per
// non-zero (one load more next to V + 2 cost 5-15 % on ResNet-50's shapes).
template <class S, int V, bool kRows>
void csr_panel_tile(const sb::cpu::CsrPanelPacked& a, const RunArgs& g, std::int64_t r0,
                    std::int64_t r1, std::int64_t n0, typename S::Mask last) {
  constexpr int W = S::kWidth;
  const std::int64_t n = g.n, m = a.m;
  const std::uint8_t* col = a.col.data();
  const float* val = a.values.data();
  for (int p = 0; p < a.panels; ++p) {
    const bool first = p == 0, final = p == a.panels - 1;
    const float* xp = g.x + n0 + (kRows ? 0 : static_cast<std::int64_t>(p) * a.panel_cols * n);
    const std::int64_t* xo = a.x_off.data() + static_cast<std::int64_t>(p) * a.panel_cols;
    const std::int32_t* rp = a.ptr.data() + static_cast<std::int64_t>(p) * (m + 1);
    for (std::int64_t i = r0; i < r1; ++i) {
      const std::int32_t s = rp[i], e = rp[i + 1];
      // A row with nothing in this panel keeps its partial sums in Y, unless Y must be started
      // (first panel) or finished (ReLU at the last).
      if (s == e && !first && !(final && g.relu)) continue;
      float* yr = g.y + i * n + n0;
      typename S::V acc[V];
      if (first) {
        const typename S::V b = S::set1(g.bias ? g.bias[i] : 0.f);
        for (int v = 0; v < V; ++v) acc[v] = b;
      } else {
        for (int v = 0; v < V - 1; ++v) acc[v] = S::load(yr + v * W);
        acc[V - 1] = S::load(yr + (V - 1) * W, last);
      }
      for (std::int32_t q = s; q < e; ++q) {
        const float* xr = xp + (kRows ? xo[col[q]] : static_cast<std::int64_t>(col[q]) * n);
        const typename S::V w = S::set1(val[q]);
        for (int v = 0; v < V - 1; ++v) acc[v] = S::fma(w, S::load(xr + v * W), acc[v]);
        acc[V - 1] = S::fma(w, S::load(xr + (V - 1) * W, last), acc[V - 1]);
      }
      for (int v = 0; v < V; ++v) {
        if (final && g.relu) acc[v] = S::relu(acc[v]);
        if (v < V - 1) S::store(yr + v * W, acc[v]);
        else S::store(yr + v * W, acc[v], last);
      }
    }
  }
}

template <class S, int VT, bool kRows>
void csr_panel_rows(const sb::cpu::CsrPanelPacked& a, const RunArgs& g, std::int64_t r0,
                    std::int64_t r1) {
  constexpr int W = S::kWidth;
  constexpr int kV = std::min(kCsrMaxV, VT * 16 / W);
  constexpr int kTile = kV * W;
  std::int64_t n0 = 0;
  for (; n0 + kTile <= g.n; n0 += kTile) csr_panel_tile<S, kV, kRows>(a, g, r0, r1, n0, S::full_mask());
  const std::int64_t rest = g.n - n0;
  if (rest == 0) return;
  const int vecs = static_cast<int>((rest + W - 1) / W);
  const typename S::Mask last = S::tail_mask(static_cast<int>(rest - (vecs - 1) * W));
  switch (vecs) {
    case 1: return csr_panel_tile<S, 1, kRows>(a, g, r0, r1, n0, last);
    case 2: return csr_panel_tile<S, 2, kRows>(a, g, r0, r1, n0, last);
    case 3: return csr_panel_tile<S, 3, kRows>(a, g, r0, r1, n0, last);
    case 4: return csr_panel_tile<S, 4, kRows>(a, g, r0, r1, n0, last);
    case 5: return csr_panel_tile<S, 5, kRows>(a, g, r0, r1, n0, last);
    case 6: return csr_panel_tile<S, 6, kRows>(a, g, r0, r1, n0, last);
    case 7: return csr_panel_tile<S, 7, kRows>(a, g, r0, r1, n0, last);
    default: return csr_panel_tile<S, 8, kRows>(a, g, r0, r1, n0, last);
  }
}

template <class S, bool kRows>
void csr_panel_widths(const sb::cpu::CsrPanelPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  switch (a.tile_vectors) {
    case 8: return csr_panel_rows<S, 8, kRows>(a, g, r0, r1);
    case 4: return csr_panel_rows<S, 4, kRows>(a, g, r0, r1);
    default: return csr_panel_rows<S, 2, kRows>(a, g, r0, r1);
  }
}

template <class S>
void csr_panel(const sb::cpu::CsrPanelPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  if (a.x_off.empty())
    csr_panel_widths<S, false>(a, g, r0, r1);
  else
    csr_panel_widths<S, true>(a, g, r0, r1);
}

}  // namespace
