#pragma once
// A seeded generator whose streams are identical on every platform and compiler (xoshiro256**,
// seeded through splitmix64; our own uniform and normal transforms, not <random>'s distributions,
// whose output differs between standard libraries).
#include <cstdint>

namespace sb {

class Tensor;

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0x5eed);
  std::uint64_t next_u64();
  std::uint32_t next_u32() { return static_cast<std::uint32_t>(next_u64() >> 32); }
  double next_double();                       // [0, 1)
  float uniform(float lo = 0.f, float hi = 1.f);
  float normal(float mean = 0.f, float stddev = 1.f);
  std::uint64_t below(std::uint64_t n);       // uniform integer in [0, n), n > 0

  void fill_uniform(Tensor& t, float lo, float hi);   // f32 tensors
  void fill_normal(Tensor& t, float mean, float stddev);
  // An independent stream for worker `index` (for parallel fills that stay reproducible).
  Rng split(std::uint64_t index) const;

 private:
  std::uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace sb
