#pragma once
// Packing an unstructured weight, host side, for the CSR kernels' simple and fast variants
// (CsrDevice, spmm_csr.cuh): every row padded with value-0 entries at column 0 to a multiple of 8
// entries (16-byte loads), u16 column indices, and the row order sorted by length, longest first.
// Plain C++: the implementation and the emulator tests (tests/cuda/emu) pack with it.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace sb::gpu {

struct CsrPadded {
  std::vector<float> values;          // padded nnz, to be stored as f16 / bf16
  std::vector<std::uint16_t> cols;    // padded nnz
  std::vector<std::int32_t> row_ptr;  // m + 1, in the original row order
  std::vector<std::int32_t> order;    // m: a permutation, longest row first (stable)
  int mean_row = 0;                   // mean padded row length
};

// values / kept: the dense m x k weight (k <= 65536) and its mask, row-major.
inline CsrPadded pack_csr_padded(std::int64_t m, std::int64_t k, const float* values, const std::uint8_t* kept) {
  CsrPadded p;
  p.row_ptr.assign(static_cast<std::size_t>(m + 1), 0);
  std::vector<std::int32_t> len(static_cast<std::size_t>(m), 0);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < k; ++j)
      if (kept[i * k + j]) {
        p.values.push_back(values[i * k + j]);
        p.cols.push_back(static_cast<std::uint16_t>(j));
      }
    while (p.values.size() % 8) {  // padding: value 0 at column 0, which exists
      p.values.push_back(0.f);
      p.cols.push_back(0);
    }
    p.row_ptr[i + 1] = static_cast<std::int32_t>(p.values.size());
    len[i] = p.row_ptr[i + 1] - p.row_ptr[i];
  }
  p.order.resize(static_cast<std::size_t>(m));
  std::iota(p.order.begin(), p.order.end(), 0);
  std::stable_sort(p.order.begin(), p.order.end(), [&](std::int32_t a, std::int32_t b) { return len[a] > len[b]; });
  p.mean_row = m > 0 ? static_cast<int>(p.values.size() / static_cast<std::size_t>(m)) : 0;
  return p;
}

}  // namespace sb::gpu
