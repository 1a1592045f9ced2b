#pragma once
// The BSR kernel as a template over a vector type; included once per ISA (see simd.h).
#include <algorithm>

#include "kernels/cpu/simd.h"
#include "kernels/cpu/spmm_bsr/spmm_bsr.h"

namespace {

using sb::cpu::BsrPacked;
using sb::cpu::RunArgs;

// Block rows [I0, I1), columns [n0, n0 + V * W) of Y. RB rows of a block at a time; BC > 0 is the
// block width known at compile time (0: read it at run time).
template <class S, int RB, int BC, int V, class Idx>
void bsr_tile(const BsrPacked& a, const Idx* col, const RunArgs& g, std::int64_t I0, std::int64_t I1,
              std::int64_t n0, typename S::Mask last) {
  constexpr int W = S::kWidth;
  const sb::Bsr& b = a.bsr;
  const int br = b.block_rows;
  const int bc = BC > 0 ? BC : b.block_cols;
  const std::int64_t m = b.rows, k = b.cols, n = g.n;
  const float* xb = g.x + n0;
  const std::int32_t* bp = b.block_row_ptr.data();
  const float* vals = b.values.data();
  for (std::int64_t I = I0; I < I1; ++I) {
    for (int r0 = 0; r0 < br; r0 += RB) {
      const std::int64_t i0 = I * br + r0;
      if (i0 >= m) break;
      typename S::V acc[RB][V];
      for (int rr = 0; rr < RB; ++rr) {
        const float bv = g.bias && i0 + rr < m ? g.bias[i0 + rr] : 0.f;
        for (int v = 0; v < V; ++v) acc[rr][v] = S::set1(bv);
      }
      for (std::int32_t q = bp[I]; q < bp[I + 1]; ++q) {
        const std::int64_t j0 = static_cast<std::int64_t>(col[q]) * bc;
        const float* wv = vals + (static_cast<std::int64_t>(q) * br + r0) * bc;
        const std::int64_t* xo = a.x_off.data() + j0;
        // The last block column may reach past K: its padded columns hold 0 but X has no rows there.
        const int ce = static_cast<int>(std::min<std::int64_t>(bc, k - j0));
        auto column = [&](int c) {
          typename S::V xv[V];
          const float* xr = xb + xo[c];
          for (int v = 0; v < V - 1; ++v) xv[v] = S::load(xr + v * W);
          xv[V - 1] = S::load(xr + (V - 1) * W, last);
          for (int rr = 0; rr < RB; ++rr) {
            const typename S::V w = S::set1(wv[rr * bc + c]);
            for (int v = 0; v < V; ++v) acc[rr][v] = S::fma(w, xv[v], acc[rr][v]);
          }
        };
        if (BC > 0 && ce == BC) {
          for (int c = 0; c < BC; ++c) column(c);
        } else {
          for (int c = 0; c < ce; ++c) column(c);
        }
      }
      for (int rr = 0; rr < RB && i0 + rr < m; ++rr) {
        float* yr = g.y + (i0 + rr) * n + n0;
        for (int v = 0; v < V; ++v) {
          typename S::V o = g.relu ? S::relu(acc[rr][v]) : acc[rr][v];
          if (v < V - 1) S::store(yr + v * W, o);
          else S::store(yr + v * W, o, last);
        }
      }
    }
  }
}

// Register budget: RB x V accumulators plus V X vectors.
template <class S, int RB> constexpr int bsr_max_v() {
  if constexpr (S::kWidth == 16) return RB == 4 ? 4 : 8;   // 32 zmm
  else if constexpr (S::kWidth == 8) return RB == 4 ? 2 : RB == 2 ? 4 : 8;  // 16 ymm
  else return 8;
}

template <class S, int RB, int BC, class Idx, int V = bsr_max_v<S, RB>()>
void bsr_tail(int vecs, const BsrPacked& a, const Idx* col, const RunArgs& g, std::int64_t I0,
              std::int64_t I1, std::int64_t n0, typename S::Mask last) {
  if constexpr (V >= 1) {
    if (vecs == V) return bsr_tile<S, RB, BC, V, Idx>(a, col, g, I0, I1, n0, last);
    bsr_tail<S, RB, BC, Idx, V - 1>(vecs, a, col, g, I0, I1, n0, last);
  }
}

template <class S, int RB, int BC, class Idx>
void bsr_rows(const BsrPacked& a, const Idx* col, const RunArgs& g, std::int64_t I0, std::int64_t I1) {
  constexpr int W = S::kWidth;
  constexpr int kV = bsr_max_v<S, RB>();
  constexpr int kTile = kV * W;
  std::int64_t n0 = 0;
  for (; n0 + kTile <= g.n; n0 += kTile)
    bsr_tile<S, RB, BC, kV, Idx>(a, col, g, I0, I1, n0, S::full_mask());
  const std::int64_t rest = g.n - n0;
  if (rest == 0) return;
  const int vecs = static_cast<int>((rest + W - 1) / W);
  bsr_tail<S, RB, BC, Idx>(vecs, a, col, g, I0, I1, n0,
                           S::tail_mask(static_cast<int>(rest - (vecs - 1) * W)));
}

template <class S, int RB, class Idx>
void bsr_by_width(const BsrPacked& a, const Idx* col, const RunArgs& g, std::int64_t I0, std::int64_t I1) {
  switch (a.bsr.block_cols) {
    case 1: return bsr_rows<S, RB, 1, Idx>(a, col, g, I0, I1);
    case 4: return bsr_rows<S, RB, 4, Idx>(a, col, g, I0, I1);
    case 8: return bsr_rows<S, RB, 8, Idx>(a, col, g, I0, I1);
    default: return bsr_rows<S, RB, 0, Idx>(a, col, g, I0, I1);
  }
}

template <class S, class Idx>
void bsr_by_rows(const BsrPacked& a, const Idx* col, const RunArgs& g, std::int64_t I0, std::int64_t I1) {
  const int br = a.bsr.block_rows;
  if (br % 4 == 0) return bsr_by_width<S, 4, Idx>(a, col, g, I0, I1);
  if (br % 2 == 0) return bsr_by_width<S, 2, Idx>(a, col, g, I0, I1);
  return bsr_by_width<S, 1, Idx>(a, col, g, I0, I1);
}

template <class S>
void bsr_spmm(const BsrPacked& a, const RunArgs& g, std::int64_t I0, std::int64_t I1) {
  if (a.bsr.index_width == sb::IndexWidth::u16)
    bsr_by_rows<S>(a, a.bsr.block_col16.data(), g, I0, I1);
  else
    bsr_by_rows<S>(a, a.bsr.block_col32.data(), g, I0, I1);
}

}  // namespace
