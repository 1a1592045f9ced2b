// The optimizers' fused updates (see optim.h).
#include "train/optim.h"

#include <ATen/Parallel.h>

#include <cmath>

namespace sb::train_detail {

void sgd_step(float* __restrict w, float* __restrict g, float* __restrict m, const float* __restrict mask,
              std::int64_t n, float lr, float wd, float momentum) {
  at::parallel_for(0, n, 16384, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      float gi = mask ? g[i] * mask[i] : g[i];
      gi += wd * w[i];
      const float mi = m[i] * momentum + gi;
      const float wi = w[i] - lr * (gi + momentum * mi);  // Nesterov
      w[i] = mask ? wi * mask[i] : wi;
      m[i] = mask ? mi * mask[i] : mi;
      g[i] = gi;
    }
  });
}

void adamw_step(float* __restrict w, float* __restrict g, float* __restrict m, float* __restrict v,
                const float* __restrict mask, std::int64_t n, float lr, float wd, float b1, float b2, float c1,
                float c2, float eps) {
  const float decay = 1.f - lr * wd, step = lr / c1, inv_c2 = 1.f / c2;
  at::parallel_for(0, n, 16384, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      const float gi = mask ? g[i] * mask[i] : g[i];
      const float mi = m[i] * b1 + gi * (1.f - b1);
      const float vi = v[i] * b2 + gi * gi * (1.f - b2);
      const float wi = w[i] * decay - step * mi / (std::sqrt(vi * inv_c2) + eps);
      w[i] = mask ? wi * mask[i] : wi;
      m[i] = mask ? mi * mask[i] : mi;
      v[i] = mask ? vi * mask[i] : vi;
      g[i] = gi;
    }
  });
}

}  // namespace sb::train_detail
