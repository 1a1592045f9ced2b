// The bridge's hand-written autograd functions against ATen references on fresh random data:
// multi-head attention (train/torch_attention.h), forward and the gradients of q, k and v, over
// edge shapes (one token, one channel per head, one head, odd sizes) and vit_mini's own shape;
// training-mode BatchNorm fused with ReLU/ReLU6 (train/torch_batchnorm.h): output, running
// statistics and the gradients of input, weight and bias, over edge shapes and both layouts; the
// residual add fused with its ReLU;
// the fused optimizer updates (train/optim.h) against their formulas in double; linear layers
// (oneDNN sgemm), GELU (AVX-512 erf) and LayerNorm with their gradients (train/torch_linear.h);
// the module's fast training path (channels-last, fused BatchNorm, these functions) against its
// plain ATen path on whole zoo models, gradients included.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <tuple>

#include "sparsebench/core/error.h"
#include "sparsebench/models/zoo.h"
#include "train/torch_attention.h"
#include "train/torch_batchnorm.h"
#include "train/optim.h"
#include "train/torch_linear.h"
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

// Linear: y = x w^T + b over the last dimension, against ATen in double; 2-D and 3-D inputs, one
// row, one input or output feature, odd sizes, vit_mini's shape, with and without bias.
class Linear : public ::testing::TestWithParam<std::tuple<std::vector<std::int64_t>, int, bool>> {};

TEST_P(Linear, MatchesAtenForwardAndBackward) {
  const auto [xshape, n, with_bias] = GetParam();
  torch::manual_seed(static_cast<std::uint64_t>(xshape.back() * 100 + n));
  const std::int64_t k = xshape.back();
  const at::Tensor x0 = at::randn(xshape, at::kDouble), w0 = at::randn({n, k}, at::kDouble),
                   b0 = at::randn({n}, at::kDouble);
  auto leaf = [](const at::Tensor& t, at::ScalarType st) { return t.to(st).detach().requires_grad_(true); };
  at::Tensor x = leaf(x0, at::kFloat), w = leaf(w0, at::kFloat), b = leaf(b0, at::kFloat);
  at::Tensor xr = leaf(x0, at::kDouble), wr = leaf(w0, at::kDouble), br = leaf(b0, at::kDouble);
  const at::Tensor out = linear(x, w, with_bias ? b : at::Tensor());
  const at::Tensor want = at::linear(xr, wr, with_bias ? br : at::Tensor());
  ASSERT_EQ(out.sizes(), want.sizes());
  EXPECT_LT(rel_err(out, want), 1e-5);
  const at::Tensor g = at::randn(want.sizes(), at::kDouble);
  (out * g.to(at::kFloat)).sum().backward();
  (want * g).sum().backward();
  EXPECT_LT(rel_err(x.grad(), xr.grad()), 1e-5) << "dx";
  EXPECT_LT(rel_err(w.grad(), wr.grad()), 1e-5) << "dw";
  if (with_bias) EXPECT_LT(rel_err(b.grad(), br.grad()), 1e-5) << "db";
  else EXPECT_FALSE(b.grad().defined());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Linear,
    ::testing::Values(std::make_tuple(std::vector<std::int64_t>{1, 1}, 1, true),
                      std::make_tuple(std::vector<std::int64_t>{1, 7}, 3, false),
                      std::make_tuple(std::vector<std::int64_t>{5, 1}, 9, true),
                      std::make_tuple(std::vector<std::int64_t>{13, 31}, 17, true),
                      std::make_tuple(std::vector<std::int64_t>{3, 5, 6}, 1, true),
                      std::make_tuple(std::vector<std::int64_t>{128, 17, 96}, 288, true),
                      std::make_tuple(std::vector<std::int64_t>{64, 784}, 256, false)));

TEST(Linear, RejectsBadInput) {
  const at::Tensor x = at::randn({4, 6}), w = at::randn({3, 6});
  EXPECT_THROW(linear(x, at::randn({3, 5}), at::Tensor()), Error);        // K differs
  EXPECT_THROW(linear(x, w, at::randn({4})), Error);                      // bias size
  EXPECT_THROW(linear(x.to(at::kDouble), w, at::Tensor()), Error);        // dtype
  EXPECT_THROW(linear(x, at::randn({3, 6, 1}), at::Tensor()), Error);     // weight rank
}

// LayerNorm over the last dimension against ATen in double: one value per row, one row, odd
// widths, more rows than one gradient block (128), vit_mini's shape.
class LayerNorm : public ::testing::TestWithParam<std::vector<std::int64_t>> {};

TEST_P(LayerNorm, MatchesAtenForwardAndBackward) {
  const std::vector<std::int64_t> shape = GetParam();
  const std::int64_t c = shape.back();
  torch::manual_seed(static_cast<std::uint64_t>(c * 31 + static_cast<std::int64_t>(shape.size())));
  const at::Tensor x0 = at::randn(shape, at::kDouble) * 2 + 0.5, w0 = at::randn({c}, at::kDouble),
                   b0 = at::randn({c}, at::kDouble);
  auto leaf = [](const at::Tensor& t, at::ScalarType st) { return t.to(st).detach().requires_grad_(true); };
  at::Tensor x = leaf(x0, at::kFloat), w = leaf(w0, at::kFloat), b = leaf(b0, at::kFloat);
  at::Tensor xr = leaf(x0, at::kDouble), wr = leaf(w0, at::kDouble), br = leaf(b0, at::kDouble);
  const at::Tensor out = train_detail::layer_norm(x, w, b, 1e-5);
  const at::Tensor want = at::layer_norm(xr, {c}, wr, br, 1e-5);
  EXPECT_LT(rel_err(out, want), 1e-5);
  const at::Tensor g = at::randn(want.sizes(), at::kDouble);
  (out * g.to(at::kFloat)).sum().backward();
  (want * g).sum().backward();
  // With one value per row the input gradient is zero up to rounding: compare absolutely there.
  if (c > 1) EXPECT_LT(rel_err(x.grad(), xr.grad()), 1e-4) << "dx";
  else EXPECT_LT(x.grad().abs().max().item<double>(), 1e-3) << "dx";
  EXPECT_LT(rel_err(w.grad(), wr.grad()), 1e-4) << "dw";
  EXPECT_LT(rel_err(b.grad(), br.grad()), 1e-5) << "db";
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerNorm,
                         ::testing::Values(std::vector<std::int64_t>{1, 1}, std::vector<std::int64_t>{3, 1},
                                           std::vector<std::int64_t>{1, 9}, std::vector<std::int64_t>{5, 7},
                                           std::vector<std::int64_t>{300, 33},
                                           std::vector<std::int64_t>{128, 17, 96}));

TEST(LayerNorm, RejectsBadInput) {
  const at::Tensor x = at::randn({4, 6});
  EXPECT_THROW(train_detail::layer_norm(x, at::ones({5}), at::zeros({6}), 1e-5), Error);
  EXPECT_THROW(train_detail::layer_norm(x, at::ones({6}), at::zeros({6}), 0.0), Error);
  EXPECT_THROW(train_detail::layer_norm(x.to(at::kDouble), at::ones({6}), at::zeros({6}), 1e-5), Error);
}

TEST(Gelu, MatchesAtenForwardAndBackward) {
  if (!gelu_available()) GTEST_SKIP() << "the hand-written GELU needs AVX-512; this CPU (or SB_ISA) has none";
  torch::manual_seed(3);
  // Every regime of erf: around 0, the tails (|x| > 6, where GELU is x or 0), and sizes that are not
  // a multiple of the vector width or of the parallel grain.
  for (std::int64_t n : {1, 15, 17, 16384 + 5, 2176 * 192}) {
    const at::Tensor x0 = at::cat({at::randn({n}, at::kDouble) * 3, at::tensor({0.0, -0.0, 6.5, -6.5, 12.0, -12.0}, at::kDouble)});
    at::Tensor x = x0.to(at::kFloat).detach().requires_grad_(true), xr = x0.detach().requires_grad_(true);
    const at::Tensor out = train_detail::gelu(x), want = at::gelu(xr);
    // Absolute error: A&S 7.1.26's erf is within 1.5e-7, scaled by |x| / 2 in GELU.
    EXPECT_LT((out.to(at::kDouble) - want).abs().max().item<double>(), 2e-6) << n;
    const at::Tensor g = at::randn(want.sizes(), at::kDouble);
    (out * g.to(at::kFloat)).sum().backward();
    (want * g).sum().backward();
    EXPECT_LT(((x.grad().to(at::kDouble) - xr.grad()).abs() / g.abs().clamp_min(1.0)).max().item<double>(), 2e-6) << n;
  }
}

// SGD (Nesterov) and AdamW in one pass, against the formulas in double, masked and not, over
// sizes below, at and above the parallel grain; masked entries end exactly zero.
TEST(Optim, MatchesTheFormulas) {
  for (std::int64_t n : {1, 17, 40000}) {
    for (bool masked : {false, true}) {
      torch::manual_seed(static_cast<std::uint64_t>(n + masked));
      const at::Tensor w0 = at::randn({n}), g0 = at::randn({n}), m0 = at::randn({n}) * 0.1, v0 = at::rand({n}) * 0.01;
      const at::Tensor mask = masked ? (at::rand({n}) > 0.5).to(at::kFloat) : at::Tensor();
      const float* mp = masked ? mask.data_ptr<float>() : nullptr;
      const at::Tensor mk = masked ? mask.to(at::kDouble) : at::ones({n}, at::kDouble);
      auto d = [](const at::Tensor& t) { return t.to(at::kDouble); };
      {  // SGD
        at::Tensor w = w0.clone(), g = g0.clone(), m = m0.clone();
        sgd_step(w.data_ptr<float>(), g.data_ptr<float>(), m.data_ptr<float>(), mp, n, 0.05f, 5e-4f, 0.9f);
        const at::Tensor gr = d(g0) * mk + 5e-4 * d(w0), mr = 0.9 * d(m0) + gr;
        const at::Tensor wr = (d(w0) - 0.05 * (gr + 0.9 * mr)) * mk;
        EXPECT_LT(rel_err(w, wr), 1e-6) << "sgd w, n " << n;
        EXPECT_LT(rel_err(m, mr * mk), 1e-6) << "sgd m, n " << n;
        if (masked) EXPECT_EQ(w.masked_select(mask == 0).abs().sum().item<float>(), 0.f);
      }
      {  // AdamW at step 3
        at::Tensor w = w0.clone(), g = g0.clone(), m = m0.clone(), v = v0.clone();
        const double b1 = 0.9, b2 = 0.999, c1 = 1 - std::pow(b1, 3), c2 = 1 - std::pow(b2, 3);
        adamw_step(w.data_ptr<float>(), g.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), mp, n, 2e-3f,
                   0.05f, 0.9f, 0.999f, static_cast<float>(c1), static_cast<float>(c2), 1e-8f);
        const at::Tensor gr = d(g0) * mk, mr = b1 * d(m0) + (1 - b1) * gr, vr = b2 * d(v0) + (1 - b2) * gr * gr;
        const at::Tensor wr = (d(w0) * (1 - 2e-3 * 0.05) - (2e-3 / c1) * mr / ((vr / c2).sqrt() + 1e-8)) * mk;
        EXPECT_LT(rel_err(w, wr), 1e-5) << "adamw w, n " << n;
        EXPECT_LT(rel_err(v, vr * mk), 1e-5) << "adamw v, n " << n;
        if (masked) EXPECT_EQ(m.masked_select(mask == 0).abs().sum().item<float>(), 0.f);
      }
    }
  }
}

// relu(a + b) in one function against ATen in double, NCHW and channels-last, odd sizes; both
// inputs get the gradient.
TEST(AddRelu, MatchesAtenForwardAndBackward) {
  torch::manual_seed(9);
  for (const std::vector<std::int64_t>& shape : std::vector<std::vector<std::int64_t>>{{1}, {3, 5}, {2, 3, 5, 7}, {128, 16, 28, 28}}) {
    for (bool cl : {false, true}) {
      if (cl && shape.size() != 4) continue;
      const at::Tensor a0 = at::randn(shape, at::kDouble), b0 = at::randn(shape, at::kDouble);
      auto leaf = [&](const at::Tensor& t, at::ScalarType st) {
        at::Tensor u = t.to(st);
        if (cl) u = u.contiguous(at::MemoryFormat::ChannelsLast);
        return u.detach().requires_grad_(true);
      };
      at::Tensor a = leaf(a0, at::kFloat), b = leaf(b0, at::kFloat), ar = leaf(a0, at::kDouble), br = leaf(b0, at::kDouble);
      ASSERT_TRUE(add_relu_fusable(a, b));
      const at::Tensor out = add_relu(a, b), want = at::relu(ar + br);
      EXPECT_LT(rel_err(out, want), 1e-6);
      if (cl) EXPECT_TRUE(out.is_contiguous(at::MemoryFormat::ChannelsLast));
      const at::Tensor g = at::randn(want.sizes(), at::kDouble);
      (out * g.to(at::kFloat)).sum().backward();
      (want * g).sum().backward();
      EXPECT_LT(rel_err(a.grad(), ar.grad()), 1e-6) << "da";
      EXPECT_LT(rel_err(b.grad(), br.grad()), 1e-6) << "db";
    }
  }
  const at::Tensor x = at::randn({2, 3, 4, 5});
  EXPECT_FALSE(add_relu_fusable(x, x.contiguous(at::MemoryFormat::ChannelsLast)));  // layouts differ
  EXPECT_FALSE(add_relu_fusable(x, at::randn({2, 3, 4, 4})));                       // shapes differ
  EXPECT_THROW(add_relu(x, x.to(at::kDouble)), Error);
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

INSTANTIATE_TEST_SUITE_P(Zoo, FastTraining, ::testing::Values("mlp", "lenet5", "resnet_mini", "mobilenet_mini", "vit_mini"));

}  // namespace
}  // namespace sb::train_detail
