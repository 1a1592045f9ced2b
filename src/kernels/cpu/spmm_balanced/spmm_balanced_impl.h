#pragma once
// The balanced kernel as a template over a vector type; included once per ISA (see simd.h).
#include <algorithm>

#include "kernels/cpu/simd.h"
#include "kernels/cpu/spmm_balanced/spmm_balanced.h"

namespace {

using sb::cpu::BalancedPacked;
using sb::cpu::RunArgs;

// Rows [r0, r1), columns [n0, n0 + V * W). KK > 0: entries per bank known at compile time.
// While bank q is computed, the X rows of bank q + 1 are prefetched (their offsets are known).
template <class S, int V, int KK, class Off>
void balanced_tile(const BalancedPacked& a, const Off* off, const RunArgs& g, std::int64_t r0,
                   std::int64_t r1, std::int64_t n0, typename S::Mask last) {
  constexpr int W = S::kWidth;
  constexpr int kLines = (V * W * 4 + 63) / 64;
  const sb::Balanced& b = a.bal;
  const int k = KK > 0 ? KK : b.k;
  const std::int64_t banks = b.banks(), n = g.n;
  const std::int64_t bank_stride = static_cast<std::int64_t>(b.bank) * n;
  for (std::int64_t i = r0; i < r1; ++i) {
    typename S::V acc[V];
    const typename S::V bv = S::set1(g.bias ? g.bias[i] : 0.f);
    for (int v = 0; v < V; ++v) acc[v] = bv;
    const float* vp = b.values.data() + i * banks * k;
    const Off* op = off + i * banks * k;
    const float* xq = g.x + n0;
    for (std::int64_t q = 0; q < banks; ++q, vp += k, op += k, xq += bank_stride) {
      // Prefetch never faults, so the address past the last bank needs no guard; op[k + t] is
      // in the padding for the last row.
      for (int t = 0; t < k; ++t)
        for (int l = 0; l < kLines; ++l)
          S::prefetch(xq + bank_stride + static_cast<std::int64_t>(op[k + t]) * n + l * 16);
      for (int t = 0; t < k; ++t) {
        const float* xr = xq + static_cast<std::int64_t>(op[t]) * n;
        const typename S::V w = S::set1(vp[t]);
        for (int v = 0; v < V - 1; ++v) acc[v] = S::fma(w, S::load(xr + v * W), acc[v]);
        acc[V - 1] = S::fma(w, S::load(xr + (V - 1) * W, last), acc[V - 1]);
      }
    }
    float* yr = g.y + i * n + n0;
    for (int v = 0; v < V; ++v) {
      typename S::V o = g.relu ? S::relu(acc[v]) : acc[v];
      if (v < V - 1) S::store(yr + v * W, o);
      else S::store(yr + v * W, o, last);
    }
  }
}

constexpr int kBalancedMaxV = 8;

template <class S, int KK, class Off, int V = kBalancedMaxV>
void balanced_tail(int vecs, const BalancedPacked& a, const Off* off, const RunArgs& g,
                   std::int64_t r0, std::int64_t r1, std::int64_t n0, typename S::Mask last) {
  if constexpr (V >= 1) {
    if (vecs == V) return balanced_tile<S, V, KK, Off>(a, off, g, r0, r1, n0, last);
    balanced_tail<S, KK, Off, V - 1>(vecs, a, off, g, r0, r1, n0, last);
  }
}

template <class S, int KK, class Off>
void balanced_rows(const BalancedPacked& a, const Off* off, const RunArgs& g, std::int64_t r0,
                   std::int64_t r1) {
  constexpr int W = S::kWidth;
  constexpr int kTile = kBalancedMaxV * W;
  std::int64_t n0 = 0;
  for (; n0 + kTile <= g.n; n0 += kTile)
    balanced_tile<S, kBalancedMaxV, KK, Off>(a, off, g, r0, r1, n0, S::full_mask());
  const std::int64_t rest = g.n - n0;
  if (rest == 0) return;
  const int vecs = static_cast<int>((rest + W - 1) / W);
  balanced_tail<S, KK, Off>(vecs, a, off, g, r0, r1, n0,
                            S::tail_mask(static_cast<int>(rest - (vecs - 1) * W)));
}

template <class S, class Off>
void balanced_by_k(const BalancedPacked& a, const Off* off, const RunArgs& g, std::int64_t r0,
                   std::int64_t r1) {
  switch (a.bal.k) {
    case 1: return balanced_rows<S, 1, Off>(a, off, g, r0, r1);
    case 2: return balanced_rows<S, 2, Off>(a, off, g, r0, r1);
    case 3: return balanced_rows<S, 3, Off>(a, off, g, r0, r1);
    case 4: return balanced_rows<S, 4, Off>(a, off, g, r0, r1);
    default: return balanced_rows<S, 0, Off>(a, off, g, r0, r1);
  }
}

template <class S>
void balanced_spmm(const BalancedPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  if (a.bal.wide_offsets())
    balanced_by_k<S>(a, a.bal.off16.data(), g, r0, r1);
  else
    balanced_by_k<S>(a, a.bal.off8.data(), g, r0, r1);
}

// ---- column panels ----------------------------------------------------------------------------

// kRows: X's rows at a.x_off (SpmmDesc::x_rows), one table load per entry; otherwise bank q's
// rows at q * bank * n, the entry's offset times n (as in the CSR column-panel kernel).
template <class S, int V, int KK, class Off, bool kRows>
void balanced_panel_tile(const BalancedPacked& a, const Off* off, const RunArgs& g, std::int64_t r0,
                         std::int64_t r1, std::int64_t n0, typename S::Mask last) {
  constexpr int W = S::kWidth;
  const sb::Balanced& b = a.bal;
  const int k = KK > 0 ? KK : b.k;
  const std::int64_t banks = b.banks(), n = g.n;
  const std::int64_t bank_stride = static_cast<std::int64_t>(b.bank) * n;
  for (std::int64_t q0 = 0; q0 < banks; q0 += a.panel_banks) {
    const std::int64_t q1 = std::min<std::int64_t>(banks, q0 + a.panel_banks);
    const bool first = q0 == 0, final = q1 == banks;
    for (std::int64_t i = r0; i < r1; ++i) {
      float* yr = g.y + i * n + n0;
      typename S::V acc[V];
      if (first) {
        const typename S::V bv = S::set1(g.bias ? g.bias[i] : 0.f);
        for (int v = 0; v < V; ++v) acc[v] = bv;
      } else {
        for (int v = 0; v < V - 1; ++v) acc[v] = S::load(yr + v * W);
        acc[V - 1] = S::load(yr + (V - 1) * W, last);
      }
      // Panel-major storage (pack_panels): this panel's entries of all rows are contiguous.
      const std::int64_t at = q0 * b.rows * k + i * (q1 - q0) * k;
      const float* vp = b.values.data() + at;
      const Off* op = off + at;
      const float* xq = g.x + n0 + (kRows ? 0 : q0 * bank_stride);
      const std::int64_t* xo = kRows ? a.x_off.data() + q0 * b.bank : nullptr;
      for (std::int64_t q = q0; q < q1; ++q, vp += k, op += k) {
        for (int t = 0; t < k; ++t) {
          const float* xr = xq + (kRows ? xo[op[t]] : static_cast<std::int64_t>(op[t]) * n);
          const typename S::V w = S::set1(vp[t]);
          for (int v = 0; v < V - 1; ++v) acc[v] = S::fma(w, S::load(xr + v * W), acc[v]);
          acc[V - 1] = S::fma(w, S::load(xr + (V - 1) * W, last), acc[V - 1]);
        }
        if (kRows) xo += b.bank;
        else xq += bank_stride;
      }
      for (int v = 0; v < V; ++v) {
        if (final && g.relu) acc[v] = S::relu(acc[v]);
        if (v < V - 1) S::store(yr + v * W, acc[v]);
        else S::store(yr + v * W, acc[v], last);
      }
    }
  }
}

template <class S, int KK, class Off, bool kRows, int V = kBalancedMaxV>
void balanced_panel_tail(int vecs, const BalancedPacked& a, const Off* off, const RunArgs& g,
                         std::int64_t r0, std::int64_t r1, std::int64_t n0, typename S::Mask last) {
  if constexpr (V >= 1) {
    if (vecs == V) return balanced_panel_tile<S, V, KK, Off, kRows>(a, off, g, r0, r1, n0, last);
    balanced_panel_tail<S, KK, Off, kRows, V - 1>(vecs, a, off, g, r0, r1, n0, last);
  }
}

template <class S, int KK, class Off, bool kRows>
void balanced_panel_rows(const BalancedPacked& a, const Off* off, const RunArgs& g, std::int64_t r0,
                         std::int64_t r1) {
  constexpr int W = S::kWidth;
  const int tv = std::min(kBalancedMaxV, a.tile_vectors * 16 / W);
  const std::int64_t tile = static_cast<std::int64_t>(tv) * W;
  std::int64_t n0 = 0;
  for (; n0 + tile <= g.n; n0 += tile)
    balanced_panel_tail<S, KK, Off, kRows>(tv, a, off, g, r0, r1, n0, S::full_mask());
  const std::int64_t rest = g.n - n0;
  if (rest == 0) return;
  const int vecs = static_cast<int>((rest + W - 1) / W);
  balanced_panel_tail<S, KK, Off, kRows>(vecs, a, off, g, r0, r1, n0,
                                  S::tail_mask(static_cast<int>(rest - (vecs - 1) * W)));
}

template <class S, class Off, bool kRows>
void balanced_panel_by_k(const BalancedPacked& a, const Off* off, const RunArgs& g, std::int64_t r0,
                         std::int64_t r1) {
  switch (a.bal.k) {
    case 1: return balanced_panel_rows<S, 1, Off, kRows>(a, off, g, r0, r1);
    case 2: return balanced_panel_rows<S, 2, Off, kRows>(a, off, g, r0, r1);
    case 3: return balanced_panel_rows<S, 3, Off, kRows>(a, off, g, r0, r1);
    case 4: return balanced_panel_rows<S, 4, Off, kRows>(a, off, g, r0, r1);
    default: return balanced_panel_rows<S, 0, Off, kRows>(a, off, g, r0, r1);
  }
}

template <class S, bool kRows>
void balanced_panel_offsets(const BalancedPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  if (a.bal.wide_offsets())
    balanced_panel_by_k<S, std::uint16_t, kRows>(a, a.bal.off16.data(), g, r0, r1);
  else
    balanced_panel_by_k<S, std::uint8_t, kRows>(a, a.bal.off8.data(), g, r0, r1);
}

template <class S>
void balanced_panel(const BalancedPacked& a, const RunArgs& g, std::int64_t r0, std::int64_t r1) {
  if (a.x_off.empty())
    balanced_panel_offsets<S, false>(a, g, r0, r1);
  else
    balanced_panel_offsets<S, true>(a, g, r0, r1);
}

}  // namespace
