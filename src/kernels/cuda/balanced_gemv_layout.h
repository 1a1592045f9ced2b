#pragma once
// The layout of the balanced / N:M GEMV kernel (n = 1), in the spirit of Yao et al. (AAAI 2019):
// X is staged in shared memory "bank-interleaved", xs[o * S + b] = X[b * bank + o] as f32 with S a
// multiple of 32, so that when lane j of a warp works on bank b = 32 q + j (any q) its X read lands
// in shared-memory bank j whatever its in-bank offset o: every warp-wide gather of X is free of
// bank conflicts, where a gather through L1 touches up to 32 cache lines. Every bank keeps exactly
// kb entries (fixed work per bank), so the lanes of a warp do identical work.
//
// The weight is stored slot-major so that the lanes' loads are contiguous: for each of a row's kb
// slots (the i-th kept entry of every bank), the banks in groups of 128, where lane j's 4 consecutive
// stored entries (one 8-byte load of values, one 4-byte load of offsets) are banks j, 32 + j, 64 + j,
// 96 + j of the group; the banks past the last full group (the tail, fewer than 128) one entry per
// lane and step. Within a row: [slot 0 groups][slot 1 groups]...[slot kb-1 groups] then
// [slot 0 tail]...[slot kb-1 tail], padded to a multiple of 4 entries. A bank keeping fewer than kb
// (a partial last bank) is padded with value 0 at offset 0, a column that exists.
//
// Plain C++ (host and device) so that a host test packs a weight, runs the kernel's loops on it and
// compares with a double reference; the kernel (spmm_balanced.cu) calls these same functions.
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/balanced_pack.h"
#include "kernels/cuda/fast_div.h"  // SB_HOST_DEVICE

namespace sb::gpu {

constexpr int kGemvGroup = 128;        // banks per group: 32 lanes x 4 entries
constexpr int kGemvStageSeg = 8;       // offsets per staging tile (X loader)
constexpr int kGemvWarps = 16;         // warps per block
constexpr int kGemvJobsPerPass = 4;    // X-loader tiles a warp holds in registers at once

struct GemvLayout {
  int bank = 0;        // columns per bank (<= 256: u8 offsets)
  int banks = 0;       // ceil(k / bank)
  int kb = 0;          // entries kept per bank
  int groups = 0;      // full groups of 128 banks
  int main = 0;        // groups * 128
  int tail = 0;        // banks - main
  int smem_stride = 0; // S: banks rounded up to 32
  int row_stride = 0;  // entries per stored row, a multiple of 4
  std::int64_t k = 0;
};

inline GemvLayout make_gemv_layout(std::int64_t k, int bank, int kb) {
  GemvLayout l;
  l.k = k;
  l.bank = bank;
  l.banks = static_cast<int>((k + bank - 1) / bank);
  l.kb = kb;
  l.groups = l.banks / kGemvGroup;
  l.main = l.groups * kGemvGroup;
  l.tail = l.banks - l.main;
  l.smem_stride = (l.banks + 31) / 32 * 32;
  l.row_stride = (kb * l.banks + 3) / 4 * 4;
  return l;
}

// Shared memory of one block, bytes: X (bank x S f32) and one staging tile per warp.
inline std::size_t gemv_smem_bytes(const GemvLayout& l) {
  const int seg = l.bank < kGemvStageSeg ? l.bank : kGemvStageSeg;
  return sizeof(float) * (static_cast<std::size_t>(l.bank) * l.smem_stride +
                          static_cast<std::size_t>(kGemvWarps) * 32 * (seg + 1));
}

// Stored position (within a row) of slot i of bank g * 128 + 32 q + lane: the group part.
SB_HOST_DEVICE int gemv_main_pos(const GemvLayout& l, int i, int g, int lane, int q) {
  return i * l.main + g * kGemvGroup + 4 * lane + q;
}
SB_HOST_DEVICE int gemv_main_bank(int g, int lane, int q) { return g * kGemvGroup + 32 * q + lane; }
// Stored position of slot i of tail bank main + t (0 <= t < tail).
SB_HOST_DEVICE int gemv_tail_pos(const GemvLayout& l, int i, int t) { return l.kb * l.main + i * l.tail + t; }
// Shared-memory index of X[b * bank + o].
SB_HOST_DEVICE int gemv_smem_index(const GemvLayout& l, int o, int b) { return o * l.smem_stride + b; }

// The X loader's tiles: 32 banks x seg offsets each; tile `job` covers banks 32 * (job / segs) + r
// and offsets seg * (job % segs) + c. Element p (0 <= p < 32 * seg) of the tile: r = p / seg,
// c = p % seg. Lanes load elements lane, lane + 32, ... (consecutive columns of X: coalesced).
SB_HOST_DEVICE int gemv_stage_seg(const GemvLayout& l) { return l.bank < kGemvStageSeg ? l.bank : kGemvStageSeg; }
SB_HOST_DEVICE int gemv_stage_segs(const GemvLayout& l) {
  const int seg = gemv_stage_seg(l);
  return (l.bank + seg - 1) / seg;
}
SB_HOST_DEVICE int gemv_stage_jobs(const GemvLayout& l) { return (l.smem_stride / 32) * gemv_stage_segs(l); }

// The packed weight: m rows of row_stride entries (balanced_pack.h).
inline BalancedPacked pack_gemv(const GemvLayout& l, std::int64_t m, const float* values, const std::uint8_t* kept) {
  return pack_balanced(m, l.k, l.bank, l.kb, l.row_stride, values, kept, [&](int b, int i) {
    if (b >= l.main) return gemv_tail_pos(l, i, b - l.main);
    const int within = b % kGemvGroup;
    return gemv_main_pos(l, i, b / kGemvGroup, within % 32, within / 32);
  });
}

}  // namespace sb::gpu
