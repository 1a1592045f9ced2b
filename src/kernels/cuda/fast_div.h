#pragma once
// Division of small unsigned values by a divisor fixed per kernel launch, by one multiply-high
// instead of a run-time integer division (~20 instructions on a GPU): q = hi32(n * magic) + n * one,
// magic = ceil(2^32 / d) for d >= 2 (magic = 0, one = 1 for d = 1, whose magic would not fit).
// Exact whenever n * d < 2^32: with magic * d = 2^32 + r, 0 <= r < d,
// n * magic / 2^32 = n / d + n * r / (d * 2^32), and n * r < n * d < 2^32 keeps the excess below 1 / d,
// too little to cross the next multiple of 1 / d. Plain C++ so that host tests check it; the
// kernels call the same function.
#include <cstdint>

#if defined(__CUDACC__)
#define SB_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SB_HOST_DEVICE inline
#endif

namespace sb::gpu {

struct FastDiv {
  std::uint32_t magic = 0, one = 1;
};

// The divider for d >= 1.
inline FastDiv make_fast_div(std::uint32_t d) {
  if (d <= 1) return FastDiv{0, 1};
  return FastDiv{static_cast<std::uint32_t>(((std::uint64_t{1} << 32) + d - 1) / d), 0};
}

// floor(n / d) for n * d < 2^32.
SB_HOST_DEVICE std::uint32_t fast_div(std::uint32_t n, FastDiv f) {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(n) * f.magic) >> 32) + n * f.one;
}

}  // namespace sb::gpu
