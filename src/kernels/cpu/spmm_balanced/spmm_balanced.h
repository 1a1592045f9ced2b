#pragma once
// Balanced (bank-balanced and N:M) SpMM: every row stores banks() x k entries, so a row is a fixed
// count of (bank, k) steps: no row pointers, no row-length branches, threads split by rows are
// perfectly balanced. k = 1, 2, 4 are unrolled at compile time (N:M 1:8 and 2:8, bank 32 at 90 %).
#include <cstdint>

#include "kernels/cpu/common.h"
#include "sparsebench/formats/balanced.h"

namespace sb::cpu {

struct BalancedPacked {
  Balanced bal;      // offsets padded with k (kernel-only) entries for the bank lookahead
  Partitions parts;  // rows, equal shares
  // Column-panel variant (see CsrPanelPacked): panels of `panel_banks` whole banks, N tiles of
  // `tile_vectors` 64-byte vectors; values and offsets reordered panel-major at pack time
  // (spmm_balanced.cpp, pack_panels). The count per row and panel is fixed: no pointers.
  int panel_banks = 1;
  int tile_vectors = 8;
  // Column-panel variant: SpmmDesc::x_rows padded with 0 to banks * bank (indexed by bank * q +
  // in-bank offset); empty when X is k x n.
  AlignedVector<std::int64_t> x_off;
};

void balanced_spmm_avx512(const BalancedPacked&, const RunArgs&, std::int64_t, std::int64_t);
void balanced_spmm_avx2(const BalancedPacked&, const RunArgs&, std::int64_t, std::int64_t);
void balanced_panel_avx512(const BalancedPacked&, const RunArgs&, std::int64_t, std::int64_t);
void balanced_panel_avx2(const BalancedPacked&, const RunArgs&, std::int64_t, std::int64_t);
void balanced_spmm_scalar(const BalancedPacked&, const RunArgs&, std::int64_t, std::int64_t);
void register_balanced_kernels(SpmmRegistry& r);

}  // namespace sb::cpu
