#include "sparsebench/core/rng.h"

#include <cmath>

#include "sparsebench/core/tensor.h"

namespace sb {

static std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

Rng::Rng(std::uint64_t seed) {
  std::uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

std::uint64_t Rng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::next_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

float Rng::uniform(float lo, float hi) {
  return static_cast<float>(lo + (static_cast<double>(hi) - lo) * next_double());
}

float Rng::normal(float mean, float stddev) {
  if (has_spare_) {
    has_spare_ = false;
    return static_cast<float>(mean + stddev * spare_);
  }
  double u, v, s;
  do {
    u = 2.0 * next_double() - 1.0;
    v = 2.0 * next_double() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double f = std::sqrt(-2.0 * std::log(s) / s);
  spare_ = v * f;
  has_spare_ = true;
  return static_cast<float>(mean + stddev * u * f);
}

std::uint64_t Rng::below(std::uint64_t n) {
  SB_CHECK(n > 0, "Rng::below(0)");
  // Lemire's nearly divisionless method would do; rejection keeps it exact and simple.
  const std::uint64_t limit = ~0ull - (~0ull % n);
  std::uint64_t x;
  do x = next_u64(); while (x >= limit);
  return x % n;
}

void Rng::fill_uniform(Tensor& t, float lo, float hi) {
  SB_CHECK(t.is_contiguous(), "fill_uniform on a non-contiguous tensor");
  float* p = t.data<float>();
  for (std::int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = uniform(lo, hi);
}

void Rng::fill_normal(Tensor& t, float mean, float stddev) {
  SB_CHECK(t.is_contiguous(), "fill_normal on a non-contiguous tensor");
  float* p = t.data<float>();
  for (std::int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = normal(mean, stddev);
}

Rng Rng::split(std::uint64_t index) const {
  std::uint64_t x = s_[0] ^ rotl(s_[2], 13) ^ (index * 0xd1342543de82ef95ull);
  return Rng(splitmix64(x));
}

}  // namespace sb
