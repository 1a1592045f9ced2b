#pragma once
// The layout of the balanced / N:M tensor-core kernel (the `tc` variant, n >= 8), in the spirit of
// Flash-LLM's "load as sparse, compute as dense": the weight stays in the fast kernel's row layout
// (BalancedDevice: every row banks * kb entries, bank b's at [b * kb, (b + 1) * kb)), read in tiles
// of `g` banks (kt = g * bank columns of W, e = g * kb entries of every row, a multiple of 8: whole
// 16-byte chunks). A block holds 64 rows (4 warps of 16, the MMA's M) times 16 columns of Y (two
// n8 MMA tiles), and `ksplit` groups of those 4 warps take turns over the k-tiles (group h the
// tiles h, h + ksplit, ...), summed in shared memory at the end: more warps per row block, so
// more weight loads in flight, without atomics or a second kernel. Per tile each warp scatters its
// rows' entries into its dense 16 x kw tile of W in shared memory, and the block stages X's kt x 16
// slice transposed (column-major, as the MMA's B fragments read it); then each warp runs kw / 16
// k-steps of two MMAs and writes zeros back where it scattered. Shared-memory rows are kw + 8 halves long so that the
// fragment reads of the 8 row groups fall in distinct banks.
//
// Plain C++ (host and device) so that the host can size shared memory and choose the split.
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/fast_div.h"  // SB_HOST_DEVICE

namespace sb::gpu {

constexpr int kTcRowWarps = 4;  // warps along the rows of a block: 16 rows each
constexpr int kTcRows = 16 * kTcRowWarps;
constexpr int kTcCols = 16;     // columns of Y per block: two n8 MMA tiles
constexpr int kTcMaxSplit = 4;  // k-split groups per block at most (16 warps)
constexpr int kTcMaxBank = 32;  // banks wider than this would make the tile too wide

struct TcLayout {
  int g = 0;        // banks per tile: a multiple of 8 (so e is one), about 256 / bank
  int kt = 0;       // columns of W per tile (g * bank)
  int kw = 0;       // kt rounded up to 16 (the MMA's k): the tile's width in shared memory
  int stride = 0;   // shared-memory row length, halves: kw + 8
  int e = 0;        // entries of a row per tile (g * kb)
  int tiles = 0;    // ceil(banks / g)
  int ksplit = 1;   // warp groups taking turns over the tiles
};

inline TcLayout make_tc_layout(std::int64_t k, int bank, int kb, int ksplit) {
  TcLayout l;
  const int banks = static_cast<int>((k + bank - 1) / bank);
  l.g = 8 * (kTcMaxBank / bank > 1 ? kTcMaxBank / bank : 1);
  l.kt = l.g * bank;
  l.kw = (l.kt + 15) / 16 * 16;
  l.stride = l.kw + 8;
  l.e = l.g * kb;
  l.tiles = (banks + l.g - 1) / l.g;
  l.ksplit = ksplit;
  return l;
}

// Shared memory of one block, bytes: every warp's W tile, the X slices of one step (one per
// group), and the partial sums of groups 1 .. ksplit - 1 (8 floats per lane).
inline std::size_t tc_smem_bytes(const TcLayout& l) {
  const std::size_t halves = static_cast<std::size_t>(l.ksplit) * kTcRowWarps * 16 * l.stride +
                             static_cast<std::size_t>(l.ksplit) * kTcCols * l.stride;
  return halves * 2 + static_cast<std::size_t>(l.ksplit - 1) * kTcRowWarps * 32 * 8 * sizeof(float);
}

// Chunks (8 entries) of a warp's 16 rows in one tile, per lane, rounded up.
inline int tc_chunks_per_lane(const TcLayout& l) { return (16 * (l.e / 8) + 31) / 32; }

}  // namespace sb::gpu
