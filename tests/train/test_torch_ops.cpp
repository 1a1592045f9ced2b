// The bridge's hand-written autograd functions against ATen references on fresh random data:
// multi-head attention (train/torch_attention.h), forward and the gradients of q, k and v, over
// edge shapes (one token, one channel per head, one head, odd sizes) and vit_mini's own shape.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <tuple>

#include "sparsebench/core/error.h"
#include "train/torch_attention.h"

namespace sb::train_detail {
namespace {

double rel_err(const at::Tensor& got, const at::Tensor& want) {
  const double scale = std::max(1e-6, want.abs().max().item<double>());
  return (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>() / scale;
}

class Attention : public ::testing::TestWithParam<std::tuple<int, int, int, int>> {};

TEST_P(Attention, MatchesAtenForwardAndBackward) {
  const auto [b, t, c, h] = GetParam();
  torch::manual_seed(static_cast<std::uint64_t>(b * 1000 + t * 100 + c * 10 + h));
  // Reference in double (ATen's matmul and softmax), the function under test in float.
  const at::Tensor q0 = at::randn({b, t, c}, at::kDouble), k0 = at::randn({b, t, c}, at::kDouble),
                   v0 = at::randn({b, t, c}, at::kDouble), g = at::randn({b, t, c}, at::kDouble);
  auto leaf = [](const at::Tensor& x, at::ScalarType st) { return x.to(st).detach().requires_grad_(true); };
  at::Tensor q = leaf(q0, at::kFloat), k = leaf(k0, at::kFloat), v = leaf(v0, at::kFloat);
  at::Tensor qr = leaf(q0, at::kDouble), kr = leaf(k0, at::kDouble), vr = leaf(v0, at::kDouble);
  // Non-contiguous inputs too: the function must not assume the caller's layout.
  const at::Tensor out = attention(q.transpose(0, 1).contiguous().transpose(0, 1), k, v, h);
  const at::Tensor want = attention_reference(qr, kr, vr, h);
  EXPECT_LT(rel_err(out, want), 1e-5);
  (out * g.to(at::kFloat)).sum().backward();
  (want * g).sum().backward();
  EXPECT_LT(rel_err(q.grad(), qr.grad()), 1e-4) << "dq";
  EXPECT_LT(rel_err(k.grad(), kr.grad()), 1e-4) << "dk";
  EXPECT_LT(rel_err(v.grad(), vr.grad()), 1e-4) << "dv";
}

INSTANTIATE_TEST_SUITE_P(Shapes, Attention,
                         ::testing::Values(std::make_tuple(1, 1, 1, 1), std::make_tuple(2, 1, 8, 2),
                                           std::make_tuple(3, 5, 6, 6), std::make_tuple(1, 17, 96, 1),
                                           std::make_tuple(5, 17, 96, 4), std::make_tuple(4, 33, 40, 5),
                                           std::make_tuple(128, 17, 96, 4)));

TEST(Attention, RejectsBadShapes) {
  const at::Tensor x = at::randn({2, 3, 6});
  EXPECT_THROW(attention(x, x, x, 4), Error);                     // 6 channels, 4 heads
  EXPECT_THROW(attention(x, x, at::randn({2, 3, 5}), 2), Error);  // shapes differ
  EXPECT_THROW(attention(x.to(at::kDouble), x, x, 2), Error);     // dtype
}

}  // namespace
}  // namespace sb::train_detail
