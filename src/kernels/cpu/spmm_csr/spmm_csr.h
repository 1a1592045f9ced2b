#pragma once
// CSR SpMM: the packed weight our kernels run on, and the per-ISA entry points.
#include <cstdint>

#include "kernels/cpu/common.h"
#include "sparsebench/formats/csr.h"

namespace sb::cpu {

// A Csr plus what the kernels need, built once at initialize: the index array padded with
// kPrefetchPad zero entries (the prefetch lookahead reads col[p + d] unconditionally), and the
// per-thread row partitions by non-zeros.
struct CsrPacked {
  Csr csr;
  Partitions parts;
  // Width of an N tile in 64-byte vectors (1 zmm, 2 ymm, 16 floats): every row of a thread's
  // range is run over one tile before the next, so the X panel k x tile should stay in L2
  // (chosen at pack time from k; see kCsrPanelBudget).
  int tile_vectors = 8;
};
CsrPacked pack_csr(const SpmmDesc& desc, const SpmmWeight& w);

// CSR split into column panels of `panel_cols` (<= 256) columns: the non-zeros ordered by
// (panel, row, column), each panel's rows with their own pointers, columns as u8 offsets inside
// the panel. The kernel runs one panel of X (panel_cols x tile, 32 KiB) against every row of
// its range before the next, so X is read from L1 and only Y's tile row (load + store once per
// row and panel) travels to L2: the plain CSR loop instead pulls a whole X row segment from L2
// per non-zero, and L2 -> L1 bandwidth (~32 B/cycle) bounds it at about half the FMA peak.
struct CsrPanelPacked {
  std::int64_t m = 0, k = 0;
  int panel_cols = 64;
  int panels = 0;
  int tile_vectors = 4;                 // N tile in 64-byte vectors (see CsrPacked)
  AlignedVector<std::int32_t> ptr;      // [panels][m + 1]
  AlignedVector<std::uint8_t> col;      // in-panel column, + kPrefetchPad
  AlignedVector<float> values;
  // SpmmDesc::x_rows, padded with 0 to panels * panel_cols (indexed by panel, in-panel column);
  // empty when X is k x n (row j at j * n).
  AlignedVector<std::int64_t> x_off;
  Partitions parts;
};
void csr_panel_avx512(const CsrPanelPacked&, const RunArgs&, std::int64_t, std::int64_t);
void csr_panel_avx2(const CsrPanelPacked&, const RunArgs&, std::int64_t, std::int64_t);
void register_csr_kernels(SpmmRegistry& r);

// Rows [r0, r1) of Y, all N columns. SpMM: one broadcast weight times up to kMaxV vectors of an
// X row per non-zero (register blocking over N). GEMV (n = 1): a gather of X[col] per non-zero,
// reduced across the row.
using CsrRowsFn = void (*)(const CsrPacked&, const RunArgs&, std::int64_t r0, std::int64_t r1);

void csr_spmm_avx512(const CsrPacked&, const RunArgs&, std::int64_t, std::int64_t);
void csr_gemv_avx512(const CsrPacked&, const RunArgs&, std::int64_t, std::int64_t);
void csr_spmm_avx2(const CsrPacked&, const RunArgs&, std::int64_t, std::int64_t);
void csr_gemv_avx2(const CsrPacked&, const RunArgs&, std::int64_t, std::int64_t);
void csr_spmm_scalar(const CsrPacked&, const RunArgs&, std::int64_t, std::int64_t);
void csr_gemv_scalar(const CsrPacked&, const RunArgs&, std::int64_t, std::int64_t);

}  // namespace sb::cpu
