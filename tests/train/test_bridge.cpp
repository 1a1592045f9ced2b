// M3 correctness: for every zoo model, dense and pruned with each pattern, the runtime's output
// (our executor, sparse kernels on pruned layers) against a libtorch execution of the same graph
// with the same masked weights (train/TorchGraph): max |diff| / max |torch| <= 1e-4 in fp32.
// Small models at full size. Every full-size model runs once dense at its full size, batch 1;
// pruned, at reduced sizes: the CNNs at a 64x64 image (every layer and weight as at 224), the
// transformers with 2 of their 12 encoder layers (identical layers), bert_base at 16 tokens.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "runtime/runtime_helpers.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/runtime/executor.h"
#include "sparsebench/runtime/passes.h"
#include "sparsebench/train/torch_graph.h"

namespace sb {
namespace {

constexpr double kTol = 1e-4;

// The same graph with another input shape: every node re-added over the new input (the builders
// add their single input first, so value ids are remapped, not assumed).
Graph with_input_shape(const Graph& g, const Shape& shape) {
  Graph out;
  std::map<int, int> remap;
  SB_CHECK(g.inputs().size() == 1, "with_input_shape: one input expected");
  remap[g.inputs()[0]] = out.add_input(g.value(g.inputs()[0]).name, shape, g.value(g.inputs()[0]).dtype);
  for (Node n : g.nodes()) {
    const int old_out = n.output;
    for (int& v : n.inputs) v = remap.at(v);
    remap[old_out] = out.add_node(std::move(n));
  }
  for (int o : g.outputs()) out.mark_output(remap.at(o));
  return out;
}

// The graph without encoder layers >= `keep` (names "<prefix><i>."): readers of the last dropped
// layer's output read the last kept layer's output instead.
Graph truncate_layers(const Graph& g, const std::string& prefix, int keep) {
  Graph out = g;
  auto layer_of = [&](const std::string& name) {
    if (name.rfind(prefix, 0) != 0) return -1;
    return std::atoi(name.c_str() + prefix.size());
  };
  int last_kept = -1;
  for (const Node& n : out.nodes())
    if (layer_of(n.name) == keep - 1) last_kept = n.output;  // the layer's last node (topological order)
  SB_CHECK(last_kept >= 0, "truncate_layers: no layer {}{}", prefix, keep - 1);
  std::vector<bool> dead;
  for (const Node& n : out.nodes()) dead.push_back(layer_of(n.name) >= keep);
  out.remove_nodes(dead, std::vector<int>(dead.size(), last_kept));
  out.infer_shapes();
  return out;
}

bool is_small(const std::string& m) {
  return m == "mlp" || m == "lenet5" || m == "resnet_mini" || m == "mobilenet_mini" || m == "vit_mini";
}

Tensor model_input(const Graph& g, std::uint64_t seed) {
  Rng rng(seed);
  const Value& in = g.value(g.inputs()[0]);
  if (in.dtype == DType::i32) {
    Tensor t = Tensor::empty(in.shape, DType::i32);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(30522));
    return t;
  }
  return test::random_tensor(in.shape, rng);
}

// Runs `g` on both engines; returns the relative error (and fails on an all-zero reference).
double compare(const Graph& g, const std::string& kernel, const std::string& what) {
  set_torch_threads(2);
  const Tensor x = model_input(g, 7);
  CompileOptions co;
  co.kernel = kernel;
  Executor ex(g, co);
  const Tensor got = ex.run({x})[0];
  TorchGraph tg(g);
  const Tensor want = tg.run({x})[0];
  EXPECT_GT(test::max_abs(want), 0.0) << what << ": all-zero reference";
  const double err = test::rel_error(got, want);
  EXPECT_LE(err, kTol) << what << " (kernel " << kernel << ")";
  return err;
}

struct Case {
  const char* model;
  const char* pattern;  // "dense" or a pattern
};

// Readable names in ctest (the default prints the struct's bytes).
void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " " << c.pattern; }

Graph build_case(const Case& c) {
  const std::string name = c.model;
  ModelOptions mo;
  const bool reduced = std::string(c.pattern) != "dense";
  mo.batch = is_small(name) ? 3 : 1;
  if (name == "bert_base" && reduced) mo.seq_len = 16;
  Graph g = build_model(name, mo);
  const bool cnn = name == "resnet18" || name == "resnet50" || name == "mobilenet_v2";
  if (cnn && reduced) g = with_input_shape(g, {1, 3, 64, 64});
  if (name == "vit_b16" && reduced) g = truncate_layers(g, "encoder.layers.encoder_layer_", 2);
  if (name == "bert_base" && reduced) g = truncate_layers(g, "encoder.layer.", 2);
  if (std::string(c.pattern) != "dense") {
    PruneOptions po;
    po.pattern = Pattern::parse(c.pattern);
    po.sparsity = po.pattern.kind == Pattern::Kind::nm ? 0.5 : (po.pattern.structured() ? 0.5 : 0.8);
    const PruneReport rep = prune(g, po);
    int pruned = 0;
    for (const auto& l : rep.layers) pruned += l.pruned;
    EXPECT_GT(pruned, 0) << c.model << " " << c.pattern << ": nothing pruned";
  }
  return g;
}

class Bridge : public ::testing::TestWithParam<Case> {};

TEST_P(Bridge, RuntimeMatchesTorch) {
  const Case c = GetParam();
  const Graph g = build_case(c);
  const bool dense = std::string(c.pattern) == "dense";
  compare(g, dense ? "dense" : "sparse", std::string(c.model) + " " + c.pattern);
}

const char* kModels[] = {"mlp", "lenet5", "resnet_mini", "mobilenet_mini", "vit_mini",
                         "resnet18", "resnet50", "mobilenet_v2", "bert_base", "vit_b16"};
const char* kPatterns[] = {"dense", "unstructured", "filter", "channel", "block:4x4", "balanced:bank=8",
                           "balanced:bank=32", "nm:2:4"};

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (const char* m : kModels)
    for (const char* p : kPatterns) {
      // bank=32 is the full-size models' bank (the small ones' layers are too narrow for some).
      if (std::string(p) == "balanced:bank=32" && is_small(m)) continue;
      if (std::string(p) == "balanced:bank=8" && !is_small(m)) continue;
      out.push_back({m, p});
    }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Zoo, Bridge, ::testing::ValuesIn(all_cases()), [](const auto& info) {
  std::string s = std::string(info.param.model) + "_" + info.param.pattern;
  for (char& ch : s)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
});

// The bridge keeps pruned weights at exactly zero, and export writes back what it holds.
TEST(Bridge, ExportRoundTrip) {
  Graph g = build_model("resnet_mini");
  PruneOptions po;
  po.pattern = Pattern::parse("balanced:bank=8");
  po.sparsity = 0.75;
  prune(g, po);
  TorchGraph tg(g);
  Graph back = build_model("resnet_mini", ModelOptions{1, 0, 99});  // other weights, same structure
  tg.export_to(back, po.pattern);
  for (const auto& n : g.nodes()) {
    const Node& m = back.nodes()[back.find_node(n.name)];
    for (const auto& [k, t] : n.params) EXPECT_LE(test::rel_error(m.param(k), t), 0.0) << n.name << "." << k;
    EXPECT_EQ(n.mask.defined(), m.mask.defined()) << n.name;
  }
  Graph other = build_model("lenet5");
  EXPECT_THROW(tg.export_to(other), Error);
}

// The elementwise / reduction ops (sigmoid, tanh, erf, sqrt, mul, sub, div, pow, reduce_mean, add
// with numpy broadcasting) in one graph: the runtime (NaN-poisoned buffers) against libtorch.
TEST(Bridge, ElementwiseOpsMatchTorch) {
  Builder b;
  const int x = b.input("x", {2, 4, 8});
  const int h = b.linear("fc", x, 8);
  auto scalar = [&](const std::string& name, float v) {
    const int c = b.constant(name, {1}, 0.f);
    b.graph().nodes()[b.graph().value(c).producer].params["value"].data<float>()[0] = v;
    return c;
  };
  const int silu = b.binary("silu", OpKind::mul, h, b.unary("sig", OpKind::sigmoid, h));
  const int t = b.unary("erf", OpKind::erf, b.unary("tanh", OpKind::tanh, silu));
  const int den = b.unary("sqrt", OpKind::sqrt, b.add("sq1", b.binary("sq", OpKind::pow, h, scalar("two", 2.f)), scalar("one", 1.f)));
  const int q = b.binary("q", OpKind::div, t, den);
  const int m = b.reduce_mean("mean", q, {-1}, true);       // [2, 4, 1]
  const int c = b.binary("centered", OpKind::sub, q, m);
  const int p = b.binary("p", OpKind::pow, b.unary("sqrt2", OpKind::sqrt, den), b.constant("e", {1, 4, 1}, 0.5f));
  b.output(b.binary("out", OpKind::mul, c, p));
  b.output(b.reduce_mean("pooled", c, {1}, false));          // [2, 8]
  const Graph g = b.finish();

  set_torch_threads(2);
  const Tensor in = model_input(g, 7);
  CompileOptions co;
  co.kernel = "dense";
  co.poison = true;
  Executor ex(g, co);
  const auto got = ex.run({in});
  TorchGraph tg(g);
  const auto want = tg.run({in});
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    SCOPED_TRACE(k);
    ASSERT_EQ(got[k].shape(), want[k].shape());
    EXPECT_GT(test::max_abs(want[k]), 0.0);
    EXPECT_LE(test::rel_error(got[k], want[k]), kTol);
  }
}

}  // namespace
}  // namespace sb
