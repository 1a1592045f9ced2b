#pragma once
// The layout of the CSR split-K kernel (unstructured weights, n a multiple of 8): k is cut into
// slices of `ks` columns (32 KB of X: 1024 columns of 16 f16 / bf16, or 2048 of 8); each block takes
// R rows, one slice and a tile of NC = 8 or 16 columns, stages that slice of X in shared memory in
// 16-byte units (coalesced reads, conflict-free writes), and its warps take rows, the lanes splitting
// a row's entries in the slice (lane-strided: contiguous loads), each FMA-ing NC columns of X read
// from shared memory. For NC = 16 the two units of a column are swapped in every other group of 4
// columns (h ^ ((c >> 2) & 1)), so that the random reads of 8 lanes spread over all 8 16-byte groups
// instead of 4. The lanes' sums meet in the balanced split-K kernel's reduce-scatter and go to an fp32
// workspace by atomicAdd; a second kernel writes Y and re-zeroes the workspace.
//
// Weight: slice-major CSR: ptr[s * (m + 1) + r] .. ptr[s * (m + 1) + r + 1] are row r's entries in
// slice s (global positions into values / cols), columns local to the slice (u16), ascending.
//
// Plain C++ (host and device): a host test packs, stages and computes as the kernel does.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/fast_div.h"  // SB_HOST_DEVICE

namespace sb::gpu {

constexpr int kCsrSplitkWarps = 16;
constexpr std::size_t kCsrSplitkSliceBytes = 32 << 10;

struct CsrSplitkLayout {
  std::int64_t m = 0, k = 0;
  int nc = 0;      // columns per tile: 8 or 16
  int ks = 0;      // columns of W (rows of X) per slice
  int ktiles = 0;  // ceil(k / ks)
};

inline CsrSplitkLayout make_csr_splitk_layout(std::int64_t m, std::int64_t k, std::int64_t n) {
  CsrSplitkLayout l;
  l.m = m;
  l.k = k;
  l.nc = n > 8 ? 16 : 8;
  l.ks = static_cast<int>(kCsrSplitkSliceBytes / (static_cast<std::size_t>(l.nc) * 2));
  if (k < l.ks) l.ks = static_cast<int>(k);
  l.ktiles = static_cast<int>((k + l.ks - 1) / l.ks);
  return l;
}

inline std::size_t csr_splitk_smem_bytes(const CsrSplitkLayout& l) { return static_cast<std::size_t>(l.ks) * l.nc * 2; }

// The 16-byte unit holding columns 8 h .. 8 h + 7 of X's row c (local to the slice).
SB_HOST_DEVICE int csr_splitk_unit(int nc, int c, int h) { return nc == 16 ? c * 2 + (h ^ ((c >> 2) & 1)) : c; }

struct CsrSplitkPacked {
  std::vector<float> values;
  std::vector<std::uint16_t> cols;
  std::vector<std::int32_t> ptr;  // [ktiles * (m + 1)]
};

inline CsrSplitkPacked pack_csr_splitk(const CsrSplitkLayout& l, const float* values, const std::uint8_t* kept) {
  CsrSplitkPacked p;
  p.ptr.assign(static_cast<std::size_t>(l.ktiles) * (l.m + 1), 0);
  for (int s = 0; s < l.ktiles; ++s) {
    const std::int64_t k0 = static_cast<std::int64_t>(s) * l.ks;
    const std::int64_t k1 = k0 + l.ks < l.k ? k0 + l.ks : l.k;
    std::int32_t* ptr = p.ptr.data() + static_cast<std::size_t>(s) * (l.m + 1);
    for (std::int64_t r = 0; r < l.m; ++r) {
      ptr[r] = static_cast<std::int32_t>(p.values.size());
      for (std::int64_t j = k0; j < k1; ++j)
        if (kept[r * l.k + j]) {
          p.values.push_back(values[r * l.k + j]);
          p.cols.push_back(static_cast<std::uint16_t>(j - k0));
        }
    }
    ptr[l.m] = static_cast<std::int32_t>(p.values.size());
  }
  return p;
}

}  // namespace sb::gpu
