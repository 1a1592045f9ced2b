#pragma once
// Internal (sees torch): multi-head scaled dot-product attention for training, one autograd
// function with a hand-written forward and backward.
//
// Why not at::matmul: libtorch 1.13's CPU bmm multiplies batch by batch, one BLAS call per
// (sample, head), serially (OpenBLAS has no batched sgemm). vit_mini's attention is 512 products of
// 17 x 24 per layer, so the calls, not the arithmetic, cost: 8.5 ms per layer per step (forward and
// backward, batch 128, 2 threads), about 40 % of vit_mini's training step. Here every (sample,
// head) is one task of a parallel loop over small in-cache matrices.
#include <ATen/ATen.h>

#include <cstdint>

namespace sb::train_detail {

// q, k, v: [B, T, C] f32, C divisible by `heads`. Returns softmax(q_h k_h^T / sqrt(C / heads)) v_h
// for every head h (columns h*D .. h*D+D-1), [B, T, C]; differentiable in q, k and v.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::int64_t heads);

// The same with ATen's matmul and softmax (the reference; what the bridge used before).
at::Tensor attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::int64_t heads);

}  // namespace sb::train_detail
