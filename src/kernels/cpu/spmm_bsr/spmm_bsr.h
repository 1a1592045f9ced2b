#pragma once
// BSR SpMM: the packed weight and the per-ISA entry points. One templated kernel runs every block
// shape: r x c blocks are walked in register tiles of RB rows (RB = 4, 2 or 1, the largest that
// divides r) times up to 64 (AVX-512) columns of N; every X row a block touches is loaded once
// per tile and used by RB rows (the reuse that blocks buy), with c = 1, 4, 8 unrolled at compile
// time and any other c at run time.
#include <cstdint>

#include "kernels/cpu/common.h"
#include "sparsebench/formats/bsr.h"

namespace sb::cpu {

struct BsrPacked {
  Bsr bsr;
  Partitions parts;  // over block rows, by blocks
  // Where X's row j starts, in floats from x: j * n, or SpmmDesc::x_rows[j]. One table load per
  // block column and tile, next to RB x V FMAs.
  AlignedVector<std::int64_t> x_off;
};

void bsr_spmm_avx512(const BsrPacked&, const RunArgs&, std::int64_t, std::int64_t);
void bsr_spmm_avx2(const BsrPacked&, const RunArgs&, std::int64_t, std::int64_t);
void bsr_spmm_scalar(const BsrPacked&, const RunArgs&, std::int64_t, std::int64_t);
void register_bsr_kernels(SpmmRegistry& r);

}  // namespace sb::cpu
