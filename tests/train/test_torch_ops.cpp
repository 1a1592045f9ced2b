// The bridge's hand-written autograd functions against ATen references on fresh random data:
// multi-head attention (train/torch_attention.h), forward and the gradients of q, k and v, over
// edge shapes (one token, one channel per head, one head, odd sizes) and vit_mini's own shape;
// training-mode BatchNorm fused with ReLU/ReLU6 (train/torch_batchnorm.h): output, running
// statistics and the gradients of input, weight and bias, over edge shapes and both layouts; and
// the module's fast training path (channels-last, fused BatchNorm) against its plain ATen path on
// whole zoo models, gradients included.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <tuple>

#include "sparsebench/core/error.h"
#include "sparsebench/models/zoo.h"
#include "train/torch_attention.h"
#include "train/torch_batchnorm.h"
#include "train/torch_module.h"

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

// (N, C, H, W; H = 0 means a 2-D [N, C] input), activation, channels-last input.
class BatchNormAct : public ::testing::TestWithParam<std::tuple<int, int, int, int, BnAct, bool>> {};

TEST_P(BatchNormAct, MatchesAtenForwardBackwardAndRunningStats) {
  const auto [n, c, h, w, act, cl] = GetParam();
  torch::manual_seed(static_cast<std::uint64_t>(n * 7919 + c * 131 + h * 17 + w * 3 + static_cast<int>(act)));
  const std::vector<std::int64_t> shape = h > 0 ? std::vector<std::int64_t>{n, c, h, w} : std::vector<std::int64_t>{n, c};
  // An offset mean (|mean| >> std) checks the variance for cancellation.
  const at::Tensor x0 = at::randn(shape, at::kDouble) * 0.5 + 3.0, g = at::randn(shape, at::kDouble);
  const at::Tensor w0 = at::randn({c}, at::kDouble) + 1.0, b0 = at::randn({c}, at::kDouble) + 2.5;
  auto leaf = [](const at::Tensor& t, at::ScalarType st) { return t.to(st).detach().requires_grad_(true); };
  at::Tensor x = leaf(x0, at::kFloat), wt = leaf(w0, at::kFloat), bs = leaf(b0, at::kFloat);
  at::Tensor xr = leaf(x0, at::kDouble), wr = leaf(w0, at::kDouble), br = leaf(b0, at::kDouble);
  at::Tensor rm = at::randn({c}), rv = at::rand({c}) + 0.5;
  at::Tensor rmr = rm.to(at::kDouble), rvr = rv.to(at::kDouble);
  const at::Tensor xin = cl && h > 0 ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
  const at::Tensor out = batch_norm_act_train(xin, wt, bs, rm, rv, 0.1, 1e-5, act);
  const at::Tensor want = batch_norm_act_reference(xr, wr, br, rmr, rvr, 0.1, 1e-5, act);
  EXPECT_LT(rel_err(out, want), 1e-5);
  EXPECT_LT(rel_err(rm, rmr), 1e-5) << "running_mean";
  EXPECT_LT(rel_err(rv, rvr), 1e-5) << "running_var";
  (out * g.to(at::kFloat)).sum().backward();
  (want * g).sum().backward();
  EXPECT_LT(rel_err(x.grad(), xr.grad()), 1e-4) << "dx";
  EXPECT_LT(rel_err(wt.grad(), wr.grad()), 1e-4) << "dweight";
  EXPECT_LT(rel_err(bs.grad(), br.grad()), 1e-4) << "dbias";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, BatchNormAct,
    // Three rows at least: with two, BatchNorm maps each pair to +-1 and dx is rounding noise.
    ::testing::Values(std::make_tuple(3, 1, 0, 0, BnAct::none, false), std::make_tuple(7, 3, 0, 0, BnAct::relu, false),
                      std::make_tuple(3, 1, 1, 1, BnAct::relu6, false), std::make_tuple(1, 5, 3, 3, BnAct::relu, true),
                      std::make_tuple(4, 17, 5, 7, BnAct::relu6, false), std::make_tuple(4, 17, 5, 7, BnAct::relu6, true),
                      std::make_tuple(3, 33, 9, 9, BnAct::none, true), std::make_tuple(16, 64, 14, 14, BnAct::relu, true),
                      // More rows than one chunk of the partial sums, not a multiple of it.
                      std::make_tuple(9, 24, 31, 29, BnAct::relu6, true)));

TEST(BatchNormAct, EvalMatchesAten) {
  torch::manual_seed(5);
  const at::Tensor x = at::randn({5, 19, 6, 7}) * 2 + 1, w = at::randn({19}), b = at::randn({19}),
                   rm = at::randn({19}), rv = at::rand({19}) + 0.1;
  EXPECT_THROW(batch_norm_act_eval(x, w, b, rm, rv, 1e-5, BnAct::none), Error);  // autograd on
  at::NoGradGuard no_grad;
  for (BnAct act : {BnAct::none, BnAct::relu, BnAct::relu6}) {
    at::Tensor y = at::batch_norm(x.to(at::kDouble), w.to(at::kDouble), b.to(at::kDouble), rm.to(at::kDouble),
                                  rv.to(at::kDouble), false, 0.1, 1e-5, false);
    y = act == BnAct::relu ? at::relu(y) : act == BnAct::relu6 ? at::hardtanh(y, 0.0, 6.0) : y;
    EXPECT_LT(rel_err(batch_norm_act_eval(x, w, b, rm, rv, 1e-5, act), y), 1e-5);
    EXPECT_LT(rel_err(batch_norm_act_eval(x.contiguous(at::MemoryFormat::ChannelsLast), w, b, rm, rv, 1e-5, act), y),
              1e-5);
  }
}

TEST(BatchNormAct, RejectsBadInput) {
  const at::Tensor w = at::ones({4}), b = at::zeros({4}), rm = at::zeros({4}), rv = at::ones({4});
  EXPECT_THROW(batch_norm_act_train(at::randn({1, 4}), w, b, rm, rv, 0.1, 1e-5, BnAct::none), Error);  // one row
  EXPECT_THROW(batch_norm_act_train(at::randn({2, 5}), w, b, rm, rv, 0.1, 1e-5, BnAct::none), Error);  // channels
  EXPECT_THROW(batch_norm_act_train(at::randn({2, 4, 3}), w, b, rm, rv, 0.1, 1e-5, BnAct::none), Error);  // rank
  EXPECT_THROW(batch_norm_act_train(at::randn({2, 4}, at::kDouble), w, b, rm, rv, 0.1, 1e-5, BnAct::none), Error);
}

// The trainer's fast path (channels-last convolutions, fused BatchNorm+activation) computes the
// same function as the plain ATen path: a training step's loss, every parameter's gradient and the
// running statistics agree.
class FastTraining : public ::testing::TestWithParam<std::string> {};

TEST_P(FastTraining, MatchesPlainAtenPath) {
  ModelOptions mo;
  mo.batch = 8;
  const Graph graph = build_model(GetParam(), mo);
  torch::manual_seed(11);
  const at::Tensor x = at::randn({8, 1, 28, 28});
  const at::Tensor y = at::randint(0, 10, {8}, at::kLong);
  TorchModule plain(graph), fast(graph);
  fast.set_fast_training(true);
  auto step = [&](TorchModule& m) {
    const at::Tensor loss = at::cross_entropy_loss(m.forward({x}, true)[0], y);
    loss.backward();
    return loss.item<double>();
  };
  EXPECT_NEAR(step(fast), step(plain), 1e-5);
  ASSERT_EQ(fast.params().size(), plain.params().size());
  // A conv bias feeding a BatchNorm has a zero gradient up to rounding: errors are measured
  // against the larger of the parameter's own gradient and 1e-3 of the largest one in the model.
  double largest = 0;
  for (const TorchParam& p : plain.params())
    if (p.trainable) largest = std::max(largest, p.value.grad().abs().max().item<double>());
  for (std::size_t i = 0; i < plain.params().size(); ++i) {
    const TorchParam &p = plain.params()[i], &f = fast.params()[i];
    if (p.trainable) {
      ASSERT_TRUE(f.value.grad().defined()) << p.name();
      const double scale = std::max(p.value.grad().abs().max().item<double>(), 1e-3 * largest);
      EXPECT_LT((f.value.grad() - p.value.grad()).abs().max().item<double>() / scale, 1e-3) << p.name();
    } else {
      EXPECT_LT(rel_err(f.value, p.value), 1e-5) << p.name();
    }
  }
  // Evaluation mode is untouched by the fast path.
  at::NoGradGuard no_grad;
  EXPECT_LT(rel_err(fast.forward({x}, false)[0], plain.forward({x}, false)[0]), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Zoo, FastTraining, ::testing::Values("lenet5", "resnet_mini", "mobilenet_mini", "vit_mini"));

}  // namespace
}  // namespace sb::train_detail
