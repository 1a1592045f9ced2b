#pragma once
// Internal: the optimizers' element-wise updates as one pass per parameter (the trainer's fast
// form; its ATen form in train.cpp takes ~8 dispatched ops per parameter and step: for vit_mini's
// 72 parameters ~600 ops, ~3 % of a step). Float arithmetic, in the ATen form's order. `mask`
// (0/1, the pruning mask) may be null: masked entries of w, g and the moments end exactly zero.
// On return g holds the gradient as applied (masked, with SGD's weight decay added).
#include <cstdint>

namespace sb::train_detail {

// Nesterov SGD: g += wd w; m = momentum m + g; w -= lr (g + momentum m).
void sgd_step(float* w, float* g, float* m, const float* mask, std::int64_t n, float lr, float wd, float momentum);

// AdamW: w *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// w -= (lr / c1) m / (sqrt(v / c2) + eps), with c1, c2 the bias corrections 1 - b^t.
void adamw_step(float* w, float* g, float* m, float* v, const float* mask, std::int64_t n, float lr, float wd,
                float b1, float b2, float c1, float c2, float eps);

}  // namespace sb::train_detail
