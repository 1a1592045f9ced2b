#pragma once
// The layout of the balanced / N:M tensor-core kernel (the `tc` variant, n >= 8), in the spirit of
// Flash-LLM's "load as sparse, compute as dense": the weight stays in the fast kernel's row layout
// (BalancedDevice: every row banks * kb entries, bank b's at [b * kb, (b + 1) * kb)), read in tiles
// of `g` banks (kt = g * bank columns of W, e = g * kb entries of every row, a multiple of 8: whole
// 16-byte chunks, and at most kTcMaxTileEntries, so that a lane holds at most 4 chunks of a tile
// and the kernel keeps them in registers). A block holds 64 rows (4 warps of 16, the MMA's M)
// times 16 columns of Y (two n8 MMA tiles), and `ksplit` groups of those 4 warps take turns over
// the k-tiles (group h the tiles h, h + ksplit, ...), summed in shared memory at the end: more
// warps per row block, so more weight loads in flight, without atomics or a second kernel. Per tile each warp scatters its
// rows' entries into its dense 16 x kw tile of W in shared memory, and the block stages X's kt x 16
// slice transposed (column-major, as the MMA's B fragments read it); then each warp runs kw / 16
// k-steps of two MMAs and writes zeros back where it scattered. Shared-memory rows are kw + 8 halves long so that the
// fragment reads of the 8 row groups fall in distinct banks.
//
// Plain C++ (host and device) so that the host can size shared memory and choose the split.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/fast_div.h"  // SB_HOST_DEVICE
#include "kernels/cuda/plan_tuning.h"

namespace sb::gpu {

constexpr int kTcRowWarps = 4;  // warps along the rows of a block: 16 rows each
constexpr int kTcRows = 16 * kTcRowWarps;
constexpr int kTcCols = 16;     // columns of Y per block: two n8 MMA tiles
constexpr int kTcMaxSplit = 4;  // k-split groups per block at most (16 warps)
constexpr long long kTcMaxRowBlocks = 65535;  // blocks of 64 rows: the grid's y, m < 4.19M
constexpr int kTcMaxBank = 32;  // banks wider than this would make the tile too wide
constexpr int kTcMaxCols = 256;  // columns of W per tile, at most
// Entries of one row per tile, at most: 16 rows x 64 entries are 128 chunks of 8, 4 per lane. The
// two register sets (this tile's and the next one's) of 4 chunks of values and offsets fit the
// 128 registers a thread has at 512 threads; 8 chunks per lane spilled (ptxas, sm_90a).
constexpr int kTcMaxTileEntries = 64;
constexpr int kTcMaxChunksPerLane = 4;

struct TcLayout {
  int g = 0;        // banks per tile: g * kb a multiple of 8, g * bank <= 256, g * kb <= 64
  int kt = 0;       // columns of W per tile (g * bank)
  int kw = 0;       // kt rounded up to 16 (the MMA's k): the tile's width in shared memory
  int stride = 0;   // shared-memory row length, halves: kw + 8
  int e = 0;        // entries of a row per tile (g * kb)
  int tiles = 0;    // ceil(banks / g)
  int ksplit = 1;   // warp groups of a block taking turns over its tiles
  int kz = 1;       // blocks along k (the grid's z), each over `slice` tiles (tc_set_slices)
  int slice = 0;    // tiles per block along k: tiles when kz = 1
};

// Slices of k over kz blocks (the grid's z): block z takes tiles [z * slice, min(tiles, (z + 1) *
// slice)); kz is lowered to the slices that are not empty. With kz > 1 each block writes its fp32
// partial sums to a workspace ([kz][m][n]) and a second kernel adds them into Y.
inline void tc_set_slices(TcLayout& l, int kz) {
  l.slice = (l.tiles + kz - 1) / kz;
  if (l.slice < 1) l.slice = 1;
  l.kz = (l.tiles + l.slice - 1) / l.slice;
  if (l.kz < 1) l.kz = 1;
}

// How k is cut, for the ops' notes.
inline std::string tc_slices_note(const TcLayout& l) {
  if (l.kz == 1) return "k in one slice";
  return "k in " + std::to_string(l.kz) + " slices of " + std::to_string(l.slice) + (l.slice == 1 ? " tile" : " tiles") +
         " over blocks, summed by a second kernel";
}

// Floats of the workspace a layout needs for an m x n output (0 where kz = 1).
inline std::int64_t tc_workspace_floats(const TcLayout& l, std::int64_t m, std::int64_t n) {
  return l.kz > 1 ? static_cast<std::int64_t>(l.kz) * m * n : 0;
}

// The fewest banks whose entries fill whole 16-byte chunks: 8 / gcd(kb, 8).
inline int tc_bank_unit(int kb) {
  int unit = 8;
  while (unit > 1 && kb % (8 / unit * 2) == 0) unit /= 2;
  return unit;
}

// The kb the tensor-core kernel packs with: the smallest kb' >= kb (padded per bank with value-0
// entries) whose whole-chunk unit of banks holds at most kTcMaxTileEntries entries (kb' = 9 -> 10,
// 17 -> 20: the unit of an odd kb above 8 is 8 banks, over 64 entries). kb <= kTcMaxBank.
inline int tc_padded_kb(int kb) {
  int p = kb;
  while (tc_bank_unit(p) * p > kTcMaxTileEntries) ++p;
  return p;
}

// The layout for banks of `bank` columns with kb entries each (kb as tc_padded_kb gives it; another
// kb gets tiles of one whole-chunk unit of banks, which may exceed kTcMaxTileEntries: the
// launcher refuses those). Tiles as wide as 256 columns and 64 entries a row allow.
inline TcLayout make_tc_layout(std::int64_t k, int bank, int kb, int ksplit) {
  TcLayout l;
  const int banks = static_cast<int>((k + bank - 1) / bank);
  const int unit = tc_bank_unit(kb);
  l.g = unit;
  while ((l.g + unit) * bank <= kTcMaxCols && (l.g + unit) * kb <= kTcMaxTileEntries) l.g += unit;
  l.kt = l.g * bank;
  l.kw = (l.kt + 15) / 16 * 16;
  l.stride = l.kw + 8;
  l.e = l.g * kb;
  l.tiles = (banks + l.g - 1) / l.g;
  l.ksplit = ksplit;
  tc_set_slices(l, 1);
  return l;
}

// Blocks along k for an m x n output over `tiles` k-tiles on `sms` SMs. Every warp's tile costs
// about the same wherever it runs: shared-memory traffic (16 k-steps of fragment loads, the scatter
// and the clear, some 250 wavefronts of a warp) and tensor-core work, so the kernel's time follows
// the most tiles any SM works through, ceil(blocks / sms) x slice per row warp. Blocks of 64 rows
// over all of k leave SMs idle where m is small (4096 rows: 64 blocks on 132 SMs) and load them
// unevenly just above (11008 rows: 172 blocks, 40 SMs with two). Slicing k evens that out at the
// price of a second kernel (kTcSliceLaunch, in those tile units, about 0.6 us each) and of the
// partial sums' traffic (written, then read back: kTcSliceBytesPerUnit bytes a unit). Taken: the
// fewest slices within 10 % of the cheapest. A model from the kernel's structure, not a timing:
// the ops take it as the first of the plans they time at initialize (tc_candidates, autotune.h).
constexpr int kTcMaxKz = 16;
constexpr double kTcSliceLaunch = 3.0;
constexpr double kTcSliceBytesPerUnit = 1.5e6;
inline int tc_pick_kz(std::int64_t m, std::int64_t n, int tiles, int sms) {
  const std::int64_t row_blocks = (m + kTcRows - 1) / kTcRows * ((n + kTcCols - 1) / kTcCols);
  auto cost = [&](int kz) {
    TcLayout l;
    l.tiles = tiles;
    tc_set_slices(l, kz);
    double c = static_cast<double>((row_blocks * l.kz + sms - 1) / sms * l.slice);
    if (l.kz > 1) c += kTcSliceLaunch + static_cast<double>(l.kz) * static_cast<double>(m * n) * 8.0 / kTcSliceBytesPerUnit;
    return c;
  };
  const int most = tiles < kTcMaxKz ? tiles : kTcMaxKz;
  double best = cost(1);
  for (int kz = 2; kz <= most; ++kz) best = cost(kz) < best ? cost(kz) : best;
  for (int kz = 1; kz < most; ++kz)
    if (cost(kz) <= 1.1 * best) return kz;
  return most < 1 ? 1 : most;
}

// Whether m rows fit the grid's y in blocks of kTcRows (the launcher and the ops' checks).
inline bool tc_rows_fit(std::int64_t m) { return (m + kTcRows - 1) / kTcRows <= kTcMaxRowBlocks; }

// Shared memory of one block, bytes: every warp's W tile, the X slices of one step (one per
// group), and the partial sums of groups 1 .. ksplit - 1 (8 floats per lane).
inline std::size_t tc_smem_bytes(const TcLayout& l) {
  const std::size_t halves = static_cast<std::size_t>(l.ksplit) * kTcRowWarps * 16 * l.stride +
                             static_cast<std::size_t>(l.ksplit) * kTcCols * l.stride;
  return halves * 2 + static_cast<std::size_t>(l.ksplit - 1) * kTcRowWarps * 32 * 8 * sizeof(float);
}

// The plans of a layout worth timing for an m x n output (session 14): the model's (tc_plan_grid)
// first, then k in kz in {1, 2, 3, 4, 6, 8, 12, 16} slices (as tc_set_slices lowers kz, no repeat)
// with 1, 2 or 4 warp groups, where every group gets a tile of its slice and the block's shared
// memory fits smem_limit. Slices whose workspace would exceed max_ws_floats are left out (the sum's
// traffic would lose anyway). The op times them on the device and keeps the fastest (tc_tune), as
// the cuBLASLt and cuSPARSE wrappers time their candidate algorithms: the model is the first guess,
// the timing decides, and the note keeps both.
inline std::vector<TcLayout> tc_candidates(const TcLayout& model, std::int64_t m, std::int64_t n, std::size_t smem_limit,
                                           std::int64_t max_ws_floats) {
  std::vector<TcLayout> out{model};
  auto seen = [&](int kz, int split) {
    for (const TcLayout& c : out)
      if (c.kz == kz && c.ksplit == split) return true;
    return false;
  };
  for (int kz : {1, 2, 3, 4, 6, 8, 12, 16}) {
    TcLayout l = model;
    tc_set_slices(l, kz);
    if (l.kz > kTcMaxKz || tc_workspace_floats(l, m, n) > max_ws_floats) continue;
    for (int split = 1; split <= kTcMaxSplit; split *= 2) {
      l.ksplit = split;
      if (split > l.slice || tc_smem_bytes(l) > smem_limit || seen(l.kz, split)) continue;
      out.push_back(l);
    }
  }
  return out;
}

// What timing the tensor-core plans gave (Tuned: first = the model's), and the fastest with k in
// one slice (microseconds a call; -1 where none ran), which says what slicing k bought.
struct TcTuning : Tuned<TcLayout> {
  double unsliced_us = -1;
};

template <class TimeUs>
TcTuning tc_tune(const std::vector<TcLayout>& candidates, TimeUs time_us) {
  TcTuning t;
  std::vector<double> us;
  static_cast<Tuned<TcLayout>&>(t) = tune(candidates, time_us, &us);
  for (std::size_t i = 0; i < us.size(); ++i)
    if (candidates[i].kz == 1 && us[i] >= 0 && (t.unsliced_us < 0 || us[i] < t.unsliced_us)) t.unsliced_us = us[i];
  return t;
}

// The tuning, for the ops' notes: how many plans ran and the times that say whether the model held.
inline std::string tc_tuning_note(const TcTuning& t) {
  if (t.candidates == 0) return std::string("the model's plan (") + kPlansUntimed + ")";
  if (t.ran == 0) return "the model's plan (no candidate ran when timed)";
  std::string s = "fastest of " + std::to_string(t.ran) + " plans timed at initialize (cold): " + format_us(t.best_us);
  const TcLayout& model = t.first;
  if (t.best.kz == model.kz && t.best.ksplit == model.ksplit)
    s += ", the model's";
  else if (t.first_us >= 0)
    s += "; the model's (k in " + std::to_string(model.kz) + (model.kz == 1 ? " slice, " : " slices, ") +
         std::to_string(model.ksplit) + (model.ksplit == 1 ? " warp group): " : " warp groups): ") + format_us(t.first_us);
  if (t.best.kz > 1 && t.unsliced_us >= 0) s += "; k in one slice: " + format_us(t.unsliced_us);
  return s;
}

// Chunks (8 entries) of a warp's 16 rows in one tile, per lane, rounded up.
inline int tc_chunks_per_lane(const TcLayout& l) { return (16 * (l.e / 8) + 31) / 32; }

}  // namespace sb::gpu
