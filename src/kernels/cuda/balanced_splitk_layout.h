#pragma once
// The layout of the balanced / N:M split-K kernel (n a multiple of 8, bank <= 64): each block
// takes R rows, a k-slice of `ck` chunks of 32 banks and a tile of NC = 8 or 16 columns; it stages
// that slice of X in shared memory bank-interleaved, slot (o, lb) = X row (c0 * 32 + lb) * bank + o
// at o * 32 ck + lb, NC f16 / bf16 per slot in 16-byte units, so that lane j, working on local bank
// lb = 32 q + j, reads a unit in 16-byte bank group j % 8 whatever its offset o: the 8 lanes of a
// 128-bit shared-memory phase never collide. For NC = 16 a slot is two units and the second half
// of every group of 4 banks swaps its units (h ^ ((lb >> 2) & 1)), which keeps the 8 lanes of a
// phase in 8 different groups. The block's partial sums (fp32) go to a workspace by atomicAdd; a
// second kernel writes Y and zeroes the workspace for the next call.
//
// Weight: per row, chunk by chunk (32 banks; the last chunk `width` = banks - 32 c), slot by slot
// (the i-th kept entry of each bank), lane j's entry at c * kb * 32 + i * width + j: a warp's loads
// of one slot are contiguous (64 bytes of values, 32 of offsets). No padding.
//
// Plain C++ (host and device) so that a host test packs, stages, computes and reduces exactly as
// the kernel does, and checks the conflict-free property; spmm_balanced.cu calls the same functions.
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/balanced_pack.h"
#include "kernels/cuda/fast_div.h"  // SB_HOST_DEVICE

namespace sb::gpu {

constexpr int kSplitkWarps = 16;                 // warps per block
constexpr std::size_t kSplitkSliceBytes = 32 << 10;  // target X slice per block

struct SplitkLayout {
  std::int64_t k = 0;
  int bank = 0, banks = 0, kb = 0;
  int chunks = 0;      // ceil(banks / 32)
  int row_stride = 0;  // kb * banks entries
  int nc = 0;          // columns per tile: 8 or 16
  int ck = 0;          // chunks per block (its k-slice)
  int ktiles = 0;      // ceil(chunks / ck)
};

inline SplitkLayout make_splitk_layout(std::int64_t k, int bank, int kb, std::int64_t n) {
  SplitkLayout l;
  l.k = k;
  l.bank = bank;
  l.banks = static_cast<int>((k + bank - 1) / bank);
  l.kb = kb;
  l.chunks = (l.banks + 31) / 32;
  l.row_stride = kb * l.banks;
  l.nc = n > 8 ? 16 : 8;
  const std::size_t per_chunk = static_cast<std::size_t>(32) * bank * l.nc * 2;
  l.ck = static_cast<int>(kSplitkSliceBytes / per_chunk);
  if (l.ck < 1) l.ck = 1;
  if (l.ck > l.chunks) l.ck = l.chunks;
  l.ktiles = (l.chunks + l.ck - 1) / l.ck;
  return l;
}

// Shared memory of one block, bytes.
inline std::size_t splitk_smem_bytes(const SplitkLayout& l) {
  return static_cast<std::size_t>(32) * l.ck * l.bank * l.nc * 2;
}

SB_HOST_DEVICE int splitk_width(const SplitkLayout& l, int c) {
  const int w = l.banks - 32 * c;
  return w < 32 ? w : 32;
}
// Position (within a row) of slot i of bank 32 c + j.
SB_HOST_DEVICE int splitk_pos(const SplitkLayout& l, int c, int i, int j) {
  return c * l.kb * 32 + i * splitk_width(l, c) + j;
}
// The 16-byte unit (of NC / 8 per slot) holding columns 8 h .. 8 h + 7 of slot (o, lb).
SB_HOST_DEVICE int splitk_unit(const SplitkLayout& l, int o, int lb, int h) {
  const int slot = o * 32 * l.ck + lb;
  return l.nc == 16 ? slot * 2 + (h ^ ((lb >> 2) & 1)) : slot;
}

// After the kernel's reduce-scatter of NC partial sums over a warp (halving the columns at lane
// strides 16, 8, ... then summing the lanes that share one), the column lane `lane` holds, and
// whether it is the one of its group that stores it.
SB_HOST_DEVICE int splitk_reduce_col(int nc, int lane) {
  return nc == 16 ? ((lane >> 4) & 1) * 8 + ((lane >> 3) & 1) * 4 + ((lane >> 2) & 1) * 2 + ((lane >> 1) & 1)
                  : ((lane >> 4) & 1) * 4 + ((lane >> 3) & 1) * 2 + ((lane >> 2) & 1);
}
SB_HOST_DEVICE bool splitk_stores(int nc, int lane) { return (lane & (32 / nc - 1)) == 0; }

// The packed weight: m rows of row_stride entries (balanced_pack.h).
inline BalancedPacked pack_splitk(const SplitkLayout& l, std::int64_t m, const float* values, const std::uint8_t* kept) {
  return pack_balanced(m, l.k, l.bank, l.kb, l.row_stride, values, kept,
                       [&](int b, int i) { return splitk_pos(l, b / 32, i, b % 32); });
}

}  // namespace sb::gpu
