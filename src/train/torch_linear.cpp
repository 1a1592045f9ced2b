// Linear layers and GELU as autograd functions (see torch_linear.h).
#include "train/torch_linear.h"

#include <ATen/Parallel.h>
#include <dnnl.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "runtime/elementwise.h"
#include "sparsebench/core/cpu_info.h"
#include "sparsebench/core/error.h"

namespace sb::train_detail {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Row-major C = op(A) op(B) + beta C (dnnl_sgemm's convention), threads as ATen's (OpenMP).
void sgemm(char ta, char tb, std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda,
           const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  const dnnl_status_t st = dnnl_sgemm(ta, tb, m, n, k, 1.f, a, lda, b, ldb, beta, c, ldc);
  SB_CHECK(st == dnnl_success, "linear: dnnl_sgemm failed (status {})", static_cast<int>(st));
}

struct LinearFunction : torch::autograd::Function<LinearFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w_in,
                            const at::Tensor& b_in) {
    const std::int64_t K = x_in.size(-1), N = w_in.size(0), M = x_in.numel() / K;
    const at::Tensor x = x_in.reshape({M, K}).contiguous(), w = w_in.contiguous();
    at::Tensor y = at::empty({M, N}, x.options());
    float* yp = y.data_ptr<float>();
    const bool bias = b_in.numel() > 0;  // an empty tensor stands for no bias (see linear())
    if (bias) {
      const at::Tensor b = b_in.contiguous();
      const float* bp = b.data_ptr<float>();
      at::parallel_for(0, M, 256, [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t i = lo; i < hi; ++i) std::copy(bp, bp + N, yp + i * N);
      });
    }
    if (M > 0 && N > 0) sgemm('N', 'T', M, N, K, x.data_ptr<float>(), K, w.data_ptr<float>(), K, bias ? 1.f : 0.f, yp, N);
    ctx->save_for_backward({x, w});
    ctx->saved_data["bias"] = bias;
    std::vector<std::int64_t> shape = x_in.sizes().vec();
    shape.back() = N;
    return y.view(shape);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    const std::int64_t M = x.size(0), K = x.size(1), N = w.size(0);
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    const at::Tensor dy = grads[0].reshape({M, N}).contiguous();
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      dx = at::empty({M, K}, x.options());
      if (M > 0) sgemm('N', 'N', M, K, N, dy.data_ptr<float>(), N, w.data_ptr<float>(), K, 0.f, dx.data_ptr<float>(), K);
    }
    if (ctx->needs_input_grad(1)) {
      dw = at::empty({N, K}, w.options());
      if (M > 0) sgemm('T', 'N', N, K, M, dy.data_ptr<float>(), N, x.data_ptr<float>(), K, 0.f, dw.data_ptr<float>(), K);
      else dw.zero_();
    }
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) db = dy.sum(0);
    std::vector<std::int64_t> shape = grads[0].sizes().vec();
    shape.back() = K;
    return {dx.defined() ? dx.view(shape) : dx, dw, db};
  }
};

constexpr std::int64_t kGeluGrain = 16384;  // values per task: a few microseconds of work

struct GeluFunction : torch::autograd::Function<GeluFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in) {
    const at::Tensor x = x_in.contiguous();
    at::Tensor y = at::empty_like(x);
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    at::parallel_for(0, x.numel(), kGeluGrain, [&](std::int64_t lo, std::int64_t hi) {
      rt::gelu_avx512(xp + lo, yp + lo, hi - lo);
    });
    ctx->save_for_backward({x});
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    if (!grads[0].defined()) return {at::Tensor()};
    const at::Tensor dy = grads[0].contiguous();
    at::Tensor dx = at::empty_like(x);
    const float *xp = x.data_ptr<float>(), *dyp = dy.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    at::parallel_for(0, x.numel(), kGeluGrain, [&](std::int64_t lo, std::int64_t hi) {
      rt::gelu_backward_avx512(xp + lo, dyp + lo, dxp + lo, hi - lo);
    });
    return {dx};
  }
};

constexpr std::int64_t kLnBlock = 128;  // rows per block of the w / b gradient sums

struct LayerNormFunction : torch::autograd::Function<LayerNormFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w_in,
                            const at::Tensor& b_in, double eps) {
    const std::int64_t C = x_in.size(-1), R = x_in.numel() / C;
    const at::Tensor x = x_in.contiguous(), w = w_in.contiguous(), b = b_in.contiguous();
    at::Tensor y = at::empty_like(x), mean = at::empty({R}, x.options()), rstd = at::empty({R}, x.options());
    const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>(), *bp = b.data_ptr<float>();
    float *yp = y.data_ptr<float>(), *mp = mean.data_ptr<float>(), *rp = rstd.data_ptr<float>();
    at::parallel_for(0, R, 64, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t r = lo; r < hi; ++r) {
        const float* xr = xp + r * C;
        float s = 0.f;
        for (std::int64_t j = 0; j < C; ++j) s += xr[j];
        const float mu = s / static_cast<float>(C);
        float q = 0.f;
        for (std::int64_t j = 0; j < C; ++j) q += (xr[j] - mu) * (xr[j] - mu);
        const float rs = 1.f / std::sqrt(q / static_cast<float>(C) + static_cast<float>(eps));
        float* yr = yp + r * C;
        for (std::int64_t j = 0; j < C; ++j) yr[j] = (xr[j] - mu) * rs * wp[j] + bp[j];
        mp[r] = mu;
        rp[r] = rs;
      }
    });
    ctx->save_for_backward({x, w, mean, rstd});
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &mean = saved[2], &rstd = saved[3];
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const at::Tensor dy = grads[0].contiguous();
    const std::int64_t C = x.size(-1), R = x.numel() / C, blocks = (R + kLnBlock - 1) / kLnBlock;
    at::Tensor dx = at::empty_like(x), part = at::zeros({blocks, 2, C}, x.options());
    const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>(), *mp = mean.data_ptr<float>(),
                *rp = rstd.data_ptr<float>(), *gp = dy.data_ptr<float>();
    float *dxp = dx.data_ptr<float>(), *pp = part.data_ptr<float>();
    at::parallel_for(0, blocks, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t blk = lo; blk < hi; ++blk) {
        float *dw = pp + blk * 2 * C, *db = dw + C;
        for (std::int64_t r = blk * kLnBlock; r < std::min(R, (blk + 1) * kLnBlock); ++r) {
          const float *xr = xp + r * C, *gr = gp + r * C;
          const float mu = mp[r], rs = rp[r];
          float a = 0.f, c = 0.f;  // sums of dxhat and dxhat * xhat
          for (std::int64_t j = 0; j < C; ++j) {
            const float xh = (xr[j] - mu) * rs, dxh = gr[j] * wp[j];
            a += dxh;
            c += dxh * xh;
            dw[j] += gr[j] * xh;
            db[j] += gr[j];
          }
          a /= static_cast<float>(C);
          c /= static_cast<float>(C);
          float* dxr = dxp + r * C;
          for (std::int64_t j = 0; j < C; ++j) dxr[j] = rs * (gr[j] * wp[j] - a - (xr[j] - mu) * rs * c);
        }
      }
    });
    const at::Tensor sums = part.sum(0);  // [2, C], over the blocks in order
    return {dx, sums[0].clone(), sums[1].clone(), at::Tensor()};
  }
};

void check_f32(const at::Tensor& t, const char* what) {
  SB_CHECK(t.scalar_type() == at::kFloat && t.device().is_cpu(), "{} must be an f32 CPU tensor, got {} on {}", what,
           c10::toString(t.scalar_type()), t.device().str());
}

}  // namespace

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  check_f32(x, "linear: x");
  check_f32(w, "linear: weight");
  SB_CHECK(x.dim() >= 1 && w.dim() == 2 && x.size(-1) == w.size(1),
           "linear: x [..., {}] does not match a weight of shape [{}, {}]", x.dim() ? x.size(-1) : 0,
           w.dim() == 2 ? w.size(0) : -1, w.dim() == 2 ? w.size(1) : -1);
  if (b.defined()) {
    check_f32(b, "linear: bias");
    SB_CHECK(b.dim() == 1 && b.size(0) == w.size(0), "linear: bias of {} values for {} outputs", b.numel(), w.size(0));
  }
  // libtorch 1.13's custom functions reject undefined tensor arguments: no bias is an empty one.
  return LinearFunction::apply(x, w, b.defined() ? b : at::empty({0}, w.options()));
}

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps) {
  check_f32(x, "layer_norm: x");
  check_f32(w, "layer_norm: weight");
  check_f32(b, "layer_norm: bias");
  SB_CHECK(x.dim() >= 1 && x.size(-1) >= 1 && w.dim() == 1 && b.dim() == 1 && w.size(0) == x.size(-1) &&
               b.size(0) == x.size(-1),
           "layer_norm: x [..., {}] needs a weight and a bias of {} values, got {} and {}", x.dim() ? x.size(-1) : 0,
           x.dim() ? x.size(-1) : 0, w.numel(), b.numel());
  SB_CHECK(eps > 0, "layer_norm: eps {} must be positive", eps);
  return LayerNormFunction::apply(x, w, b, eps);
}

bool gelu_available() { return max_isa() == Isa::avx512; }  // honours SB_ISA

at::Tensor gelu(const at::Tensor& x) {
  check_f32(x, "gelu: x");
  SB_CHECK(gelu_available(), "gelu: the hand-written GELU needs AVX-512 (use at::gelu)");
  return GeluFunction::apply(x);
}

}  // namespace sb::train_detail
