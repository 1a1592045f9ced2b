#pragma once
// Vector loops of the executor's transcendental ops (GELU, softmax rows), compiled with AVX-512
// flags in elementwise_avx512.cpp. The library's baseline flags are x86-64 (SSE2), where GCC
// leaves the scalar GELU loop unvectorized (branches in the erf / exp helpers), and a BERT-base
// inference spent more time in GELU than in all its linear layers at 90 % sparsity. The executor
// calls these when sb::max_isa() is avx512 and its portable loops otherwise.
#include <cstdint>

namespace sb::rt {

// y[i] = x[i] * (1 + erf(x[i] / sqrt 2)) / 2 for i in [0, n); erf by Abramowitz & Stegun 7.1.26
// (absolute error <= 1.5e-7), the same formula as the portable loop. x and y may be equal.
void gelu_avx512(const float* x, float* y, std::int64_t n);

// dx[i] = dy[i] * gelu'(x[i]), gelu'(x) = Phi(x) + x phi(x), with the same erf and exp as
// gelu_avx512 (for training: src/train/torch_linear.cpp). dx may equal dy.
void gelu_backward_avx512(const float* x, const float* dy, float* dx, std::int64_t n);

// In place: row[j] = exp(row[j] - max) / sum over the n contiguous elements of row.
void softmax_row_avx512(float* row, std::int64_t n);

}  // namespace sb::rt
