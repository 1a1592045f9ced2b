// Multi-head attention as one autograd function (see torch_attention.h). The per-(sample, head)
// products are oneDNN sgemm calls on strided views of the [B, T, C] tensors (no copies), inside
// one parallel loop; the softmax rows are the runtime's (AVX-512 where the CPU has it).
#include "train/torch_attention.h"

#include <ATen/Parallel.h>
#include <dnnl.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "runtime/elementwise.h"
#include "sparsebench/core/cpu_info.h"
#include "sparsebench/core/error.h"

namespace sb::train_detail {

namespace {

// `f32_cpu`: the hand-written function's inputs; the reference takes any floating type.
void check(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::int64_t heads, bool f32_cpu) {
  SB_CHECK(q.dim() == 3, "attention: q must be [B, T, C], got {} dims", q.dim());
  SB_CHECK(!f32_cpu || (q.scalar_type() == at::kFloat && q.device().is_cpu()),
           "attention: q must be an f32 CPU tensor, got {} on {}", c10::toString(q.scalar_type()), q.device().str());
  SB_CHECK(k.sizes() == q.sizes() && v.sizes() == q.sizes() && k.scalar_type() == q.scalar_type() &&
               v.scalar_type() == q.scalar_type(),
           "attention: q, k and v must have the same shape and dtype");
  SB_CHECK(q.size(0) >= 1 && q.size(1) >= 1 && q.size(2) >= 1, "attention: empty q of shape [{}, {}, {}]", q.size(0),
           q.size(1), q.size(2));
  SB_CHECK(heads >= 1 && q.size(2) % heads == 0, "attention: {} channels are not divisible into {} heads", q.size(2),
           heads);
}

void sgemm(char ta, char tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float* c, std::int64_t ldc) {
  const dnnl_status_t st = dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.f, c, ldc);
  SB_CHECK(st == dnnl_success, "attention: dnnl_sgemm failed (status {})", static_cast<int>(st));
}

void softmax_rows(float* s, std::int64_t rows, std::int64_t n, bool avx512) {
  for (std::int64_t i = 0; i < rows; ++i) {
    float* r = s + i * n;
    if (avx512) {
      rt::softmax_row_avx512(r, n);
      continue;
    }
    const float mx = *std::max_element(r, r + n);
    float sum = 0.f;
    for (std::int64_t j = 0; j < n; ++j) sum += (r[j] = std::exp(r[j] - mx));
    const float inv = 1.f / sum;
    for (std::int64_t j = 0; j < n; ++j) r[j] *= inv;
  }
}

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct AttentionFunction : torch::autograd::Function<AttentionFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q_in, const at::Tensor& k_in,
                            const at::Tensor& v_in, std::int64_t heads) {
    const at::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const std::int64_t B = q.size(0), T = q.size(1), C = q.size(2), H = heads, D = C / H;
    at::Tensor out = at::empty({B, T, C}, q.options());
    at::Tensor p = at::empty({B, H, T, T}, q.options());  // the attention weights, kept for backward
    const float scale = 1.f / std::sqrt(static_cast<float>(D));
    const bool avx512 = max_isa() == Isa::avx512;
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    float *op = out.data_ptr<float>(), *pp = p.data_ptr<float>();
    at::parallel_for(0, B * H, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t bh = lo; bh < hi; ++bh) {
        const std::int64_t off = (bh / H) * T * C + (bh % H) * D;
        float* P = pp + bh * T * T;
        sgemm('N', 'T', T, T, D, scale, qp + off, C, kp + off, C, P, T);  // S = scale Q K^T
        softmax_rows(P, T, T, avx512);
        sgemm('N', 'N', T, D, T, 1.f, P, T, vp + off, C, op + off, C);  // O = P V
      }
    });
    ctx->save_for_backward({q, k, v, p});
    ctx->saved_data["heads"] = heads;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &p = saved[3];
    const std::int64_t H = ctx->saved_data["heads"].toInt();
    const std::int64_t B = q.size(0), T = q.size(1), C = q.size(2), D = C / H;
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const at::Tensor go = grads[0].contiguous();
    at::Tensor dq = at::empty_like(q), dk = at::empty_like(k), dv = at::empty_like(v);
    const float scale = 1.f / std::sqrt(static_cast<float>(D));
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>(),
                *pp = p.data_ptr<float>(), *gp = go.data_ptr<float>();
    float *dqp = dq.data_ptr<float>(), *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
    at::parallel_for(0, B * H, 1, [&](std::int64_t lo, std::int64_t hi) {
      std::vector<float> ds(static_cast<std::size_t>(T * T));
      for (std::int64_t bh = lo; bh < hi; ++bh) {
        const std::int64_t off = (bh / H) * T * C + (bh % H) * D;
        const float* P = pp + bh * T * T;
        sgemm('T', 'N', T, D, T, 1.f, P, T, gp + off, C, dvp + off, C);           // dV = P^T dO
        sgemm('N', 'T', T, T, D, 1.f, gp + off, C, vp + off, C, ds.data(), T);    // dP = dO V^T
        for (std::int64_t i = 0; i < T; ++i) {                                    // dS = P (dP - <P, dP>)
          const float* pi = P + i * T;
          float* di = ds.data() + i * T;
          float dot = 0.f;
          for (std::int64_t j = 0; j < T; ++j) dot += pi[j] * di[j];
          for (std::int64_t j = 0; j < T; ++j) di[j] = pi[j] * (di[j] - dot) * scale;
        }
        sgemm('N', 'N', T, D, T, 1.f, ds.data(), T, kp + off, C, dqp + off, C);  // dQ = dS K
        sgemm('T', 'N', T, D, T, 1.f, ds.data(), T, qp + off, C, dkp + off, C);  // dK = dS^T Q
      }
    });
    return {dq, dk, dv, at::Tensor()};
  }
};

}  // namespace

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::int64_t heads) {
  check(q, k, v, heads, true);
  return AttentionFunction::apply(q, k, v, heads);
}

at::Tensor attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::int64_t heads) {
  check(q, k, v, heads, false);
  const std::int64_t b = q.size(0), t = q.size(1), c = q.size(2), h = heads, d = c / h;
  auto split = [&](const at::Tensor& x) { return x.reshape({b, t, h, d}).transpose(1, 2); };
  const at::Tensor s = at::matmul(split(q), split(k).transpose(-2, -1)) / std::sqrt(static_cast<double>(d));
  return at::matmul(at::softmax(s, -1), split(v)).transpose(1, 2).reshape({b, t, c});
}

}  // namespace sb::train_detail
