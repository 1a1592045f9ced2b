#pragma once
// Packing a bank-balanced weight, host side, for every balanced / N:M kernel layout (fast, GEMV,
// split-K): the layouts differ only in where slot i of bank b of a row goes.
#include <cstdint>
#include <vector>

namespace sb::gpu {

// Packed rows of row_stride entries: values (as f32, to be stored as f16 / bf16) and u8 in-bank
// offsets; positions no kept entry fills hold value 0 at offset 0 (a column that exists).
struct BalancedPacked {
  std::vector<float> values;
  std::vector<std::uint8_t> offsets;
};

// The most entries any bank of `bank` columns keeps (at least 1). values / kept: the dense m x k
// weight and its mask, row-major.
inline int max_kept_per_bank(std::int64_t m, std::int64_t k, int bank, const std::uint8_t* kept) {
  int most = 1;
  for (std::int64_t r = 0; r < m; ++r)
    for (std::int64_t b0 = 0; b0 < k; b0 += bank) {
      int count = 0;
      for (std::int64_t j = b0; j < b0 + bank && j < k; ++j) count += kept[r * k + j];
      if (count > most) most = count;
    }
  return most;
}

// Slot i (the i-th kept entry, in column order; i < kb) of bank b of every row goes to position
// pos(b, i) of the row.
template <class Pos>
BalancedPacked pack_balanced(std::int64_t m, std::int64_t k, int bank, int kb, int row_stride, const float* values,
                             const std::uint8_t* kept, Pos pos) {
  BalancedPacked p;
  p.values.assign(static_cast<std::size_t>(m) * row_stride, 0.f);
  p.offsets.assign(static_cast<std::size_t>(m) * row_stride, 0);
  const int banks = static_cast<int>((k + bank - 1) / bank);
  for (std::int64_t r = 0; r < m; ++r)
    for (int b = 0; b < banks; ++b) {
      int i = 0;
      const std::int64_t b0 = static_cast<std::int64_t>(b) * bank;
      for (std::int64_t j = b0; j < b0 + bank && j < k && i < kb; ++j) {
        if (!kept[r * k + j]) continue;
        const std::size_t at = static_cast<std::size_t>(r) * row_stride + static_cast<std::size_t>(pos(b, i));
        p.values[at] = values[r * k + j];
        p.offsets[at] = static_cast<std::uint8_t>(j - b0);
        ++i;
      }
    }
  return p;
}

}  // namespace sb::gpu
