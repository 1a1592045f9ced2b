// Training-mode BatchNorm + ReLU/ReLU6 as one autograd function (see torch_batchnorm.h).
//
// The input is viewed as M rows of C channels (channels-last), so every per-channel loop runs
// over contiguous memory and vectorises. Reductions are split into fixed chunks of kChunk rows
// (float partial sums inside a chunk, double across chunks, summed in chunk order): the result
// is the same for any thread count. The variance uses the shifted-data formula (shift = the first
// row), which avoids the cancellation of E[x^2] - E[x]^2 when |mean| >> std.
#include "train/torch_batchnorm.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sparsebench/core/cpu_info.h"
#include "sparsebench/core/error.h"

namespace sb::train_detail {

namespace {

constexpr std::int64_t kChunk = 256;  // rows per partial sum

struct Bounds {
  float lo, hi;  // the activation's clamp; the gradient passes where lo < pre < hi
};

Bounds bounds(BnAct act) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  switch (act) {
    case BnAct::relu: return {0.f, inf};
    case BnAct::relu6: return {0.f, 6.f};
    default: return {-inf, inf};
  }
}

// --- kernels: plain loops over a chunk of rows, compiled twice (baseline x86-64 and AVX2+FMA) ---

// s1[c] += sum (x - k), s2[c] += sum (x - k)^2 over rows [r0, r1).
[[gnu::always_inline]] inline void stats_impl(const float* __restrict x, std::int64_t r0, std::int64_t r1, std::int64_t C,
                                              const float* __restrict k, float* __restrict s1, float* __restrict s2) {
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* row = x + r * C;
    for (std::int64_t c = 0; c < C; ++c) {
      const float d = row[c] - k[c];
      s1[c] += d;
      s2[c] += d * d;
    }
  }
}

// y = clamp(x * a + b, lo, hi).
[[gnu::always_inline]] inline void normalise_impl(const float* __restrict x, float* __restrict y, std::int64_t r0, std::int64_t r1,
                                                  std::int64_t C, const float* __restrict a, const float* __restrict b, Bounds bd) {
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    for (std::int64_t c = 0; c < C; ++c) yr[c] = std::min(std::max(xr[c] * a[c] + b[c], bd.lo), bd.hi);
  }
}

// With g = dy where lo < x * a + b < hi (else 0): sg[c] += sum g, sgx[c] += sum g * (x - mean).
[[gnu::always_inline]] inline void grad_stats_impl(const float* __restrict x, const float* __restrict dy, std::int64_t r0, std::int64_t r1,
                                                   std::int64_t C, const float* __restrict a, const float* __restrict b, const float* __restrict mean,
                                                   Bounds bd, float* __restrict sg, float* __restrict sgx) {
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * C;
    const float* gr = dy + r * C;
    for (std::int64_t c = 0; c < C; ++c) {
      const float pre = xr[c] * a[c] + b[c];
      const float gv = gr[c];  // loaded unconditionally, so that the loop vectorises
      const float g = (pre > bd.lo && pre < bd.hi) ? gv : 0.f;
      sg[c] += g;
      sgx[c] += g * (xr[c] - mean[c]);
    }
  }
}

// dx = p * g + q * x + s, g as above.
[[gnu::always_inline]] inline void grad_input_impl(const float* __restrict x, const float* __restrict dy, float* __restrict dx, std::int64_t r0,
                                                   std::int64_t r1, std::int64_t C, const float* __restrict a, const float* __restrict b,
                                                   Bounds bd, const float* __restrict p, const float* __restrict q, const float* __restrict s) {
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * C;
    const float* gr = dy + r * C;
    float* dr = dx + r * C;
    for (std::int64_t c = 0; c < C; ++c) {
      const float pre = xr[c] * a[c] + b[c];
      const float gv = gr[c];
      const float g = (pre > bd.lo && pre < bd.hi) ? gv : 0.f;
      dr[c] = p[c] * g + q[c] * xr[c] + s[c];
    }
  }
}

#define SB_BN_AVX2 __attribute__((target("avx2,fma")))
void stats_generic(const float* x, std::int64_t r0, std::int64_t r1, std::int64_t C, const float* k, float* s1,
                   float* s2) {
  stats_impl(x, r0, r1, C, k, s1, s2);
}
SB_BN_AVX2 void stats_avx2(const float* x, std::int64_t r0, std::int64_t r1, std::int64_t C, const float* k,
                           float* s1, float* s2) {
  stats_impl(x, r0, r1, C, k, s1, s2);
}
void normalise_generic(const float* x, float* y, std::int64_t r0, std::int64_t r1, std::int64_t C, const float* a,
                       const float* b, Bounds bd) {
  normalise_impl(x, y, r0, r1, C, a, b, bd);
}
SB_BN_AVX2 void normalise_avx2(const float* x, float* y, std::int64_t r0, std::int64_t r1, std::int64_t C,
                               const float* a, const float* b, Bounds bd) {
  normalise_impl(x, y, r0, r1, C, a, b, bd);
}
void grad_stats_generic(const float* x, const float* dy, std::int64_t r0, std::int64_t r1, std::int64_t C,
                        const float* a, const float* b, const float* mean, Bounds bd, float* sg, float* sgx) {
  grad_stats_impl(x, dy, r0, r1, C, a, b, mean, bd, sg, sgx);
}
SB_BN_AVX2 void grad_stats_avx2(const float* x, const float* dy, std::int64_t r0, std::int64_t r1, std::int64_t C,
                                const float* a, const float* b, const float* mean, Bounds bd, float* sg, float* sgx) {
  grad_stats_impl(x, dy, r0, r1, C, a, b, mean, bd, sg, sgx);
}
void grad_input_generic(const float* x, const float* dy, float* dx, std::int64_t r0, std::int64_t r1, std::int64_t C,
                        const float* a, const float* b, Bounds bd, const float* p, const float* q, const float* s) {
  grad_input_impl(x, dy, dx, r0, r1, C, a, b, bd, p, q, s);
}
SB_BN_AVX2 void grad_input_avx2(const float* x, const float* dy, float* dx, std::int64_t r0, std::int64_t r1,
                                std::int64_t C, const float* a, const float* b, Bounds bd, const float* p,
                                const float* q, const float* s) {
  grad_input_impl(x, dy, dx, r0, r1, C, a, b, bd, p, q, s);
}
#undef SB_BN_AVX2

bool use_avx2() {
  return max_isa() >= Isa::avx2;  // honours SB_ISA, as the runtime's kernels do
}

// Sums f(r0, r1, s1, s2) over fixed chunks of rows into two double vectors of C: chunks run in
// parallel, each into its own float partials; the chunks are then added in order.
template <class F>
void chunked_sums(std::int64_t M, std::int64_t C, F f, std::vector<double>& out1, std::vector<double>& out2) {
  const std::int64_t chunks = (M + kChunk - 1) / kChunk;
  std::vector<float> part(static_cast<std::size_t>(chunks * 2 * C), 0.f);
  at::parallel_for(0, chunks, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t ch = lo; ch < hi; ++ch) {
      float* p = part.data() + ch * 2 * C;
      f(ch * kChunk, std::min(M, (ch + 1) * kChunk), p, p + C);
    }
  });
  out1.assign(static_cast<std::size_t>(C), 0.0);
  out2.assign(static_cast<std::size_t>(C), 0.0);
  for (std::int64_t ch = 0; ch < chunks; ++ch) {
    const float* p = part.data() + ch * 2 * C;
    for (std::int64_t c = 0; c < C; ++c) {
      out1[static_cast<std::size_t>(c)] += p[c];
      out2[static_cast<std::size_t>(c)] += p[C + c];
    }
  }
}

// x as channels-last rows: [N, C] stays, [N, C, H, W] becomes channels-last contiguous.
at::Tensor as_rows(const at::Tensor& x) {
  return x.dim() == 4 ? x.contiguous(at::MemoryFormat::ChannelsLast) : x.contiguous();
}

void check(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& rm, const at::Tensor& rv,
           bool f32_cpu) {
  SB_CHECK(x.dim() == 2 || x.dim() == 4, "batch_norm: input must be [N, C] or [N, C, H, W], got {} dims", x.dim());
  SB_CHECK(!f32_cpu || (x.scalar_type() == at::kFloat && x.device().is_cpu()),
           "batch_norm: input must be an f32 CPU tensor, got {} on {}", c10::toString(x.scalar_type()),
           x.device().str());
  const std::int64_t C = x.size(1);
  for (const at::Tensor* t : {&w, &b, &rm, &rv})
    SB_CHECK(t->defined() && t->dim() == 1 && t->size(0) == C && t->scalar_type() == x.scalar_type(),
             "batch_norm: weight, bias and running statistics must be defined [{}] tensors of the input's dtype", C);
  SB_CHECK(C >= 1 && x.numel() / C > 1, "batch_norm: training needs more than one value per channel, got input {}",
           fmt::format("{}", fmt::join(x.sizes(), "x")));
}

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct BatchNormActFunction : torch::autograd::Function<BatchNormActFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& running_mean, const at::Tensor& running_var,
                            double momentum, double eps, std::int64_t act) {
    const at::Tensor x = as_rows(x_in);
    const std::int64_t C = x.size(1), M = x.numel() / C;
    const Bounds bd = bounds(static_cast<BnAct>(act));
    const bool avx2 = use_avx2();
    const float* xp = x.data_ptr<float>();
    // Statistics: shifted sums (shift = row 0).
    const std::vector<float> k(xp, xp + C);
    std::vector<double> s1, s2;
    chunked_sums(
        M, C,
        [&](std::int64_t r0, std::int64_t r1, float* p1, float* p2) {
          (avx2 ? stats_avx2 : stats_generic)(xp, r0, r1, C, k.data(), p1, p2);
        },
        s1, s2);
    at::Tensor mean = at::empty({C}, x.options()), invstd = at::empty({C}, x.options());
    at::Tensor a = at::empty({C}, x.options()), b = at::empty({C}, x.options());
    {
      const at::Tensor w = weight.contiguous(), bi = bias.contiguous();
      const float *wp = w.data_ptr<float>(), *bp = bi.data_ptr<float>();
      float *mp = mean.data_ptr<float>(), *ip = invstd.data_ptr<float>(), *ap = a.data_ptr<float>(),
            *cp = b.data_ptr<float>();
      std::vector<float> unbiased(static_cast<std::size_t>(C));
      const double m = static_cast<double>(M);
      for (std::int64_t c = 0; c < C; ++c) {
        const std::size_t i = static_cast<std::size_t>(c);
        const double d = s1[i] / m, var = std::max(0.0, s2[i] / m - d * d), mu = k[i] + d;
        const double is = 1.0 / std::sqrt(var + eps);
        mp[c] = static_cast<float>(mu);
        ip[c] = static_cast<float>(is);
        ap[c] = static_cast<float>(wp[c] * is);
        cp[c] = static_cast<float>(bp[c] - mu * wp[c] * is);
        unbiased[i] = static_cast<float>(var * m / (m - 1));
      }
      // Running statistics, as at::batch_norm updates them.
      at::NoGradGuard no_grad;
      running_mean.mul_(1 - momentum).add_(mean, momentum);
      running_var.mul_(1 - momentum).add_(at::from_blob(unbiased.data(), {C}, x.options()), momentum);
    }
    at::Tensor y = at::empty_like(x);  // keeps x's (channels-last) layout
    float* yp = y.data_ptr<float>();
    const float *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>();
    at::parallel_for(0, M, kChunk, [&](std::int64_t lo, std::int64_t hi) {
      (avx2 ? normalise_avx2 : normalise_generic)(xp, yp, lo, hi, C, ap, bp, bd);
    });
    ctx->save_for_backward({x, weight, mean, invstd, a, b});
    ctx->saved_data["act"] = act;
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &mean = saved[2], &invstd = saved[3], &a = saved[4],
                     &b = saved[5];
    const Bounds bd = bounds(static_cast<BnAct>(ctx->saved_data["act"].toInt()));
    if (!grads[0].defined()) return tensor_list(8);
    const at::Tensor dy = as_rows(grads[0]);
    const std::int64_t C = x.size(1), M = x.numel() / C;
    const bool avx2 = use_avx2();
    const float *xp = x.data_ptr<float>(), *gp = dy.data_ptr<float>(), *ap = a.data_ptr<float>(),
                *bp = b.data_ptr<float>(), *mp = mean.data_ptr<float>(), *ip = invstd.data_ptr<float>();
    std::vector<double> sg, sgx;
    chunked_sums(
        M, C,
        [&](std::int64_t r0, std::int64_t r1, float* p1, float* p2) {
          (avx2 ? grad_stats_avx2 : grad_stats_generic)(xp, gp, r0, r1, C, ap, bp, mp, bd, p1, p2);
        },
        sg, sgx);
    // dx = w*is * (g - sg/M - (x - mean) * is^2 * sgx/M) = p g + q x + s.
    const at::Tensor w = weight.contiguous();
    const float* wp = w.data_ptr<float>();
    at::Tensor dweight = at::empty({C}, x.options()), dbias = at::empty({C}, x.options());
    std::vector<float> p(static_cast<std::size_t>(C)), q(p.size()), s(p.size());
    const double m = static_cast<double>(M);
    for (std::int64_t c = 0; c < C; ++c) {
      const std::size_t i = static_cast<std::size_t>(c);
      const double is = ip[c], wi = wp[c] * is;
      dweight.data_ptr<float>()[c] = static_cast<float>(sgx[i] * is);
      dbias.data_ptr<float>()[c] = static_cast<float>(sg[i]);
      const double qc = -wi * is * is * sgx[i] / m;
      p[i] = static_cast<float>(wi);
      q[i] = static_cast<float>(qc);
      s[i] = static_cast<float>(-wi * sg[i] / m - qc * mp[c]);
    }
    at::Tensor dx = at::empty_like(x);
    float* dxp = dx.data_ptr<float>();
    at::parallel_for(0, M, kChunk, [&](std::int64_t lo, std::int64_t hi) {
      (avx2 ? grad_input_avx2 : grad_input_generic)(xp, gp, dxp, lo, hi, C, ap, bp, bd, p.data(), q.data(),
                                                    s.data());
    });
    return {dx, dweight, dbias, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// relu(a + b): one pass forward (read a and b, write y) where ATen makes two (add, then relu),
// and one backward (dy where y > 0, the same gradient for both inputs).
struct AddReluFunction : torch::autograd::Function<AddReluFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    at::Tensor y = at::empty_like(a);
    const float *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    at::parallel_for(0, a.numel(), 32768, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) yp[i] = std::max(ap[i] + bp[i], 0.f);
    });
    ctx->save_for_backward({y});
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const at::Tensor y = ctx->get_saved_variables()[0];
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    at::Tensor dy = grads[0];
    if (dy.strides() != y.strides()) dy = dy.contiguous(y.suggest_memory_format());
    if (dy.strides() != y.strides()) {  // not a layout the flat loop can walk: ATen
      const at::Tensor g = dy * (y > 0);
      return {g, g};
    }
    at::Tensor g = at::empty_like(y);
    const float *yp = y.data_ptr<float>(), *dp = dy.data_ptr<float>();
    float* gp = g.data_ptr<float>();
    at::parallel_for(0, y.numel(), 32768, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) gp[i] = yp[i] > 0.f ? dp[i] : 0.f;
    });
    return {g, g};
  }
};

}  // namespace

at::Tensor batch_norm_act_train(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                const at::Tensor& running_mean, const at::Tensor& running_var, double momentum,
                                double eps, BnAct act) {
  check(x, weight, bias, running_mean, running_var, true);
  return BatchNormActFunction::apply(x, weight, bias, running_mean, running_var, momentum, eps,
                                     static_cast<std::int64_t>(act));
}

at::Tensor batch_norm_act_eval(const at::Tensor& x_in, const at::Tensor& weight, const at::Tensor& bias,
                               const at::Tensor& running_mean, const at::Tensor& running_var, double eps, BnAct act) {
  SB_CHECK(!at::GradMode::is_enabled(), "batch_norm_act_eval: called with autograd enabled");
  SB_CHECK(x_in.dim() == 2 || x_in.dim() == 4, "batch_norm: input must be [N, C] or [N, C, H, W], got {} dims",
           x_in.dim());
  SB_CHECK(x_in.scalar_type() == at::kFloat && x_in.device().is_cpu(), "batch_norm: input must be an f32 CPU tensor");
  const at::Tensor x = as_rows(x_in);
  const std::int64_t C = x.size(1), M = x.numel() / C;
  for (const at::Tensor* t : {&weight, &bias, &running_mean, &running_var})
    SB_CHECK(t->defined() && t->dim() == 1 && t->size(0) == C && t->scalar_type() == at::kFloat,
             "batch_norm: weight, bias and running statistics must be defined f32 [{}] tensors", C);
  const at::Tensor w = weight.contiguous(), bi = bias.contiguous(), rm = running_mean.contiguous(),
                   rv = running_var.contiguous();
  std::vector<float> a(static_cast<std::size_t>(C)), b(a.size());
  for (std::int64_t c = 0; c < C; ++c) {
    const double is = 1.0 / std::sqrt(static_cast<double>(rv.data_ptr<float>()[c]) + eps);
    a[static_cast<std::size_t>(c)] = static_cast<float>(w.data_ptr<float>()[c] * is);
    b[static_cast<std::size_t>(c)] =
        static_cast<float>(bi.data_ptr<float>()[c] - rm.data_ptr<float>()[c] * w.data_ptr<float>()[c] * is);
  }
  at::Tensor y = at::empty_like(x);
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const Bounds bd = bounds(act);
  const bool avx2 = use_avx2();
  at::parallel_for(0, M, kChunk, [&](std::int64_t lo, std::int64_t hi) {
    (avx2 ? normalise_avx2 : normalise_generic)(xp, yp, lo, hi, C, a.data(), b.data(), bd);
  });
  return y;
}

at::Tensor batch_norm_act_reference(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                    const at::Tensor& running_mean, const at::Tensor& running_var, double momentum,
                                    double eps, BnAct act) {
  check(x, weight, bias, running_mean, running_var, false);
  const at::Tensor y = at::batch_norm(x, weight, bias, running_mean, running_var, true, momentum, eps, false);
  switch (act) {
    case BnAct::relu: return at::relu(y);
    case BnAct::relu6: return at::hardtanh(y, 0.0, 6.0);
    default: return y;
  }
}

bool add_relu_fusable(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && a.device().is_cpu() &&
         b.device().is_cpu() && a.sizes() == b.sizes() && a.strides() == b.strides() &&
         a.is_non_overlapping_and_dense() && a.numel() > 0;
}

at::Tensor add_relu(const at::Tensor& a, const at::Tensor& b) {
  SB_CHECK(add_relu_fusable(a, b), "add_relu: a {} and b {} must be f32 CPU tensors of one shape and layout",
           fmt::format("{}", a.sizes()), fmt::format("{}", b.sizes()));
  return AddReluFunction::apply(a, b);
}

}  // namespace sb::train_detail
