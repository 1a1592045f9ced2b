// The small zoo end to end: dense and pruned with every pattern, the sparse run against the same
// model run densely on its masked weights; structured shrinking against the masked original.
#include <gtest/gtest.h>

#include "runtime/runtime_helpers.h"
#include "sparsebench/kernels/spmm.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/runtime/executor.h"
#include "sparsebench/runtime/passes.h"

namespace sb {
namespace {

constexpr std::int64_t kBatch = 3;  // odd on purpose: N = batch x spatial is odd too

const char* kSmall[] = {"mlp", "lenet5", "resnet_mini", "mobilenet_mini", "vit_mini"};

Tensor model_input(const Graph& g, std::uint64_t seed) {
  Rng rng(seed);
  return test::random_tensor(g.value(g.inputs()[0]).shape, rng);
}

CompileOptions opts(const std::string& kernel) {
  CompileOptions o;
  o.kernel = kernel;
  o.poison = true;
  // The choice is not under test here, only that every choice is right: one timed run each.
  o.auto_min_seconds = 0;
  o.auto_min_reps = 1;
  return o;
}

TEST(Zoo, Registry) {
  const auto names = model_names();
  EXPECT_EQ(names.size(), 10u);
  const ModelInfo mlp = model_info("mlp");
  EXPECT_EQ(mlp.params, 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  EXPECT_EQ(mlp.flops, 2 * (784 * 256 + 256 * 128 + 128 * 10) + 256 + 128 /* one per ReLU output */);
  EXPECT_TRUE(mlp.small);
  EXPECT_EQ(mlp.input_shape, (Shape{1, 1, 28, 28}));
  try {
    build_model("resnet51");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("resnet50"), std::string::npos);
  }
}

TEST(Zoo, SmallModelsRunDense) {
  for (const char* name : kSmall) {
    ModelOptions mo;
    mo.batch = kBatch;
    const Graph g = build_model(name, mo);
    const Tensor x = model_input(g, 1);
    Executor ex(g, opts("dense"));
    const Tensor y = ex.run({x})[0];
    EXPECT_EQ(y.shape(), (Shape{kBatch, 10})) << name;
    EXPECT_GT(test::max_abs(y), 0.0) << name;
    EXPECT_LT(test::rel_error(y, y), 1.0) << name << ": NaN in the output";
    // Batch independence: sample 1 alone gives the same logits as inside the batch.
    mo.batch = 1;
    const Graph g1 = build_model(name, mo);
    Tensor x1 = Tensor::from_data<float>({1, x.size(1), x.size(2), x.size(3)}, x.data<float>() + x.numel() / kBatch);
    Executor ex1(g1, opts("dense"));
    const Tensor y1 = ex1.run({x1})[0];
    Tensor y_row = Tensor::from_data<float>({1, 10}, y.data<float>() + 10);
    EXPECT_LE(test::rel_error(y1, y_row), 1e-5) << name;
  }
}

struct PruneCase {
  const char* pattern;
  double sparsity;
};

class ZooPruned : public ::testing::TestWithParam<std::tuple<const char*, PruneCase>> {};

// The pruned model run with our sparse kernels ("sparse": no dense fallback) and with the planner's
// choice ("auto") equals the same model run densely on its masked weights.
TEST_P(ZooPruned, SparseMatchesMaskedDense) {
  const auto [name, pc] = GetParam();
  ModelOptions mo;
  mo.batch = kBatch;
  Graph g = build_model(name, mo);
  PruneOptions po;
  po.pattern = Pattern::parse(pc.pattern);
  po.sparsity = pc.sparsity;
  const PruneReport rep = prune(g, po);
  int pruned = 0;
  for (const auto& l : rep.layers) pruned += l.pruned;
  EXPECT_GT(pruned, 0) << name << " " << pc.pattern;
  const Tensor x = model_input(g, 2);
  Executor dense(g, opts("dense"));
  const Tensor want = dense.run({x})[0];
  ASSERT_GT(test::max_abs(want), 0.0);
  for (const char* kernel : {"sparse", "auto"}) {
    Executor ex(g, opts(kernel));
    const Tensor got = ex.run({x})[0];
    EXPECT_LE(test::rel_error(got, want), 1e-4) << name << " " << pc.pattern << " " << kernel;
    if (std::string(kernel) == "sparse" && !po.pattern.structured()) {
      bool any_sparse = false;
      for (const auto& p : ex.plan()) any_sparse = any_sparse || (p.format != "dense" && p.format != "-");
      EXPECT_TRUE(any_sparse) << name << " " << pc.pattern << ": no layer ran a sparse format";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Patterns, ZooPruned,
                         ::testing::Combine(::testing::ValuesIn(kSmall),
                                            ::testing::Values(PruneCase{"unstructured", 0.8}, PruneCase{"block:4x4", 0.7},
                                                              PruneCase{"balanced:bank=8", 0.75}, PruneCase{"nm:2:4", 0.5},
                                                              PruneCase{"filter", 0.5}, PruneCase{"channel", 0.5})),
                         [](const auto& info) {
                           std::string s = std::string(std::get<0>(info.param)) + "_" + std::get<1>(info.param).pattern;
                           for (char& c : s)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

class ZooStructured : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

// Removing channels gives the same output as masking them (rows of the producer, columns of the
// consumers), and the model gets smaller.
TEST_P(ZooStructured, ShrinkEqualsMaskedOriginal) {
  const auto [name, pattern] = GetParam();
  ModelOptions mo;
  mo.batch = kBatch;
  const Graph original = build_model(name, mo);
  PruneOptions po;
  po.pattern = Pattern::parse(pattern);
  po.sparsity = 0.5;
  Graph shrunk = original.clone(), masked = original.clone();
  const PruneReport rs = prune(shrunk, po);
  po.shrink = false;
  const PruneReport rm = prune(masked, po);
  const Tensor x = model_input(original, 3);
  const Tensor ys = Executor(shrunk, opts("dense")).run({x})[0];
  const Tensor ym = Executor(masked, opts("dense")).run({x})[0];
  EXPECT_LE(test::rel_error(ys, ym), 1e-5) << name << " " << pattern;
  int pruned = 0;
  for (const auto& l : rs.layers) pruned += l.pruned;
  if (pruned > 0) {
    EXPECT_LT(rs.params_after, rs.params_before) << name << " " << pattern;
    EXPECT_EQ(rm.params_after, rm.params_before);
  }
  // No mask is left on a shrunk model: it is a smaller dense model.
  for (const auto& n : shrunk.nodes()) EXPECT_FALSE(n.mask.defined()) << n.name;
}

INSTANTIATE_TEST_SUITE_P(Models, ZooStructured,
                         ::testing::Combine(::testing::ValuesIn(kSmall), ::testing::Values("filter", "channel")),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
                         });

TEST(Prune, DefaultsAndOverrides) {
  Graph g = build_model("resnet_mini");
  PruneOptions po;
  po.pattern = Pattern::parse("unstructured");
  po.sparsity = 0.9;
  const PruneReport rep = prune(g, po);
  for (const auto& l : rep.layers) {
    if (l.name == "conv1" || l.name == "fc") {
      EXPECT_FALSE(l.pruned) << l.name;
      EXPECT_FALSE(l.note.empty()) << l.name;
    } else {
      EXPECT_TRUE(l.pruned) << l.name;
      EXPECT_NEAR(l.achieved, 0.9, 0.01) << l.name;
    }
  }
  EXPECT_NEAR(rep.achieved, 0.9, 0.01);
  Graph h = build_model("resnet_mini");
  po.dense_layers = {"layer1.*"};
  po.prune_layers = {"fc"};
  const PruneReport r2 = prune(h, po);
  for (const auto& l : r2.layers) {
    if (l.name.rfind("layer1.", 0) == 0 || l.name == "conv1") EXPECT_FALSE(l.pruned) << l.name;
    if (l.name == "fc") EXPECT_TRUE(l.pruned);
  }
  Graph m = build_model("mobilenet_mini");
  const PruneReport r3 = prune(m, po = PruneOptions{Pattern::parse("unstructured"), 0.5});
  for (const auto& l : r3.layers)
    if (m.nodes()[m.find_node(l.name)].is_depthwise()) EXPECT_FALSE(l.pruned) << l.name;
  PruneOptions bad{Pattern::parse("unstructured"), 0.5};
  bad.dense_layers = {"nope.*"};
  EXPECT_THROW(prune(m, bad), Error);
}

// Residual-tied channels are left alone under structured pruning (the documented rule).
TEST(Prune, ResidualTiedChannelsLeftAlone) {
  Graph g = build_model("resnet_mini");
  PruneOptions po{Pattern::parse("filter"), 0.5};
  const PruneReport rep = prune(g, po);
  for (const auto& l : rep.layers) {
    const bool inner = l.name.find(".conv1") != std::string::npos;  // feeds conv2 only
    EXPECT_EQ(l.pruned, inner) << l.name << ": " << l.note;
  }
}

}  // namespace
}  // namespace sb

namespace sb {
namespace {

// Every full-size model builds, has its published parameter count (torch's count, BatchNorm
// statistics excluded) and runs once at batch 1 with finite output.
TEST(Zoo, FullSizeModelsRunOnceAtBatch1) {
  const std::pair<const char*, std::int64_t> published[] = {{"resnet18", 11689512},   {"resnet50", 25557032},
                                                            {"mobilenet_v2", 3504872}, {"vit_b16", 86567656},
                                                            {"bert_base", 108595200}};  // no pooler, 128 positions
  for (const auto& [name, params] : published) {
    const Graph g = build_model(name);
    EXPECT_EQ(g.param_count(), params) << name;
    Tensor x;
    const Value& in = g.value(g.inputs()[0]);
    if (in.dtype == DType::i32) {
      x = Tensor::empty(in.shape, DType::i32);
      Rng rng(5);
      for (std::int64_t i = 0; i < x.numel(); ++i) x.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(30522));
    } else {
      x = model_input(g, 4);
    }
    CompileOptions o;
    o.kernel = "dense";
    o.auto_min_seconds = 0;
    o.auto_min_reps = 1;
    Executor ex(g, o);
    const Tensor y = ex.run({x})[0];
    EXPECT_EQ(y.shape(), g.value(g.outputs()[0]).shape) << name;
    EXPECT_LT(test::rel_error(y, y), 1.0) << name << ": NaN in the output";
    EXPECT_GT(test::max_abs(y), 0.0) << name;
  }
}

}  // namespace
}  // namespace sb

namespace sb {
namespace {

// A forced kernel runs every pruned layer (unpruned ones stay dense), or the error names the layer.
TEST(Planner, ForcedKernelByName) {
  ModelOptions mo;
  mo.batch = 2;
  Graph g = build_model("lenet5", mo);
  prune(g, PruneOptions{Pattern::parse("unstructured"), 0.8});
  const Tensor x = model_input(g, 6);
  const Tensor want = Executor(g, opts("dense")).run({x})[0];
  int ran = 0;
  for (const auto& impl : SpmmRegistry::instance().all()) {
    if (impl->role() != Role::kernel || impl->format() != Format::csr) continue;
    try {
      Executor ex(g, opts(impl->name()));
      EXPECT_LE(test::rel_error(ex.run({x})[0], want), 1e-4) << impl->name();
      for (const auto& p : ex.plan())
        if (p.sparsity > 0) EXPECT_EQ(p.kernel, impl->name()) << p.name;
      ++ran;
    } catch (const Error& e) {
      // e.g. a GEMV-only kernel on n > 1: the message names the layer and the reason.
      EXPECT_NE(std::string(e.what()).find("layer '"), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(ran, 0);
  try {
    Executor ex(g, opts("no_such_kernel"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv2"), std::string::npos) << e.what();
  }
}

// oneDNN's convolution primitive (the dense side's other way to run a convolution, executor.h)
// computes what the im2col + GEMM path computes, with the activations fused into it (ReLU in
// resnet_mini, ReLU6 in mobilenet_mini, none in vit_mini's patch embedding), dense and on a pruned
// model's masked weights; every groups-1 convolution runs it when named, the others keep theirs.
TEST(Planner, OnednnConvolutionMatchesTheGemmPath) {
  for (const char* name : kSmall) {
    for (const bool pruned : {false, true}) {
      ModelOptions mo;
      mo.batch = kBatch;
      Graph g = build_model(name, mo);
      if (pruned) prune(g, PruneOptions{Pattern::parse("unstructured"), 0.8});
      const Tensor x = model_input(g, 9);
      CompileOptions gemm_only = opts("dense");
      gemm_only.measure = false;  // no timing: the first candidate, oneDNN sgemm after im2col
      const Tensor want = Executor(g, gemm_only).run({x})[0];
      Executor ex(g, opts(kOnednnConvName));
      EXPECT_LE(test::rel_error(ex.run({x})[0], want), 1e-5) << name << (pruned ? " pruned" : "");
      int convs = 0;
      for (const auto& p : ex.plan()) {
        if (p.op.rfind("conv2d", 0) != 0 || p.kernel == "direct_depthwise") continue;
        ++convs;
        EXPECT_EQ(p.kernel, p.groups == 1 ? kOnednnConvName : p.kernel) << name << " " << p.name;
        if (p.groups == 1) EXPECT_EQ(p.stored_bytes, p.dense_bytes) << name << " " << p.name;
      }
      for (const auto& p : Executor(g, gemm_only).plan())
        EXPECT_NE(p.kernel, kOnednnConvName) << name << " " << p.name << ": chosen without measuring";
      if (std::string(name) != "mlp") EXPECT_GT(convs, 0) << name;
    }
  }
}

// Profiling: one timing per executed step, with the plan's kernel and format.
TEST(Planner, ProfileAndFootprint) {
  Graph g = build_model("mlp");
  prune(g, PruneOptions{Pattern::parse("unstructured"), 0.9});
  Executor ex(g, opts("sparse"));
  ex.set_profiling(true);
  const Tensor x = model_input(g, 7);
  ex.run({x});
  ex.run({x});
  const auto prof = ex.profile();
  ASSERT_EQ(prof.size(), ex.plan().size());
  for (const auto& t : prof) EXPECT_EQ(t.calls, 2) << t.plan.name;
  EXPECT_LT(ex.weight_bytes_stored(), ex.weight_bytes_dense());
  EXPECT_GT(ex.arena_bytes(), 0u);
}

}  // namespace
}  // namespace sb

namespace sb {
namespace {

// Global and ERK allocations reach the target over the prunable layers and still run correctly.
TEST(Prune, GlobalAndErkAllocations) {
  for (Allocation a : {Allocation::global, Allocation::erk}) {
    ModelOptions mo;
    mo.batch = 2;
    Graph g = build_model("resnet_mini", mo);
    PruneOptions po{Pattern::parse("unstructured"), 0.8};
    po.allocation = a;
    const PruneReport rep = prune(g, po);
    EXPECT_NEAR(rep.achieved, 0.8, 0.01) << allocation_name(a);
    double lo = 1, hi = 0;
    for (const auto& l : rep.layers)
      if (l.pruned) {
        lo = std::min(lo, l.achieved);
        hi = std::max(hi, l.achieved);
      }
    EXPECT_GT(hi - lo, 0.01) << allocation_name(a) << ": per-layer sparsities should differ";
    const Tensor x = model_input(g, 8);
    const Tensor want = Executor(g, opts("dense")).run({x})[0];
    EXPECT_LE(test::rel_error(Executor(g, opts("sparse")).run({x})[0], want), 1e-4) << allocation_name(a);
  }
}

}  // namespace
}  // namespace sb
