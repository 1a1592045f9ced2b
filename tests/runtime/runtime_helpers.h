#pragma once
// Shared helpers for the runtime tests: random tensors, a double-precision reference tensor, and
// the comparison (normalized max error, NaN fails, an all-zero reference is refused).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "sparsebench/core/rng.h"
#include "sparsebench/core/tensor.h"

namespace sb::test {

// A logical, row-major tensor in double.
struct Ref {
  Shape shape;
  std::vector<double> v;
  Ref() = default;
  explicit Ref(Shape s) : shape(std::move(s)), v(static_cast<std::size_t>(shape_numel(shape)), 0.0) {}
  Ref(Shape s, std::vector<double> values) : shape(std::move(s)), v(std::move(values)) {}
  static Ref from(const Tensor& t) {
    Ref r(t.shape());
    const Tensor c = t.contiguous();
    const float* p = c.data<float>();
    for (std::size_t i = 0; i < r.v.size(); ++i) r.v[i] = p[i];
    return r;
  }
  // Row-major offset of a multi-index.
  std::int64_t off(std::initializer_list<std::int64_t> idx) const {
    std::int64_t o = 0;
    std::size_t d = 0;
    for (auto i : idx) o = o * shape[d++] + i;
    return o;
  }
  double& operator()(std::initializer_list<std::int64_t> idx) { return v[off(idx)]; }
  double operator()(std::initializer_list<std::int64_t> idx) const { return v[off(idx)]; }
};

inline Tensor random_tensor(const Shape& shape, Rng& rng, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::empty(shape);
  rng.fill_uniform(t, lo, hi);
  return t;
}

// max |got - ref| / max |ref|; infinity when got has a NaN or a shape mismatch.
inline double rel_error(const Tensor& got, const Ref& ref) {
  if (got.shape() != ref.shape) return INFINITY;
  const Tensor c = got.contiguous();
  const float* p = c.data<float>();
  double maxref = 0, maxdiff = 0;
  for (std::size_t i = 0; i < ref.v.size(); ++i) {
    if (std::isnan(p[i])) return INFINITY;
    maxref = std::max(maxref, std::abs(ref.v[i]));
    maxdiff = std::max(maxdiff, std::abs(p[i] - ref.v[i]));
  }
  return maxdiff / std::max(maxref, 1e-30);
}

inline double rel_error(const Tensor& got, const Tensor& want) { return rel_error(got, Ref::from(want)); }

inline double max_abs(const Tensor& t) {
  const Tensor c = t.contiguous();
  double m = 0;
  for (std::int64_t i = 0; i < c.numel(); ++i) m = std::max(m, static_cast<double>(std::abs(c.data<float>()[i])));
  return m;
}

}  // namespace sb::test
