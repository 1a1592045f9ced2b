#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "sparsebench/core/error.h"
#include "sparsebench/core/rng.h"
#include "sparsebench/prune/allocation.h"
#include "sparsebench/prune/mask.h"

using namespace sb;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_ERROR(stmt, text)                              \
  do {                                                        \
    const std::string msg_ = error_of([&] { (void)(stmt); }); \
    EXPECT_NE(msg_.find(text), std::string::npos) << msg_;    \
  } while (0)

Tensor random_weight(const Shape& shape, std::uint64_t seed, float stddev = 1.f) {
  Tensor w = Tensor::empty(shape);
  Rng rng(seed);
  rng.fill_normal(w, 0.f, stddev);
  return w;
}

// Kept prunable parameters for per-layer sparsities `s` (unrounded).
double kept_params(const std::vector<LayerInfo>& layers, const std::vector<double>& s) {
  double kept = 0;
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (layers[i].prunable) kept += (1.0 - s[i]) * double(shape_numel(layers[i].shape));
  return kept;
}

double prunable_params(const std::vector<LayerInfo>& layers) {
  double n = 0;
  for (const auto& l : layers)
    if (l.prunable) n += double(shape_numel(l.shape));
  return n;
}

// conv1 [4, 2, 3, 3]: sum 12, prod 72, raw 1/6; fc1 [8, 16]: 24 / 128 = 3/16;
// fc2 [2, 8]: 10 / 16 = 5/8; head: not prunable.
const std::vector<LayerInfo> kToy = {
    {"conv1", {4, 2, 3, 3}, true},
    {"fc1", {8, 16}, true},
    {"fc2", {2, 8}, true},
    {"head", {10, 2}, false},
};

}  // namespace

TEST(MaskAllocation, ParseAndName) {
  for (Allocation a : {Allocation::uniform, Allocation::global, Allocation::erk})
    EXPECT_EQ(parse_allocation(allocation_name(a)), a);
  EXPECT_STREQ(allocation_name(Allocation::erk), "erk");
  EXPECT_ERROR(parse_allocation("ERK"), "unknown allocation 'ERK': expected uniform | global | erk");
  EXPECT_ERROR(parse_allocation(""), "unknown allocation '': expected uniform | global | erk");
}

TEST(MaskAllocation, ErkToyModelByHand) {
  // Target 0.5 keeps 108 of the 216 prunable parameters. First eps = 108 / (12 + 24 + 10) = 2.348:
  // fc2 would reach density 1.47 > 1, so it is dense (16 kept). Re-solved over conv1 and fc1:
  // eps = (108 - 16) / (12 + 24) = 23/9, conv1 density 23/54, fc1 density 23/48.
  const auto s = allocate_sparsity(kToy, 0.5, Allocation::erk);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_NEAR(s[0], 31.0 / 54.0, 1e-12);
  EXPECT_NEAR(s[1], 25.0 / 48.0, 1e-12);
  EXPECT_EQ(s[2], 0.0);
  EXPECT_EQ(s[3], 0.0);
  EXPECT_NEAR(kept_params(kToy, s), 108.0, 1e-9);
  // Target 0.1 keeps 194.4: fc2 is dense again (eps = 194.4 / 46 = 4.23, 4.23 * 5/8 > 1), then
  // eps = (194.4 - 16) / 36 = 4.9556: conv1 density 0.8259 (sparsity 0.1741), fc1 0.9292 (0.0708).
  const auto t = allocate_sparsity(kToy, 0.1, Allocation::erk);
  const double eps = (0.9 * 216.0 - 16.0) / 36.0;
  EXPECT_NEAR(t[0], 1.0 - eps / 6.0, 1e-12);
  EXPECT_NEAR(t[0], 0.174074, 1e-6);
  EXPECT_NEAR(t[1], 1.0 - eps * 3.0 / 16.0, 1e-12);
  EXPECT_NEAR(t[1], 0.070833, 1e-6);
  EXPECT_EQ(t[2], 0.0);
  EXPECT_NEAR(kept_params(kToy, t), 0.9 * 216.0, 1e-9);
}

TEST(MaskAllocation, ErkMeetsTheTargetOnAConvNet) {
  const std::vector<LayerInfo> net = {
      {"stem", {64, 3, 7, 7}, false}, {"c1", {64, 64, 3, 3}, true},   {"c2", {128, 64, 3, 3}, true},
      {"c3", {256, 128, 3, 3}, true}, {"c4", {512, 256, 3, 3}, true}, {"down", {512, 256, 1, 1}, true},
      {"fc", {1000, 512}, true},      {"tiny", {4, 4}, true},
  };
  for (double target : {0.5, 0.8, 0.9, 0.95, 0.99}) {
    const auto s = allocate_sparsity(net, target, Allocation::erk);
    EXPECT_EQ(s[0], 0.0);
    for (double x : s) {
      EXPECT_GE(x, 0.0);
      EXPECT_LT(x, 1.0);
    }
    EXPECT_NEAR(kept_params(net, s), (1 - target) * prunable_params(net), 1e-6 * prunable_params(net)) << target;
    // Bigger layers are sparser (c4 vs c1), small ones dense.
    EXPECT_GT(s[4], s[1]);
    EXPECT_EQ(s[7], 0.0);
  }
}

TEST(MaskAllocation, UniformMeetsTheTarget) {
  const auto s = allocate_sparsity(kToy, 0.7, Allocation::uniform);
  EXPECT_EQ(s, (std::vector<double>{0.7, 0.7, 0.7, 0.0}));
  // Through the masks: each layer within one weight of its share.
  double pruned = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto r = make_mask(random_weight(kToy[i].shape, i), Pattern::parse("unstructured"), s[i]);
    pruned += r.achieved * double(r.mask.numel());
  }
  EXPECT_LE(std::fabs(pruned - 0.7 * 216.0), 3 * 0.5);
}

TEST(MaskAllocation, GlobalIsOneThresholdAndMasksReproduceIt) {
  const std::vector<Tensor> ws = {random_weight(kToy[0].shape, 1, 1.f), random_weight(kToy[1].shape, 2, 0.1f),
                                  random_weight(kToy[2].shape, 3, 3.f), Tensor()};
  const double target = 0.6;
  const auto s = allocate_sparsity(kToy, target, Allocation::global, ws);
  EXPECT_EQ(s[3], 0.0);
  EXPECT_GT(s[1], s[0]);   // the small-scale layer is pruned hardest
  EXPECT_GT(s[0], s[2]);
  const auto global = make_global_masks({ws[0], ws[1], ws[2]}, target);
  double pruned = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto r = make_mask(ws[i], Pattern::parse("unstructured"), s[i]);
    pruned += r.achieved * double(r.mask.numel());
    for (std::int64_t j = 0; j < ws[i].numel(); ++j)
      EXPECT_EQ(r.mask.data<std::uint8_t>()[j], global[i].mask.data<std::uint8_t>()[j]) << i << " " << j;
  }
  EXPECT_NEAR(pruned, std::llround(target * 216.0), 1e-6);
}

TEST(MaskAllocation, ZeroTargetAndNonPrunable) {
  EXPECT_EQ(allocate_sparsity(kToy, 0.0, Allocation::erk), (std::vector<double>{0, 0, 0, 0}));
  const std::vector<LayerInfo> frozen = {{"a", {4, 4}, false}};
  EXPECT_EQ(allocate_sparsity(frozen, 0.0, Allocation::uniform), (std::vector<double>{0}));
}

TEST(MaskAllocation, Errors) {
  EXPECT_ERROR(allocate_sparsity(kToy, 1.0, Allocation::uniform),
               "target sparsity 1 is out of range: expected a value in [0, 1)");
  EXPECT_ERROR(allocate_sparsity(kToy, std::nan(""), Allocation::erk), "target sparsity nan is out of range");
  EXPECT_ERROR(allocate_sparsity({{"bias", {16}, true}}, 0.5, Allocation::erk),
               "layer 0 'bias' has shape [16] (1-D): expected a 2-D [out, in] or 4-D [out, in, kh, kw] weight");
  EXPECT_ERROR(allocate_sparsity({{"z", {0, 4}, true}}, 0.5, Allocation::erk),
               "layer 0 'z' has shape [0, 4]: expected every dimension >= 1");
  EXPECT_ERROR(allocate_sparsity({{"a", {4, 4}, false}}, 0.5, Allocation::uniform),
               "target sparsity 0.5: none of the 1 layers is prunable");
  EXPECT_ERROR(allocate_sparsity(kToy, 0.5, Allocation::global),
               "global allocation: 0 weights for 4 layers: expected one weight per layer");
  const std::vector<Tensor> wrong = {random_weight({4, 2, 3, 3}, 1), random_weight({16, 8}, 2),
                                     random_weight({2, 8}, 3), Tensor()};
  EXPECT_ERROR(allocate_sparsity(kToy, 0.5, Allocation::global, wrong),
               "global allocation: weight 1 for layer 'fc1' has shape [16, 8]: expected the layer's shape [8, 16]");
  std::vector<Tensor> nan_w = {random_weight({4, 2, 3, 3}, 1), random_weight({8, 16}, 2), random_weight({2, 8}, 3),
                               Tensor()};
  nan_w[2].data<float>()[3] = std::nanf("");
  EXPECT_ERROR(allocate_sparsity(kToy, 0.5, Allocation::global, nan_w),
               "magnitude score |w| of layer 2 'fc2' has a NaN at flat index 3");
}
