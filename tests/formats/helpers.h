#pragma once
// Random matrices and comparisons shared by the format tests.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <string>

#include "sparsebench/core/rng.h"
#include "sparsebench/core/tensor.h"

namespace sb::test {

// A dense matrix and the mask pruning decided. Some rows are left empty on purpose, and some kept
// entries hold 0 or -0 (explicit zeros a mask keeps) so that formats cannot rely on value != 0.
struct Sample {
  Tensor dense;  // f32, values everywhere (pruned entries too: formats must drop them)
  Tensor mask;   // u8
};

inline Sample random_sample(Rng& rng, std::int64_t rows, std::int64_t cols, double density) {
  Sample s{Tensor::empty({rows, cols}), Tensor::zeros({rows, cols}, DType::u8)};
  float* d = s.dense.data<float>();
  std::uint8_t* m = s.mask.data<std::uint8_t>();
  for (std::int64_t i = 0; i < rows; ++i) {
    const bool empty_row = density < 1.0 && rng.next_double() < 0.2;
    for (std::int64_t j = 0; j < cols; ++j) {
      const std::int64_t idx = i * cols + j;
      d[idx] = rng.uniform(-1.f, 1.f);
      m[idx] = !empty_row && rng.next_double() < density;
      if (m[idx] && rng.next_double() < 0.05) d[idx] = rng.next_double() < 0.5 ? 0.f : -0.f;
    }
  }
  return s;
}

// What to_dense() must return: kept values bit for bit, +0 elsewhere.
inline Tensor expected_dense(const Tensor& dense, const Tensor& mask) {
  Tensor out = Tensor::zeros(dense.shape());
  const float* d = dense.data<float>();
  const std::uint8_t* m = mask.defined() ? mask.data<std::uint8_t>() : nullptr;
  float* o = out.data<float>();
  for (std::int64_t i = 0; i < dense.numel(); ++i)
    if (m ? m[i] != 0 : d[i] != 0.f) o[i] = d[i];
  return out;
}

inline std::int64_t count_kept(const Tensor& mask) {
  std::int64_t n = 0;
  const std::uint8_t* m = mask.data<std::uint8_t>();
  for (std::int64_t i = 0; i < mask.numel(); ++i) n += m[i] != 0;
  return n;
}

inline ::testing::AssertionResult bitwise_equal(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << shape_to_string(got.shape()) << " vs "
                                         << shape_to_string(want.shape());
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  const std::int64_t cols = want.dim() == 2 ? want.size(1) : 1;
  for (std::int64_t i = 0; i < want.numel(); ++i)
    if (std::bit_cast<std::uint32_t>(g[i]) != std::bit_cast<std::uint32_t>(w[i]))
      return ::testing::AssertionFailure()
             << "element (" << i / cols << ", " << i % cols << "): got " << g[i] << " want " << w[i];
  return ::testing::AssertionSuccess();
}

}  // namespace sb::test

// Expects `stmt` to throw sb::Error whose message contains `text`.
#define EXPECT_SB_ERROR(stmt, text)                                                                   \
  do {                                                                                                \
    try {                                                                                             \
      stmt;                                                                                           \
      ADD_FAILURE() << "expected sb::Error containing \"" << (text) << "\"";                          \
    } catch (const ::sb::Error& e) {                                                                  \
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos)                                  \
          << "message: " << e.what() << "\nexpected to contain: " << (text);                          \
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "not one line: " << e.what(); \
    }                                                                                                 \
  } while (0)
