#pragma once
// Internal (sees torch): the transformer's linear layers, GELU and LayerNorm for training, as
// autograd functions with hand-written backward passes (the bridge's fast path,
// TorchModule::set_fast_training).
//
// Why: vit_mini's training step (batch 128, 17 tokens, hidden 96, one thread) spent 60 % of its
// time in at::linear's OpenBLAS sgemm at ~87 GFLOP/s, where oneDNN's sgemm runs the same shapes
// (2176 x 96 x 96..288 and their transposes) at 106-116 GFLOP/s, and 9 % in ATen's exact GELU
// forward and backward (1.6 ms per call for 2176 x 192 values), which AVX-512 does ~10x faster.
#include <ATen/ATen.h>

namespace sb::train_detail {

// y = x w^T + b over the last dimension of x ([..., K]); w: [N, K]; b: [N] or undefined. f32 CPU.
// Differentiable in x, w and b (oneDNN sgemm forward and backward; db by ATen's sum).
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

// GELU (exact, erf form) with the runtime's AVX-512 erf (absolute error <= 1.5e-7) and its
// derivative Phi(x) + x phi(x); differentiable. Only where the CPU has AVX-512 (gelu_available).
bool gelu_available();
at::Tensor gelu(const at::Tensor& x);

// LayerNorm over the last dimension (C values per row): (x - mean) / sqrt(var + eps) * w + b, w
// and b [C]; differentiable in x, w and b. One pass per row forward and one backward (ATen 1.13
// runs several); the w and b gradients are summed over fixed blocks of rows in a fixed order, so
// the result does not depend on the thread count.
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps);

}  // namespace sb::train_detail
