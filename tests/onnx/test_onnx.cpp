// ONNX import / export: files built here through the onnx protobuf API (each supported operator,
// against the same graph built natively or a direct computation), zoo models exported and
// re-imported with identical outputs, sparse initializers, truncated / corrupted files.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <set>
#include <string>

#include "runtime/runtime_helpers.h"
#include "sparsebench/core/error.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/onnx/onnx.h"
#include "sparsebench/runtime/executor.h"
#include "sparsebench/runtime/passes.h"

namespace sb {
namespace {

using test::random_tensor;
using test::rel_error;

// A minimal ONNX graph writer for the tests.
struct OnnxFile {
  onnx::ModelProto m;
  onnx::GraphProto* g;
  explicit OnnxFile(int opset = 13) {
    m.set_ir_version(8);
    auto* o = m.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    g = m.mutable_graph();
    g->set_name("test");
  }
  std::string init(const std::string& name, const Tensor& t) {
    auto* p = g->add_initializer();
    p->set_name(name);
    p->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : t.shape()) p->add_dims(d);
    const Tensor c = t.contiguous();
    for (std::int64_t k = 0; k < c.numel(); ++k) p->add_float_data(c.data<float>()[k]);
    return name;
  }
  std::string scalar(const std::string& name, float v) {
    auto* p = g->add_initializer();
    p->set_name(name);
    p->set_data_type(onnx::TensorProto::FLOAT);
    p->add_float_data(v);
    return name;
  }
  std::string ints(const std::string& name, const std::vector<std::int64_t>& v, bool scalar = false) {
    auto* p = g->add_initializer();
    p->set_name(name);
    p->set_data_type(onnx::TensorProto::INT64);
    if (!scalar) p->add_dims(static_cast<std::int64_t>(v.size()));
    for (auto x : v) p->add_int64_data(x);
    return name;
  }
  void input(const std::string& name, const Shape& s, int elem = onnx::TensorProto::FLOAT) {
    auto* vi = g->add_input();
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem);
    for (auto d : s) tt->mutable_shape()->add_dim()->set_dim_value(d);
  }
  void output(const std::string& name) {
    auto* vi = g->add_output();
    vi->set_name(name);
    vi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& in, const std::string& out,
                        const std::string& name = "") {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? out : name);
    for (const auto& i : in) n->add_input(i);
    n->add_output(out);
    return n;
  }
  static void i(onnx::NodeProto* n, const char* k, std::int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void f(onnx::NodeProto* n, const char* k, float v) {
    auto* a = n->add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void is(onnx::NodeProto* n, const char* k, const std::vector<std::int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }
  std::string bytes() const { return m.SerializeAsString(); }
  Graph load() const { return import_onnx_bytes(bytes(), "test.onnx"); }
};

std::vector<Tensor> run(const Graph& g, const std::vector<Tensor>& in) {
  CompileOptions co;
  co.kernel = "dense";
  Executor ex(g, co);
  return ex.run(in);
}

const Tensor& P(const Graph& g, const std::string& node, const std::string& key) {
  return g.nodes()[g.find_node(node)].param(key);
}

Tensor make_input(const Graph& g, std::uint64_t seed = 7) {
  Rng rng(seed);
  const Value& v = g.value(g.inputs()[0]);
  if (v.dtype == DType::i32) {
    Tensor t = Tensor::empty(v.shape, DType::i32);
    for (std::int64_t k = 0; k < t.numel(); ++k) t.data<std::int32_t>()[k] = static_cast<std::int32_t>(rng.below(50));
    return t;
  }
  return random_tensor(v.shape, rng);
}

// Conv, BatchNormalization, Relu, MaxPool, depthwise Conv, Clip (ReLU6), AveragePool (padded),
// GlobalAveragePool, Flatten, Gemm: against the same network built natively.
TEST(OnnxImport, CnnOperators) {
  Builder b;
  int x = b.input("x", {2, 3, 12, 12});
  x = b.conv2d("conv", x, 8, 3, 1, 1, 1, true);
  x = b.unary("relu", OpKind::relu, b.batch_norm("bn", x));
  x = b.max_pool("pool", x, 2, 2);
  x = b.unary("relu6", OpKind::relu6, b.conv2d("dw", x, 8, 3, 1, 1, 8, false));
  x = b.avg_pool("avg", x, 3, 2, 1);
  x = b.flatten("flat", b.global_avg_pool("gap", x), 1);
  b.output(b.linear("fc", x, 5));
  const Graph native = b.finish();

  OnnxFile f;
  f.input("x", {2, 3, 12, 12});
  auto* c = f.node("Conv", {"x", f.init("cw", P(native, "conv", "weight")), f.init("cb", P(native, "conv", "bias"))}, "c");
  f.is(c, "kernel_shape", {3, 3});
  f.is(c, "pads", {1, 1, 1, 1});
  auto* bn = f.node("BatchNormalization", {"c", f.init("g", P(native, "bn", "weight")), f.init("be", P(native, "bn", "bias")),
                                           f.init("m", P(native, "bn", "running_mean")), f.init("v", P(native, "bn", "running_var"))}, "bn");
  f.f(bn, "epsilon", 1e-5f);
  f.node("Relu", {"bn"}, "r");
  auto* mp = f.node("MaxPool", {"r"}, "mp");
  f.is(mp, "kernel_shape", {2, 2});
  f.is(mp, "strides", {2, 2});
  auto* dw = f.node("Conv", {"mp", f.init("dww", P(native, "dw", "weight"))}, "dw");
  f.i(dw, "group", 8);
  f.is(dw, "pads", {1, 1, 1, 1});
  f.node("Clip", {"dw", f.scalar("lo", 0), f.scalar("hi", 6)}, "r6");
  auto* ap = f.node("AveragePool", {"r6"}, "ap");
  f.is(ap, "kernel_shape", {3, 3});
  f.is(ap, "strides", {2, 2});
  f.is(ap, "pads", {1, 1, 1, 1});
  f.i(ap, "count_include_pad", 1);
  f.node("GlobalAveragePool", {"ap"}, "gap");
  f.node("Flatten", {"gap"}, "fl");
  auto* gm = f.node("Gemm", {"fl", f.init("fw", P(native, "fc", "weight")), f.init("fb", P(native, "fc", "bias"))}, "y");
  f.i(gm, "transB", 1);
  f.output("y");
  const Graph g = f.load();
  const Tensor in = make_input(native);
  EXPECT_LT(rel_error(run(g, {in})[0], run(native, {in})[0]), 1e-5);
  EXPECT_EQ(g.find_node("bn"), -1) << "BatchNorm folded into the conv at import";
}

// MatMul + Add -> linear (bias fused), Gemm with transB = 0, Add / Sub / Mul / Div by constants
// (bias and scale folded into the producing layer, or an add of a constant), Identity, Dropout.
TEST(OnnxImport, ArithmeticOnConstants) {
  Builder b;
  int x = b.input("x", {3, 6});
  b.output(b.linear("fc", x, 4, true));
  const Graph native = b.finish();
  const Tensor w = P(native, "fc", "weight"), bias = P(native, "fc", "bias");

  OnnxFile f;
  f.input("x", {3, 6});
  f.node("MatMul", {"x", f.init("wt", w.transpose(0, 1).contiguous())}, "mm");
  f.node("Add", {"mm", f.init("b", bias)}, "lin");
  f.node("Div", {"lin", f.scalar("two", 2.0f)}, "half");   // folded into the linear
  f.node("Identity", {"half"}, "id");
  f.node("Dropout", {"id"}, "dr");
  f.node("Relu", {"dr"}, "r");
  f.node("Sub", {"r", f.scalar("s", 0.25f)}, "sub");       // an add of -0.25
  f.node("Mul", {"sub", f.scalar("one", 1.0f)}, "y");      // x * 1 is x
  f.output("y");
  const Graph g = f.load();
  Rng rng(3);
  const Tensor in = random_tensor({3, 6}, rng);
  Tensor want = run(native, {in})[0];
  for (std::int64_t k = 0; k < want.numel(); ++k) {
    float& v = want.data<float>()[k];
    v = std::max(v / 2, 0.0f) - 0.25f;
  }
  EXPECT_LT(rel_error(run(g, {in})[0], want), 1e-5);
}

// A BERT-like encoder layer as torch.onnx (opset 13) writes it: Gather embeddings from INT64 ids,
// decomposed LayerNorm (ReduceMean / Sub / Pow / Add / Sqrt / Div / Mul / Add), MatMul + Add
// projections, attention with Shape / Gather / Unsqueeze / Concat reshape targets, a zero mask,
// Transpose and Softmax, GELU in the Erf form, Constant nodes; against the native encoder.
TEST(OnnxImport, TransformerEncoderPatterns) {
  const std::int64_t T = 6, C = 16, H = 4, D = C / H, V = 50;
  Builder b;
  int x = b.input("ids", {1, T}, DType::i32);
  x = b.embedding("emb", x, V, C);
  x = b.add("pos_add", x, b.constant("pos", {1, T, C}, 0.5f));
  x = b.layer_norm("ln0", x, 1e-12);
  const int q = b.linear("q", x, C), k = b.linear("k", x, C), v = b.linear("v", x, C);
  int a = b.linear("o", b.attention("attn", q, k, v, H), C);
  x = b.layer_norm("ln1", b.add("res", x, a), 1e-12);
  x = b.linear("fc2", b.unary("gelu", OpKind::gelu, b.linear("fc1", x, 2 * C)), C);
  b.output(x);
  Graph native = b.finish();
  // Non-trivial LayerNorm parameters.
  Rng prng(11);
  for (const char* ln : {"ln0", "ln1"}) {
    native.nodes()[native.find_node(ln)].params["weight"] = random_tensor({C}, prng, 0.5f, 1.5f);
    native.nodes()[native.find_node(ln)].params["bias"] = random_tensor({C}, prng);
  }

  OnnxFile f(13);
  f.input("ids", {1, T}, onnx::TensorProto::INT64);
  f.node("Gather", {f.init("E", P(native, "emb", "weight")), "ids"}, "e");
  auto* cn = f.node("Constant", {}, "posc");
  {
    auto* at = cn->add_attribute();
    at->set_name("value");
    at->set_type(onnx::AttributeProto::TENSOR);
    const Tensor pv = P(native, "pos", "value");
    auto* t = at->mutable_t();
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : pv.shape()) t->add_dims(d);
    for (std::int64_t i = 0; i < pv.numel(); ++i) t->add_float_data(pv.data<float>()[i]);
  }
  f.node("Add", {"e", "posc"}, "x0");
  auto layer_norm = [&](const std::string& in, const std::string& p) {
    auto* m = f.node("ReduceMean", {in}, p + "_mean");
    f.is(m, "axes", {-1});
    f.node("Sub", {in, p + "_mean"}, p + "_d");
    f.node("Pow", {p + "_d", f.scalar(p + "_two", 2.0f)}, p + "_sq");
    auto* m2 = f.node("ReduceMean", {p + "_sq"}, p + "_var");
    f.is(m2, "axes", {-1});
    f.node("Add", {p + "_var", f.scalar(p + "_eps", 1e-12f)}, p + "_ve");
    f.node("Sqrt", {p + "_ve"}, p + "_std");
    f.node("Div", {p + "_d", p + "_std"}, p + "_n");
    f.node("Mul", {p + "_n", f.init(p + "_w", P(native, p, "weight"))}, p + "_s");
    f.node("Add", {p + "_s", f.init(p + "_b", P(native, p, "bias"))}, p);
  };
  auto linear = [&](const std::string& in, const std::string& p) {
    f.node("MatMul", {in, f.init(p + "_wt", P(native, p, "weight").transpose(0, 1).contiguous())}, p + "_mm", p);
    f.node("Add", {p + "_mm", f.init(p + "_b", P(native, p, "bias"))}, p + "_out");
    return p + "_out";
  };
  layer_norm("x0", "ln0");
  const std::string qo = linear("ln0", "q"), ko = linear("ln0", "k"), vo = linear("ln0", "v");
  // q's split shape from a Shape chain (HF: x.size()[:-1] + (heads, head_dim)).
  f.node("Shape", {qo}, "qs");
  auto* g0 = f.node("Gather", {"qs", f.ints("i0", {0}, true)}, "qs0");
  f.i(g0, "axis", 0);
  f.node("Gather", {"qs", f.ints("i1", {1}, true)}, "qs1");
  f.node("Unsqueeze", {"qs0", f.ints("ax0", {0})}, "qs0u");
  f.node("Unsqueeze", {"qs1", f.ints("ax1", {0})}, "qs1u");
  auto* cc = f.node("Concat", {"qs0u", "qs1u", f.ints("hd", {H, D})}, "qshape");
  f.i(cc, "axis", 0);
  const std::string split = f.ints("split", {1, T, H, D});
  f.node("Reshape", {qo, "qshape"}, "q4");
  f.node("Reshape", {ko, split}, "k4");
  f.node("Reshape", {vo, split}, "v4");
  f.is(f.node("Transpose", {"q4"}, "qh"), "perm", {0, 2, 1, 3});
  f.is(f.node("Transpose", {"k4"}, "kh"), "perm", {0, 2, 1, 3});
  f.is(f.node("Transpose", {"kh"}, "kt"), "perm", {0, 1, 3, 2});
  f.is(f.node("Transpose", {"v4"}, "vh"), "perm", {0, 2, 1, 3});
  f.node("MatMul", {"qh", "kt"}, "sc");
  f.node("Div", {"sc", f.scalar("sqrtd", std::sqrt(static_cast<float>(D)))}, "scd");
  Tensor zeros = Tensor::zeros({1, 1, 1, T});
  f.node("Add", {"scd", f.init("mask", zeros)}, "scm");
  f.i(f.node("Softmax", {"scm"}, "pr", "softmax"), "axis", -1);
  f.node("MatMul", {"pr", "vh"}, "ctx");
  f.is(f.node("Transpose", {"ctx"}, "ctxt"), "perm", {0, 2, 1, 3});
  f.node("Reshape", {"ctxt", f.ints("merge", {1, T, C})}, "ctxm");
  const std::string oo = linear("ctxm", "o");
  f.node("Add", {"ln0", oo}, "res");
  layer_norm("res", "ln1");
  const std::string h = linear("ln1", "fc1");
  // HF's gelu: x * 0.5 * (1 + erf(x / sqrt(2)))
  f.node("Mul", {h, f.scalar("half", 0.5f)}, "gx");
  f.node("Div", {h, f.scalar("sqrt2", std::sqrt(2.0f))}, "gd");
  f.node("Erf", {"gd"}, "ge");
  f.node("Add", {"ge", f.scalar("one", 1.0f)}, "g1");
  f.node("Mul", {"gx", "g1"}, "gelu");
  const std::string y = linear("gelu", "fc2");
  f.output(y);

  const Graph g = f.load();
  int attn = 0, ln = 0, gelu = 0;
  for (const auto& n : g.nodes()) {
    attn += n.op == OpKind::attention;
    ln += n.op == OpKind::layer_norm;
    gelu += n.op == OpKind::gelu;
    EXPECT_NE(n.op, OpKind::matmul) << n.name << ": the attention subgraph should be one attention op";
  }
  EXPECT_EQ(attn, 1);
  EXPECT_EQ(ln, 2);
  EXPECT_EQ(gelu, 1);
  const Tensor in = make_input(native);
  EXPECT_LT(rel_error(run(g, {in})[0], run(native, {in})[0]), 1e-4);
}

// Concat, Transpose (a general permutation), Reshape, Softmax, LayerNormalization (opset 17), a
// folded Slice / Cast / Constant chain and the opset-17 Gelu-free graph: against a native graph.
TEST(OnnxImport, ShapeOps) {
  Builder b;
  int x = b.input("x", {2, 4, 3});
  int c = b.concat("cat", {x, x}, 1);                 // [2, 8, 3]
  c = b.transpose("t", c, 1, 2);                       // [2, 3, 8]
  c = b.layer_norm("ln", c, 1e-5);
  c = b.reshape("r", c, {2, 24});
  b.output(b.softmax("sm", c, 1));
  const Graph native = b.finish();

  OnnxFile f(17);
  f.input("x", {2, 4, 3});
  f.i(f.node("Concat", {"x", "x"}, "cat"), "axis", 1);
  f.is(f.node("Transpose", {"cat"}, "t"), "perm", {0, 2, 1});
  auto* ln = f.node("LayerNormalization", {"t", f.init("w", P(native, "ln", "weight")), f.init("bb", P(native, "ln", "bias"))}, "ln");
  f.f(ln, "epsilon", 1e-5f);
  // Target shape [2, 24] from Slice(Cast(Constant [2, 24, 99])).
  auto* k = f.node("Constant", {}, "k");
  {
    auto* at = k->add_attribute();
    at->set_name("value_ints");
    at->set_type(onnx::AttributeProto::INTS);
    for (std::int64_t v : {2, 24, 99}) at->add_ints(v);
  }
  f.i(f.node("Cast", {"k"}, "kf"), "to", onnx::TensorProto::FLOAT);
  f.i(f.node("Cast", {"kf"}, "ki"), "to", onnx::TensorProto::INT64);
  f.node("Slice", {"ki", f.ints("s0", {0}), f.ints("s1", {2})}, "shape");
  f.node("Reshape", {"ln", "shape"}, "r");
  f.i(f.node("Softmax", {"r"}, "y"), "axis", 1);
  f.output("y");
  const Graph g = f.load();
  Rng rng(5);
  const Tensor in = random_tensor({2, 4, 3}, rng);
  EXPECT_LT(rel_error(run(g, {in})[0], run(native, {in})[0]), 1e-5);
}

TEST(OnnxImport, UnsupportedOperatorNamesNodeOpAndOpset) {
  OnnxFile f(13);
  f.input("x", {1, 4});
  f.node("Foo", {"x"}, "y", "Conv_12");
  f.output("y");
  try {
    f.load();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("test.onnx"), std::string::npos) << m;
    EXPECT_NE(m.find("'Conv_12'"), std::string::npos) << m;
    EXPECT_NE(m.find("op_type Foo"), std::string::npos) << m;
    EXPECT_NE(m.find("opset 13"), std::string::npos) << m;
  }
  // An op the runtime lacks, on its own: named too.
  OnnxFile s(13);
  s.input("x", {1, 4});
  s.node("Exp", {"x"}, "y", "ex");
  s.output("y");
  try {
    s.load();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'ex' (op_type Exp, opset 13)"), std::string::npos) << e.what();
  }
}

// ---- export -> import round trips ---------------------------------------------------------------

void expect_round_trip(const Graph& g, double tol = 1e-6) {
  const std::string bytes = export_onnx_bytes(g);
  OnnxImportOptions o;
  o.batch = g.value(g.inputs()[0]).shape[0];   // the file's batch is symbolic
  const Graph back = import_onnx_bytes(bytes, "roundtrip.onnx", o);
  const Tensor in = make_input(g);
  const auto want = run(g, {in}), got = run(back, {in});
  ASSERT_EQ(want.size(), got.size());
  for (std::size_t k = 0; k < want.size(); ++k) EXPECT_LT(rel_error(got[k], want[k]), tol);
}

TEST(OnnxRoundTrip, SmallZooModels) {
  for (const char* name : {"mlp", "lenet5", "resnet_mini", "mobilenet_mini", "vit_mini"}) {
    SCOPED_TRACE(name);
    ModelOptions mo;
    mo.batch = 2;
    expect_round_trip(build_model(name, mo));
  }
}

TEST(OnnxRoundTrip, Resnet18AndReducedBert) {
  expect_round_trip(build_model("resnet18"));
  // A reduced BERT: the bert_base structure (embeddings, post-LN encoder) with 2 layers, hidden 64.
  Builder b;
  const std::int64_t T = 16, C = 64;
  int x = b.input("input_ids", {2, T}, DType::i32);
  x = b.embedding("embeddings.word_embeddings", x, 100, C);
  x = b.add("embeddings.add", x, b.constant("embeddings.position_embeddings", {1, T, C}, 0.02f));
  x = b.layer_norm("embeddings.LayerNorm", x, 1e-12);
  for (int i = 0; i < 2; ++i) {
    const std::string p = "encoder.layer." + std::to_string(i);
    const int q = b.linear(p + ".q", x, C), k = b.linear(p + ".k", x, C), v = b.linear(p + ".v", x, C);
    x = b.layer_norm(p + ".ln1", b.add(p + ".add1", x, b.linear(p + ".o", b.attention(p + ".attn", q, k, v, 4), C)), 1e-12);
    const int m = b.linear(p + ".fc2", b.unary(p + ".gelu", OpKind::gelu, b.linear(p + ".fc1", x, 4 * C)), C);
    x = b.layer_norm(p + ".ln2", b.add(p + ".add2", x, m), 1e-12);
  }
  b.output(x);
  expect_round_trip(b.finish(), 1e-5);
}

// Every full-size zoo model, exported and re-imported with identical outputs (batch 1; the files
// are 14 MB to 440 MB in memory, a few seconds in all).
TEST(OnnxRoundTrip, FullSizeZooModels) {
  for (const char* name : {"mobilenet_v2", "resnet50", "vit_b16", "bert_base"}) {
    SCOPED_TRACE(name);
    expect_round_trip(build_model(name), 1e-5);
  }
}

TEST(OnnxRoundTrip, PrunedFileShrinksAndKeepsMasks) {
  Graph dense = build_model("resnet_mini");
  Graph pruned = dense.clone();
  PruneOptions po;
  po.pattern = Pattern::parse("unstructured");
  po.sparsity = 0.9;
  prune(pruned, po);
  OnnxExportReport rd, rp;
  export_onnx_bytes(dense, {}, &rd);
  const std::string bytes = export_onnx_bytes(pruned, {}, &rp);
  EXPECT_GT(rp.sparse_initializers, 0);
  EXPECT_LT(static_cast<double>(rp.file_bytes), 0.6 * static_cast<double>(rd.file_bytes));
  {  // standard ONNX: the reference checker accepts the file, sparse initializers included
    onnx::ModelProto m;
    ASSERT_TRUE(m.ParseFromString(bytes));
    EXPECT_NO_THROW(onnx::checker::check_model(m));
  }
  const Graph back = import_onnx_bytes(bytes, "pruned.onnx");
  int masked = 0;
  for (const auto& n : back.nodes()) masked += n.mask.defined();
  EXPECT_GT(masked, 0);
  const Tensor in = make_input(pruned);
  EXPECT_LT(rel_error(run(back, {in})[0], run(pruned, {in})[0]), 1e-6);
  // The importer accepts a model at another batch: symbolic batch in the file.
  OnnxImportOptions o;
  o.batch = 3;
  EXPECT_EQ(import_onnx_bytes(bytes, "pruned.onnx", o).value(0).shape[0], 3);
}

TEST(OnnxRoundTrip, BuildModelLoaderHook) {
  register_onnx_model_loader();
  const std::string path = ::testing::TempDir() + "sb_lenet5.onnx";
  export_onnx(build_model("lenet5"), path);
  ModelOptions mo;
  mo.batch = 4;
  const Graph g = build_model(path, mo);
  EXPECT_EQ(g.value(g.inputs()[0]).shape, (Shape{4, 1, 28, 28}));
  EXPECT_THROW(build_model(::testing::TempDir() + "missing.onnx"), Error);
}

// ---- malformed files ---------------------------------------------------------------------------

TEST(OnnxMalformed, TruncatedAndCorruptedFilesGiveErrors) {
  const std::string bytes = export_onnx_bytes(build_model("lenet5"));
  EXPECT_THROW(import_onnx_bytes("", "empty.onnx"), Error);
  EXPECT_THROW(import_onnx_bytes("this is not an onnx file at all", "text.onnx"), Error);
  for (std::size_t cut : {std::size_t{1}, std::size_t{7}, std::size_t{100}, bytes.size() / 3, bytes.size() / 2,
                          bytes.size() - 3}) {
    SCOPED_TRACE(cut);
    EXPECT_THROW(import_onnx_bytes(bytes.substr(0, cut), "truncated.onnx"), Error);
  }
  // Random byte flips: an error or a model, never a crash.
  Rng rng(99);
  int errors = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::string b = bytes;
    for (int k = 0; k < 4; ++k) b[rng.below(b.size())] = static_cast<char>(rng.below(256));
    try {
      import_onnx_bytes(b, "corrupted.onnx");
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

// ---- elementwise and reduction ops on their own ------------------------------------------------

// The executor with NaN-poisoned buffers (arena before every run), so an element a loop misses
// shows up as NaN.
std::vector<Tensor> run_poisoned(const Graph& g, const std::vector<Tensor>& in) {
  CompileOptions co;
  co.kernel = "dense";
  co.poison = true;
  Executor ex(g, co);
  return ex.run(in);
}

int count_op(const Graph& g, OpKind op) {
  int c = 0;
  for (const auto& n : g.nodes()) c += n.op == op;
  return c;
}

// Row-major flat index of `idx` in `shape` with numpy broadcasting (`idx` over the output's dims).
std::int64_t bcast_at(const Shape& shape, const Shape& out, const std::vector<std::int64_t>& idx) {
  const std::size_t off = out.size() - shape.size();
  std::int64_t at = 0;
  for (std::size_t k = 0; k < shape.size(); ++k) at = at * shape[k] + (shape[k] == 1 ? 0 : idx[k + off]);
  return at;
}

// A reference for y = f(a, b) with numpy broadcasting, in double.
template <class F>
Tensor bcast_ref(const Tensor& a, const Tensor& b, const Shape& out, F f) {
  Tensor y = Tensor::empty(out);
  std::vector<std::int64_t> idx(out.size(), 0);
  for (std::int64_t e = 0; e < y.numel(); ++e) {
    const double u = a.data<float>()[bcast_at(a.shape(), out, idx)], v = b.data<float>()[bcast_at(b.shape(), out, idx)];
    y.data<float>()[e] = static_cast<float>(f(u, v));
    for (std::size_t k = out.size(); k-- > 0;) {
      if (++idx[k] < out[k]) break;
      idx[k] = 0;
    }
  }
  return y;
}

void expect_no_nan(const Tensor& t) {
  for (std::int64_t k = 0; k < t.numel(); ++k) ASSERT_FALSE(std::isnan(t.data<float>()[k])) << "element " << k;
}

// Sigmoid, Tanh, Erf, Sqrt, Pow, Mul standalone: SiLU x * sigmoid(x), tanh(x), erf(x),
// sqrt(x^2 + 1), against direct computations; then exported and re-imported.
TEST(OnnxElementwise, UnaryOpsAndSiluStandalone) {
  const Shape s = {2, 3, 5};
  OnnxFile f;
  f.input("x", s);
  f.node("Sigmoid", {"x"}, "sig");
  f.node("Mul", {"x", "sig"}, "silu");
  f.node("Tanh", {"x"}, "tanh");
  f.node("Erf", {"x"}, "erf");
  f.node("Pow", {"x", f.scalar("two", 2.0f)}, "sq");
  f.node("Add", {"sq", f.scalar("one", 1.0f)}, "sq1");
  f.node("Sqrt", {"sq1"}, "norm");
  for (const char* o : {"silu", "tanh", "erf", "norm"}) f.output(o);
  const Graph g = f.load();
  for (OpKind op : {OpKind::sigmoid, OpKind::mul, OpKind::tanh, OpKind::erf, OpKind::pow, OpKind::sqrt})
    EXPECT_EQ(count_op(g, op), 1) << op_name(op);
  Rng rng(11);
  const Tensor x = random_tensor(s, rng, -3.f, 3.f);
  const auto got = run_poisoned(g, {x});
  ASSERT_EQ(got.size(), 4u);
  std::vector<Tensor> want;
  for (int k = 0; k < 4; ++k) want.push_back(Tensor::empty(s));
  for (std::int64_t k = 0; k < x.numel(); ++k) {
    const double v = x.data<float>()[k];
    want[0].data<float>()[k] = static_cast<float>(v / (1 + std::exp(-v)));
    want[1].data<float>()[k] = static_cast<float>(std::tanh(v));
    want[2].data<float>()[k] = static_cast<float>(std::erf(v));
    want[3].data<float>()[k] = static_cast<float>(std::sqrt(v * v + 1));
  }
  for (int k = 0; k < 4; ++k) {
    SCOPED_TRACE(k);
    expect_no_nan(got[k]);
    EXPECT_LT(rel_error(got[k], want[k]), 1e-6);
  }
  // Export writes the standard ops back (the reference checker accepts the file); re-import runs the same.
  const std::string bytes = export_onnx_bytes(g);
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  EXPECT_NO_THROW(onnx::checker::check_model(m));
  std::set<std::string> types;
  for (const auto& n : m.graph().node()) types.insert(n.op_type());
  for (const char* t : {"Sigmoid", "Mul", "Tanh", "Erf", "Pow", "Sqrt"}) EXPECT_TRUE(types.count(t)) << t;
  OnnxImportOptions o;
  o.batch = 2;
  const auto back = run_poisoned(import_onnx_bytes(bytes, "ew.onnx", o), {x});
  for (int k = 0; k < 4; ++k) EXPECT_LT(rel_error(back[k], got[k]), 1e-7);
}

// Sub, Div, Mul, Pow between computed tensors with numpy broadcasting either way round, and by
// constants that cannot be folded into a layer (c - x, x / c).
TEST(OnnxElementwise, BinaryOpsBroadcast) {
  // All inputs at batch 2 (the exported file's batch is symbolic, re-imported at one batch).
  const Shape sa = {2, 3, 4}, sb = {2, 3, 1}, sc = {2, 1, 4};
  OnnxFile f;
  f.input("a", sa);
  f.input("b", sb);
  f.input("c", sc);
  f.node("Sub", {"a", "b"}, "a_minus_b");
  f.node("Sub", {"b", "a"}, "b_minus_a");
  f.node("Div", {"a", "c"}, "a_div_c");
  f.node("Mul", {"c", "b"}, "c_mul_b");          // [2, 1, 4] x [2, 3, 1] -> [2, 3, 4]: both broadcast
  f.node("Pow", {"c", "b"}, "c_pow_b");          // tensor exponent
  Rng rng(5);
  Tensor k = random_tensor({3, 4}, rng);
  f.node("Sub", {f.init("k", k), "a"}, "k_minus_a");   // constant first operand, of lower rank
  f.node("Div", {"a", f.init("kd", Tensor::full({4}, 4.f))}, "a_div_4");
  for (const char* o : {"a_minus_b", "b_minus_a", "a_div_c", "c_mul_b", "c_pow_b", "k_minus_a", "a_div_4"}) f.output(o);
  const Graph g = f.load();
  EXPECT_EQ(count_op(g, OpKind::sub), 3);
  EXPECT_EQ(count_op(g, OpKind::div), 2);
  const Tensor a = random_tensor(sa, rng), b = random_tensor(sb, rng), c = random_tensor(sc, rng, 0.5f, 2.f);
  const auto got = run_poisoned(g, {a, b, c});
  ASSERT_EQ(got.size(), 7u);
  const Tensor want[] = {
      bcast_ref(a, b, sa, [](double u, double v) { return u - v; }),
      bcast_ref(b, a, sa, [](double u, double v) { return u - v; }),
      bcast_ref(a, c, sa, [](double u, double v) { return u / v; }),
      bcast_ref(c, b, sa, [](double u, double v) { return u * v; }),
      bcast_ref(c, b, sa, [](double u, double v) { return std::pow(u, v); }),
      bcast_ref(k, a, sa, [](double u, double v) { return u - v; }),
      bcast_ref(a, Tensor::full({1}, 4.f), sa, [](double u, double v) { return u / v; }),
  };
  for (int i = 0; i < 7; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].shape(), want[i].shape());
    expect_no_nan(got[i]);
    EXPECT_LT(rel_error(got[i], want[i]), 1e-6);
  }
  // Export, re-import: the same outputs.
  OnnxImportOptions o;
  o.batch = 2;
  const auto back = run_poisoned(import_onnx_bytes(export_onnx_bytes(g), "bin.onnx", o), {a, b, c});
  for (int i = 0; i < 7; ++i) EXPECT_LT(rel_error(back[i], got[i]), 1e-7) << i;
}

// ReduceMean over the last axis (kept), over a middle axis (dropped), over everything, and with the
// axes as an input (opset 18); x - mean(x) on its own (not a LayerNorm).
TEST(OnnxElementwise, ReduceMean) {
  const Shape s = {2, 3, 5};
  Rng rng(9);
  const Tensor x = random_tensor(s, rng);
  auto mean = [&](bool d0, bool d1, bool d2) {
    Shape o = {d0 ? 1 : 2, d1 ? 1 : 3, d2 ? 1 : 5};
    Tensor y = Tensor::zeros(o);
    const double cnt = (d0 ? 2 : 1) * (d1 ? 3 : 1) * (d2 ? 5 : 1);
    for (std::int64_t i = 0; i < 2; ++i)
      for (std::int64_t j = 0; j < 3; ++j)
        for (std::int64_t l = 0; l < 5; ++l)
          y.data<float>()[((d0 ? 0 : i) * o[1] + (d1 ? 0 : j)) * o[2] + (d2 ? 0 : l)] +=
              static_cast<float>(x.data<float>()[(i * 3 + j) * 5 + l] / cnt);
    return y;
  };
  for (int opset : {13, 18}) {
    SCOPED_TRACE(opset);
    OnnxFile f(opset);
    f.input("x", s);
    auto reduce = [&](const std::vector<std::int64_t>& axes, int keep, const std::string& out) {
      auto* n = opset >= 18 && !axes.empty() ? f.node("ReduceMean", {"x", f.ints(out + "_axes", axes)}, out)
                                             : f.node("ReduceMean", {"x"}, out);
      if (opset < 18 && !axes.empty()) f.is(n, "axes", axes);
      f.i(n, "keepdims", keep);
    };
    reduce({-1}, 1, "m_last");
    reduce({1}, 0, "m_mid");
    reduce({}, 0, "m_all");
    f.node("Sub", {"x", "m_last"}, "centered");
    for (const char* o : {"m_last", "m_mid", "m_all", "centered"}) f.output(o);
    const Graph g = f.load();
    EXPECT_EQ(count_op(g, OpKind::reduce_mean), 3);
    EXPECT_EQ(count_op(g, OpKind::layer_norm), 0);
    const auto got = run_poisoned(g, {x});
    ASSERT_EQ(got.size(), 4u);
    Tensor m_mid = mean(false, true, false);
    m_mid = m_mid.reshape({2, 5});
    Tensor m_all = mean(true, true, true).reshape({});
    const Tensor m_last = mean(false, false, true);
    const Tensor centered = bcast_ref(x, m_last, s, [](double u, double v) { return u - v; });
    const Tensor want[] = {m_last, m_mid, m_all, centered};
    for (int i = 0; i < 4; ++i) {
      SCOPED_TRACE(i);
      EXPECT_EQ(got[i].shape(), want[i].shape());
      expect_no_nan(got[i]);
      EXPECT_LT(rel_error(got[i], want[i]), 1e-6);
    }
    OnnxImportOptions o;
    o.batch = 2;
    const auto back = run_poisoned(import_onnx_bytes(export_onnx_bytes(g), "rm.onnx", o), {x});
    for (int i = 0; i < 4; ++i) EXPECT_LT(rel_error(back[i], got[i]), 1e-7) << i;
  }
}

}  // namespace
}  // namespace sb
