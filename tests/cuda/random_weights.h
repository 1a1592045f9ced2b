#pragma once
// Random pruned weights for the GPU kernels' host tests (test_gpu_host: the layouts; test_cuda_emu:
// the kernels on the CPU emulator).
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace sb::gpu::test_data {

// A random bank-balanced m x k weight: in every bank of `bank` columns (the last one possibly
// narrower) `keep` random columns kept (all of a narrower bank's when fewer), values in [-1, 1].
// With `fewer_one_in` = F > 0, one bank in F (at random) keeps fewer, from none up to `keep`, so
// that the packers' padding is exercised.
struct BalancedWeight {
  std::vector<float> w;
  std::vector<std::uint8_t> kept;
  int kb = 1;  // the most entries any bank keeps (at least 1)
};

inline BalancedWeight random_balanced(std::int64_t m, std::int64_t k, int bank, int keep, std::mt19937_64& rng,
                                      int fewer_one_in = 0) {
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  const int banks = static_cast<int>((k + bank - 1) / bank);
  BalancedWeight out;
  out.w.assign(static_cast<std::size_t>(m * k), 0.f);
  out.kept.assign(out.w.size(), 0);
  std::vector<int> cols;
  for (std::int64_t r = 0; r < m; ++r)
    for (int b = 0; b < banks; ++b) {
      const int width = static_cast<int>(std::min<std::int64_t>(bank, k - static_cast<std::int64_t>(b) * bank));
      cols.resize(static_cast<std::size_t>(width));
      for (int i = 0; i < width; ++i) cols[i] = i;
      std::shuffle(cols.begin(), cols.end(), rng);
      int kept = std::min(keep, width);
      if (fewer_one_in > 0 && rng() % fewer_one_in == 0) kept = static_cast<int>(rng() % (kept + 1));
      out.kb = std::max(out.kb, kept);
      for (int i = 0; i < kept; ++i) {
        const std::int64_t j = static_cast<std::int64_t>(b) * bank + cols[i];
        out.kept[r * k + j] = 1;
        out.w[r * k + j] = uni(rng);
      }
    }
  return out;
}

}  // namespace sb::gpu::test_data
