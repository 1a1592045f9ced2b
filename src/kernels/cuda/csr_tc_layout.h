#pragma once
// The layout of the unstructured tensor-core kernel (csr_tc, spmm_csr.cu): Flash-LLM's tiled CSL.
// The weight is cut into tiles of 16 rows (the MMA's M, one warp) by kt columns; a tile's
// entries are stored together, each as its value and its place in the tile, (row % 16) << 8 |
// (column % kt), a u16, in row-major order within the tile, padded with value-0 entries to a
// multiple of 8 (16-byte loads of 8 values and of 8 places). Tiles are stored row group by row group,
// k-tile by k-tile within one, and ptr[g * tiles + t] is where tile t of row group g begins, in
// chunks of 8 entries (ptr has groups * tiles + 1 values). The kernel zeroes a dense 16 x kt tile
// in shared memory, scatters the tile's entries into it and runs the MMAs (spmm_tc_common.cuh).
// kt is 256 columns, halved (down to 32) while the fullest tile has more chunks than the warp's
// lanes hold in registers (kTcMaxChunksPerLane each: denser weights, narrower tiles).
//
// Plain C++: the implementation and the emulator tests (tests/cuda/emu) pack with it.
#include <cstdint>
#include <vector>

#include "kernels/cuda/balanced_tc_layout.h"

namespace sb::gpu {

constexpr int kTcCsrKt = 256;     // columns per tile, at most: a place's column fits 8 bits
constexpr int kTcCsrMinKt = 32;   // and at least (16 x 32 entries: 64 chunks, 2 per lane)

inline TcLayout make_csr_tc_layout(std::int64_t k, int kt, int ksplit) {
  TcLayout l;
  l.kt = l.kw = kt;
  l.stride = kt + 8;
  l.tiles = static_cast<int>((k + kt - 1) / kt);
  l.ksplit = ksplit;
  tc_set_slices(l, 1);
  return l;
}

// The tile width for an m x k mask: the widest of 256, 128, 64, 32 columns whose fullest tile
// has at most 32 * kTcMaxChunksPerLane chunks of 8 entries.
inline int csr_tc_tile_cols(std::int64_t m, std::int64_t k, const std::uint8_t* kept) {
  const std::int64_t groups = (m + 15) / 16, narrow = (k + kTcCsrMinKt - 1) / kTcCsrMinKt;
  std::vector<int> count(static_cast<std::size_t>(groups * narrow), 0);  // per 16 x 32 tile
  for (std::int64_t r = 0; r < m; ++r)
    for (std::int64_t c = 0; c < k; ++c)
      count[static_cast<std::size_t>(r / 16 * narrow + c / kTcCsrMinKt)] += kept[r * k + c];
  for (int kt = kTcCsrKt; kt > kTcCsrMinKt; kt /= 2) {
    const std::int64_t per = kt / kTcCsrMinKt;
    int most = 0;
    for (std::int64_t g = 0; g < groups; ++g)
      for (std::int64_t t0 = 0; t0 < narrow; t0 += per) {
        int n = 0;
        for (std::int64_t t = t0; t < t0 + per && t < narrow; ++t) n += count[static_cast<std::size_t>(g * narrow + t)];
        most = n > most ? n : most;
      }
    if ((most + 7) / 8 <= 32 * kTcMaxChunksPerLane) return kt;
  }
  return kTcCsrMinKt;
}

struct CsrTcPacked {
  int kt = kTcCsrKt;                 // columns per tile
  std::vector<float> values;         // padded entries, to be stored as f16 / bf16
  std::vector<std::uint16_t> places; // (row % 16) << 8 | (column % kt)
  std::vector<std::uint32_t> ptr;    // groups * tiles + 1, in chunks of 8 entries
  int max_chunks = 0;                // the most chunks of any tile
};

// values / kept: the dense m x k weight and its mask, row-major; tiles of csr_tc_tile_cols columns.
inline CsrTcPacked pack_csr_tc(std::int64_t m, std::int64_t k, const float* values, const std::uint8_t* kept) {
  CsrTcPacked p;
  const int kt = p.kt = csr_tc_tile_cols(m, k, kept);
  const std::int64_t groups = (m + 15) / 16, tiles = (k + kt - 1) / kt;
  p.ptr.reserve(static_cast<std::size_t>(groups * tiles + 1));
  p.ptr.push_back(0);
  for (std::int64_t g = 0; g < groups; ++g)
    for (std::int64_t t = 0; t < tiles; ++t) {
      for (std::int64_t r = g * 16; r < g * 16 + 16 && r < m; ++r)
        for (std::int64_t c = t * kt; c < (t + 1) * kt && c < k; ++c)
          if (kept[r * k + c]) {
            p.values.push_back(values[r * k + c]);
            p.places.push_back(static_cast<std::uint16_t>((r % 16) << 8 | (c % kt)));
          }
      while (p.values.size() % 8) {  // padding: value 0, never scattered
        p.values.push_back(0.f);
        p.places.push_back(0);
      }
      p.ptr.push_back(static_cast<std::uint32_t>(p.values.size() / 8));
      const int chunks = static_cast<int>(p.ptr.back() - p.ptr[p.ptr.size() - 2]);
      if (chunks > p.max_chunks) p.max_chunks = chunks;
    }
  return p;
}

}  // namespace sb::gpu
