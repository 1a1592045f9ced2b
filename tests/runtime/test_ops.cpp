// Every executor op against a naive double-precision reference written here, on fresh random
// data with odd shapes, the activation arena poisoned with NaN.
#include <gtest/gtest.h>

#include <cmath>

#include <fmt/format.h>

#include "runtime/runtime_helpers.h"
#include "sparsebench/core/cpu_info.h"
#include "sparsebench/runtime/executor.h"
#include "sparsebench/runtime/passes.h"

namespace sb {
namespace {

using test::Ref;
using test::random_tensor;
using test::rel_error;

constexpr double kTol = 1e-5;

CompileOptions debug_options(const std::string& kernel = "dense") {
  CompileOptions o;
  o.kernel = kernel;
  o.poison = true;
  o.auto_min_seconds = 0;
  o.auto_min_reps = 1;
  return o;
}

Tensor run1(const Graph& g, const std::vector<Tensor>& inputs, const CompileOptions& o = debug_options()) {
  Executor ex(g, o);
  std::vector<Tensor> out;
  // Outputs poisoned too: every element must be written.
  out.push_back(Tensor::empty(g.value(g.outputs()[0]).shape));
  out[0].fill_nan();
  ex.run(inputs, out);
  ex.run(inputs, out);  // twice: a second run over the reused arena gives the same answer
  return out[0];
}

// ---- references ---------------------------------------------------------------------------------

Ref conv_ref(const Ref& x, const Tensor& w, const Tensor& bias, const Attrs& a) {
  const std::int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const std::int64_t O = w.size(0), Cg = w.size(1), kh = w.size(2), kw = w.size(3), G = a.groups;
  const std::int64_t Ho = (H + 2 * a.padding[0] - a.dilation[0] * (kh - 1) - 1) / a.stride[0] + 1;
  const std::int64_t Wo = (W + 2 * a.padding[1] - a.dilation[1] * (kw - 1) - 1) / a.stride[1] + 1;
  Ref y({N, O, Ho, Wo});
  const float* wp = w.data<float>();
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < O; ++o) {
      const std::int64_t g = o / (O / G);
      for (std::int64_t oy = 0; oy < Ho; ++oy)
        for (std::int64_t ox = 0; ox < Wo; ++ox) {
          double acc = bias.defined() ? bias.data<float>()[o] : 0.0;
          for (std::int64_t c = 0; c < Cg; ++c)
            for (std::int64_t ky = 0; ky < kh; ++ky)
              for (std::int64_t kx = 0; kx < kw; ++kx) {
                const std::int64_t iy = oy * a.stride[0] - a.padding[0] + ky * a.dilation[0];
                const std::int64_t ix = ox * a.stride[1] - a.padding[1] + kx * a.dilation[1];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += wp[((o * Cg + c) * kh + ky) * kw + kx] * x({n, g * Cg + c, iy, ix});
              }
          y({n, o, oy, ox}) = acc;
        }
    }
  (void)C;
  return y;
}

Ref linear_ref(const Ref& x, const Tensor& w, const Tensor& bias) {
  const std::int64_t K = x.shape.back(), M = w.size(0), rows = shape_numel(x.shape) / K;
  Shape s = x.shape;
  s.back() = M;
  Ref y(s);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t m = 0; m < M; ++m) {
      double acc = bias.defined() ? bias.data<float>()[m] : 0.0;
      for (std::int64_t k = 0; k < K; ++k) acc += static_cast<double>(w.data<float>()[m * K + k]) * x.v[r * K + k];
      y.v[r * M + m] = acc;
    }
  return y;
}

// ---- conv2d -------------------------------------------------------------------------------------

struct ConvCase {
  std::int64_t n, c, h, w, out, k, stride, pad, groups, dil;
  bool bias;
};

class ConvTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvTest, MatchesReference) {
  const ConvCase p = GetParam();
  Rng rng(0xc0 + p.c * 7 + p.k);
  Builder b(0xabc + p.out);
  const int x = b.input("x", {p.n, p.c, p.h, p.w});
  const int y = b.conv2d("conv", x, p.out, p.k, p.stride, p.pad, p.groups, p.bias, p.dil);
  b.output(y);
  Graph g = b.finish();
  Node& node = g.nodes()[0];
  if (p.bias) rng.fill_uniform(node.params["bias"], -1.f, 1.f);
  const Tensor xin = random_tensor({p.n, p.c, p.h, p.w}, rng);
  const Ref want = conv_ref(Ref::from(xin), node.param("weight"), p.bias ? node.param("bias") : Tensor(), node.attrs);
  // kOnednnConvName: oneDNN's convolution primitive (groups = 1; the others keep their paths).
  for (const char* kernel : {"dense", "auto", kOnednnConvName}) {
    const Tensor got = run1(g, {xin}, debug_options(kernel));
    EXPECT_LE(rel_error(got, want), kTol) << kernel;
  }
  EXPECT_GT(test::max_abs(run1(g, {xin})), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvTest,
                         ::testing::Values(ConvCase{2, 3, 9, 7, 5, 3, 1, 1, 1, 1, true},     // 3x3 pad 1, odd sizes
                                           ConvCase{1, 4, 8, 8, 6, 1, 1, 0, 1, 1, false},    // 1x1 direct GEMM
                                           ConvCase{3, 5, 11, 10, 7, 1, 2, 0, 1, 1, true},   // 1x1 stride 2
                                           ConvCase{2, 3, 13, 12, 4, 5, 2, 2, 1, 1, false},  // 5x5 stride 2
                                           ConvCase{1, 6, 9, 9, 6, 3, 1, 1, 6, 1, true},     // depthwise
                                           ConvCase{2, 8, 10, 9, 8, 3, 2, 1, 8, 1, false},   // depthwise stride 2
                                           ConvCase{2, 6, 8, 7, 9, 3, 1, 1, 3, 1, true},     // grouped
                                           ConvCase{1, 4, 12, 11, 5, 3, 1, 2, 1, 2, true},   // dilated
                                           ConvCase{2, 4, 14, 14, 4, 3, 1, 2, 4, 2, false},  // dilated depthwise
                                           ConvCase{1, 3, 16, 16, 8, 4, 4, 0, 1, 1, true},   // patch embedding
                                           // Depthwise, register-blocked AVX-512 path: rows wider than
                                           // one 64-column block, tails of 1..15, odd strides / pads,
                                           // kernels up to 7 wide and one past it (generic loop).
                                           ConvCase{2, 5, 7, 83, 5, 3, 1, 1, 5, 1, true},    // 2 blocks, tail 3
                                           ConvCase{1, 4, 9, 131, 4, 3, 2, 1, 4, 1, true},   // stride 2, odd W
                                           ConvCase{1, 3, 6, 17, 3, 3, 2, 0, 3, 1, false},   // stride 2, no pad
                                           ConvCase{1, 3, 11, 33, 3, 5, 2, 2, 3, 1, true},   // 5x5 stride 2
                                           ConvCase{2, 3, 10, 21, 3, 7, 1, 3, 3, 1, false},  // 7x7 pad 3
                                           ConvCase{1, 2, 9, 40, 2, 3, 2, 2, 2, 2, true},    // dilated stride 2
                                           ConvCase{1, 2, 5, 3, 2, 3, 1, 1, 2, 1, true},     // narrower than a vector
                                           ConvCase{1, 3, 12, 19, 3, 9, 1, 4, 3, 1, true},   // 9 wide: generic loop
                                           ConvCase{1, 4, 9, 20, 4, 3, 3, 1, 4, 1, true}));  // stride 3: generic loop

// Implicit im2col (executor.h): a pruned stride-1 convolution whose kernel reads shifted rows of
// the zero-padded input, against the reference on the masked weight. Kernel sizes 1 to 5, padding
// 0 to wider than half the kernel, batch 1 to 3, odd sizes, k over several column panels, ReLU /
// ReLU6 fused or none, with and without bias; each ISA variant of the kernel that reads them.
struct ImplicitCase {
  std::int64_t n, c, h, w, out, k, pad;
  bool bias;
  OpKind act;  // relu, relu6, or add for none
};

class ImplicitConvTest : public ::testing::TestWithParam<ImplicitCase> {};

TEST_P(ImplicitConvTest, MatchesReference) {
  const ImplicitCase p = GetParam();
  int ran = 0;
  // Every kernel that reads shifted rows, on a weight of its pattern.
  const std::pair<const char*, const char*> kernels[] = {{"unstructured", "f32_spmm_csr_kpanel__avx512"},
                                                         {"unstructured", "f32_spmm_csr_kpanel__avx2"},
                                                         {"block:4x4", "f32_spmm_bsr_4x64__avx512"},
                                                         {"block:4x1", "f32_spmm_bsr_4x16__avx2"},
                                                         {"block:2x4", "f32_spmm_bsr_4x8__scalar"},
                                                         {"balanced:bank=8", "f32_spmm_balanced_kpanel__avx512"},
                                                         {"nm:2:4", "f32_spmm_balanced_kpanel__avx2"}};
  for (const auto& [pattern, kernel] : kernels) {
    const std::string name = kernel;
    const Isa need = name.find("avx512") != std::string::npos ? Isa::avx512
                     : name.find("avx2") != std::string::npos ? Isa::avx2
                                                              : Isa::scalar;
    if (max_isa() < need) {
      std::cout << "[ note     ] " << kernel << ": this CPU lacks its ISA\n";
      continue;
    }
    Rng rng(0x1c + p.c * 5 + p.k);
    Builder b(0x5bc + p.out);
    const int x = b.input("x", {p.n, p.c, p.h, p.w});
    int y = b.conv2d("conv", x, p.out, p.k, 1, p.pad, 1, p.bias);
    if (p.act != OpKind::add) y = b.unary("act", p.act, y);
    b.output(y);
    Graph g = b.finish();
    if (p.bias) rng.fill_uniform(g.nodes()[0].params["bias"], -1.f, 1.f);
    // The only layer reads the input and writes the output: prunable only when named.
    prune(g, PruneOptions{Pattern::parse(pattern), 0.7, Allocation::uniform, {}, {"conv"}});
    const Node& node = g.nodes()[0];
    if (!node.mask.defined() || node.sparsity == 0) {  // 4-wide blocks, or 2:4, on a 2-column weight
      std::cout << "[ note     ] " << pattern << " prunes nothing of this layer: it stays dense\n";
      continue;
    }
    const Tensor xin = random_tensor({p.n, p.c, p.h, p.w}, rng);
    Ref want = conv_ref(Ref::from(xin), node.param("weight"), p.bias ? node.param("bias") : Tensor(), node.attrs);
    for (double& v : want.v)
      v = p.act == OpKind::relu ? std::max(v, 0.0) : p.act == OpKind::relu6 ? std::min(std::max(v, 0.0), 6.0) : v;
    for (const ConvInput in : {ConvInput::implicit, ConvInput::im2col, ConvInput::timed}) {
      CompileOptions o = debug_options(kernel);
      o.conv_input = in;
      const Tensor got = run1(g, {xin}, o);
      EXPECT_LE(rel_error(got, want), kTol) << kernel << " conv_input " << static_cast<int>(in);
      EXPECT_GT(test::max_abs(got), 0.0) << kernel;
      const bool implicit = Executor(g, o).plan().front().implicit_im2col;
      if (in == ConvInput::implicit) EXPECT_TRUE(implicit) << kernel << ": the forced implicit path did not run";
      if (in == ConvInput::im2col) EXPECT_FALSE(implicit) << kernel;
      ++ran;
    }
  }
  EXPECT_GT(ran, 0) << "no kernel that reads shifted rows runs on this CPU";
}

INSTANTIATE_TEST_SUITE_P(Shapes, ImplicitConvTest,
                         ::testing::Values(ImplicitCase{1, 3, 5, 7, 5, 3, 1, true, OpKind::relu},     // tiny, batch 1
                                           ImplicitCase{3, 4, 9, 7, 6, 3, 1, false, OpKind::relu6},   // batch 3, odd
                                           ImplicitCase{2, 5, 11, 10, 7, 5, 2, true, OpKind::add},    // 5x5
                                           ImplicitCase{2, 3, 8, 9, 4, 3, 0, false, OpKind::add},     // no padding
                                           ImplicitCase{1, 2, 6, 5, 3, 1, 1, true, OpKind::relu},     // 1x1 padded
                                           ImplicitCase{1, 8, 13, 17, 9, 3, 2, true, OpKind::relu},   // pad > k / 2
                                           ImplicitCase{2, 70, 12, 12, 20, 3, 1, true, OpKind::relu},  // 10 panels of k
                                           ImplicitCase{1, 16, 7, 7, 33, 3, 1, false, OpKind::add}),  // resnet's 7x7
                         [](const auto& info) {
                           const ImplicitCase& c = info.param;
                           return fmt::format("n{}_c{}_{}x{}_o{}_k{}_p{}", c.n, c.c, c.h, c.w, c.out, c.k, c.pad);
                         });

// ---- linear / matmul ----------------------------------------------------------------------------

TEST(Ops, LinearRank2And3) {
  Rng rng(11);
  for (const Shape& xs : {Shape{5, 13}, Shape{3, 7, 13}}) {
    Builder b(3);
    const int x = b.input("x", xs);
    b.output(b.linear("fc", x, 9, true));
    Graph g = b.finish();
    rng.fill_uniform(g.nodes()[0].params["bias"], -1.f, 1.f);
    const Tensor xin = random_tensor(xs, rng);
    const Ref want = linear_ref(Ref::from(xin), g.nodes()[0].param("weight"), g.nodes()[0].param("bias"));
    EXPECT_LE(rel_error(run1(g, {xin}), want), kTol) << shape_to_string(xs);
  }
}

TEST(Ops, MatMulBatched) {
  Rng rng(12);
  for (const auto& [as, bs] : {std::pair<Shape, Shape>{{3, 5, 7}, {3, 7, 4}}, {{2, 3, 6, 5}, {2, 3, 5, 9}}}) {
    Builder b;
    const int x = b.input("a", as), y = b.input("b", bs);
    b.output(b.matmul("mm", x, y));
    Graph g = b.finish();
    const Tensor ta = random_tensor(as, rng), tb = random_tensor(bs, rng);
    const Ref ra = Ref::from(ta), rb = Ref::from(tb);
    Shape os = as;
    os.back() = bs.back();
    Ref want(os);
    const std::int64_t M = as[as.size() - 2], K = as.back(), N = bs.back(), batch = shape_numel(as) / (M * K);
    for (std::int64_t e = 0; e < batch; ++e)
      for (std::int64_t i = 0; i < M; ++i)
        for (std::int64_t j = 0; j < N; ++j) {
          double acc = 0;
          for (std::int64_t k = 0; k < K; ++k) acc += ra.v[(e * M + i) * K + k] * rb.v[(e * K + k) * N + j];
          want.v[(e * M + i) * N + j] = acc;
        }
    EXPECT_LE(rel_error(run1(g, {ta, tb}), want), kTol);
  }
}

// ---- elementwise, normalization -----------------------------------------------------------------

TEST(Ops, UnaryAndAdd) {
  Rng rng(13);
  const Shape s{2, 5, 3, 7};
  for (OpKind op : {OpKind::relu, OpKind::relu6, OpKind::gelu}) {
    Builder b;
    const int x = b.input("x", s);
    b.output(b.unary("act", op, x));
    const Graph g = b.finish();
    const Tensor xin = random_tensor(s, rng, -8.f, 8.f);
    Ref want = Ref::from(xin);
    for (double& v : want.v)
      v = op == OpKind::relu ? std::max(v, 0.0)
          : op == OpKind::relu6 ? std::min(std::max(v, 0.0), 6.0)
                                : 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    EXPECT_LE(rel_error(run1(g, {xin}), want), kTol) << op_name(op);
  }
  for (const Shape& bs : {Shape{3, 4, 6}, Shape{1, 4, 6}}) {
    Builder b;
    const int x = b.input("a", {3, 4, 6}), y = b.input("b", bs);
    b.output(b.add("add", x, y));
    const Graph g = b.finish();
    const Tensor ta = random_tensor({3, 4, 6}, rng), tb = random_tensor(bs, rng);
    Ref want = Ref::from(ta);
    const Ref rb = Ref::from(tb);
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t j = 0; j < 24; ++j) want.v[i * 24 + j] += rb.v[(bs[0] == 1 ? 0 : i) * 24 + j];
    EXPECT_LE(rel_error(run1(g, {ta, tb}), want), kTol) << shape_to_string(bs);
  }
}

TEST(Ops, BatchNormUnfolded) {
  Rng rng(14);
  Builder b(5);
  const int x = b.input("x", {3, 4, 5, 3});
  b.output(b.batch_norm("bn", x));
  const Graph g = b.finish();
  const Tensor xin = random_tensor({3, 4, 5, 3}, rng);
  const Node& n = g.nodes()[0];
  Ref want = Ref::from(xin);
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t c = 0; c < 4; ++c)
      for (std::int64_t j = 0; j < 15; ++j) {
        double& v = want.v[(i * 4 + c) * 15 + j];
        v = (v - n.param("running_mean").data<float>()[c]) /
                std::sqrt(static_cast<double>(n.param("running_var").data<float>()[c]) + n.attrs.eps) *
                n.param("weight").data<float>()[c] +
            n.param("bias").data<float>()[c];
      }
  EXPECT_LE(rel_error(run1(g, {xin}), want), kTol);
}

TEST(Ops, LayerNormRank3AndRank4) {
  Rng rng(15);
  for (const Shape& s : {Shape{2, 5, 12}, Shape{2, 3, 4, 9}}) {
    Builder b;
    const int x = b.input("x", s);
    b.output(b.layer_norm("ln", x, 1e-5));
    Graph g = b.finish();
    rng.fill_uniform(g.nodes()[0].params["weight"], 0.5f, 1.5f);
    rng.fill_uniform(g.nodes()[0].params["bias"], -0.5f, 0.5f);
    const Tensor xin = random_tensor(s, rng, -2.f, 3.f);
    Ref want = Ref::from(xin);
    const std::int64_t C = s.back(), rows = shape_numel(s) / C;
    for (std::int64_t r = 0; r < rows; ++r) {
      double mu = 0, var = 0;
      for (std::int64_t c = 0; c < C; ++c) mu += want.v[r * C + c];
      mu /= static_cast<double>(C);
      for (std::int64_t c = 0; c < C; ++c) var += (want.v[r * C + c] - mu) * (want.v[r * C + c] - mu);
      var /= static_cast<double>(C);
      for (std::int64_t c = 0; c < C; ++c)
        want.v[r * C + c] = (want.v[r * C + c] - mu) / std::sqrt(var + 1e-5) * g.nodes()[0].param("weight").data<float>()[c] +
                            g.nodes()[0].param("bias").data<float>()[c];
    }
    EXPECT_LE(rel_error(run1(g, {xin}), want), 1e-5) << shape_to_string(s);
  }
}

TEST(Ops, SoftmaxEveryAxis) {
  Rng rng(16);
  const Shape s{2, 3, 5, 4};
  for (std::int64_t axis : {3, 1, 0, -2}) {
    Builder b;
    const int x = b.input("x", s);
    b.output(b.softmax("sm", x, axis));
    const Graph g = b.finish();
    const Tensor xin = random_tensor(s, rng, -4.f, 4.f);
    Ref want = Ref::from(xin);
    const std::int64_t a = axis < 0 ? axis + 4 : axis;
    std::int64_t inner = 1;
    for (std::int64_t d = a + 1; d < 4; ++d) inner *= s[d];
    const std::int64_t L = s[a], outer = shape_numel(s) / (L * inner);
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i) {
        double sum = 0;
        for (std::int64_t l = 0; l < L; ++l) sum += std::exp(want.v[(o * L + l) * inner + i]);
        for (std::int64_t l = 0; l < L; ++l) want.v[(o * L + l) * inner + i] = std::exp(want.v[(o * L + l) * inner + i]) / sum;
      }
    EXPECT_LE(rel_error(run1(g, {xin}), want), kTol) << axis;
  }
}

// ---- pooling ------------------------------------------------------------------------------------

TEST(Ops, Pools) {
  Rng rng(17);
  const Shape s{2, 3, 9, 8};
  const Tensor xin = random_tensor(s, rng);
  const Ref rx = Ref::from(xin);
  for (bool is_max : {true, false})
    for (auto [k, st, pad] : {std::tuple<int, int, int>{3, 2, 1}, {2, 2, 0}, {3, 1, 0}}) {
      Builder b;
      const int x = b.input("x", s);
      b.output(is_max ? b.max_pool("pool", x, k, st, pad) : b.avg_pool("pool", x, k, st, pad));
      const Graph g = b.finish();
      const Shape& os = g.value(g.outputs()[0]).shape;
      Ref want(os);
      for (std::int64_t n = 0; n < 2; ++n)
        for (std::int64_t c = 0; c < 3; ++c)
          for (std::int64_t oy = 0; oy < os[2]; ++oy)
            for (std::int64_t ox = 0; ox < os[3]; ++ox) {
              double acc = is_max ? -INFINITY : 0;
              for (int ky = 0; ky < k; ++ky)
                for (int kx = 0; kx < k; ++kx) {
                  const std::int64_t iy = oy * st - pad + ky, ix = ox * st - pad + kx;
                  if (iy < 0 || iy >= 9 || ix < 0 || ix >= 8) continue;
                  acc = is_max ? std::max(acc, rx({n, c, iy, ix})) : acc + rx({n, c, iy, ix});
                }
              want({n, c, oy, ox}) = is_max ? acc : acc / (k * k);
            }
      EXPECT_LE(rel_error(run1(g, {xin}), want), kTol) << is_max << " " << k << " " << st << " " << pad;
    }
  Builder b;
  b.output(b.global_avg_pool("gap", b.input("x", s)));
  Ref want({2, 3, 1, 1});
  for (std::int64_t i = 0; i < 6; ++i) {
    for (std::int64_t j = 0; j < 72; ++j) want.v[i] += rx.v[i * 72 + j];
    want.v[i] /= 72;
  }
  EXPECT_LE(rel_error(run1(b.finish(), {xin}), want), kTol);
}

// ---- data movement ------------------------------------------------------------------------------

TEST(Ops, FlattenReshapeTransposeSelect) {
  Rng rng(18);
  const Shape s{2, 3, 4, 5};
  const Tensor xin = random_tensor(s, rng);
  const Ref rx = Ref::from(xin);
  {
    Builder b;
    b.output(b.flatten("f", b.input("x", s), 2));
    EXPECT_LE(rel_error(run1(b.finish(), {xin}), Ref{Shape{2, 3, 20}, rx.v}), 0.0);
  }
  {
    Builder b;
    b.output(b.reshape("r", b.input("x", s), {-1, 6, 10}));
    EXPECT_LE(rel_error(run1(b.finish(), {xin}), Ref{Shape{2, 6, 10}, rx.v}), 0.0);
  }
  {
    Builder b;
    b.output(b.transpose("t", b.input("x", s), 1, 3));
    Ref want({2, 5, 4, 3});
    for (std::int64_t n = 0; n < 2; ++n)
      for (std::int64_t c = 0; c < 3; ++c)
        for (std::int64_t h = 0; h < 4; ++h)
          for (std::int64_t w = 0; w < 5; ++w) want({n, w, h, c}) = rx({n, c, h, w});
    EXPECT_LE(rel_error(run1(b.finish(), {xin}), want), 0.0);
  }
  {
    Builder b;
    b.output(b.select("s", b.input("x", {2, 4, 6}), 1, 2));
    const Tensor x3 = random_tensor({2, 4, 6}, rng);
    const Ref r3 = Ref::from(x3);
    Ref want({2, 6});
    for (std::int64_t n = 0; n < 2; ++n)
      for (std::int64_t j = 0; j < 6; ++j) want({n, j}) = r3({n, 2, j});
    EXPECT_LE(rel_error(run1(b.finish(), {x3}), want), 0.0);
  }
}

TEST(Ops, ConcatAndClassToken) {
  Rng rng(19);
  for (std::int64_t axis : {1, 2, 0}) {
    Shape s1{2, 3, 4}, s2{2, 3, 4};
    s2[axis] = 5;
    Builder b;
    b.output(b.concat("cat", {b.input("a", s1), b.input("b", s2)}, axis));
    const Graph g = b.finish();
    const Tensor t1 = random_tensor(s1, rng), t2 = random_tensor(s2, rng);
    const Ref r1 = Ref::from(t1), r2 = Ref::from(t2);
    Ref want(g.value(g.outputs()[0]).shape);
    for (std::int64_t i = 0; i < want.shape[0]; ++i)
      for (std::int64_t j = 0; j < want.shape[1]; ++j)
        for (std::int64_t k = 0; k < want.shape[2]; ++k) {
          const std::int64_t idx[3] = {i, j, k};
          const bool first = idx[axis] < s1[axis];
          std::int64_t src[3] = {i, j, k};
          if (!first) src[axis] -= s1[axis];
          want({i, j, k}) = first ? r1({src[0], src[1], src[2]}) : r2({src[0], src[1], src[2]});
        }
    EXPECT_LE(rel_error(run1(g, {t1, t2}), want), 0.0) << axis;
  }
  Builder b(7);
  b.output(b.cls_token("cls", b.input("x", {3, 4, 6})));
  const Graph g = b.finish();
  const Tensor xin = random_tensor({3, 4, 6}, rng);
  const Ref rx = Ref::from(xin);
  Ref want({3, 5, 6});
  for (std::int64_t n = 0; n < 3; ++n)
    for (std::int64_t c = 0; c < 6; ++c) {
      want({n, 0, c}) = g.nodes()[0].param("token").data<float>()[c];
      for (std::int64_t t = 0; t < 4; ++t) want({n, t + 1, c}) = rx({n, t, c});
    }
  EXPECT_LE(rel_error(run1(g, {xin}), want), 0.0);
}

TEST(Ops, Embedding) {
  Builder b(9);
  b.output(b.embedding("emb", b.input("ids", {2, 5}, DType::i32), 11, 7));
  const Graph g = b.finish();
  std::vector<std::int32_t> ids = {0, 3, 10, 3, 7, 1, 2, 9, 5, 4};
  const Tensor tin = Tensor::from_data<std::int32_t>({2, 5}, ids.data());
  Ref want({2, 5, 7});
  const float* w = g.nodes()[0].param("weight").data<float>();
  for (std::size_t i = 0; i < ids.size(); ++i)
    for (int h = 0; h < 7; ++h) want.v[i * 7 + h] = w[ids[i] * 7 + h];
  EXPECT_LE(rel_error(run1(g, {tin}), want), 0.0);
  ids[4] = 11;
  Executor ex(g);
  const Tensor bad = Tensor::from_data<std::int32_t>({2, 5}, ids.data());
  EXPECT_THROW(ex.run({bad}), Error);
}

// The fused attention against a reference, and against the same attention composed of
// reshape / transpose / matmul / softmax nodes.
TEST(Ops, AttentionFusedAndComposed) {
  Rng rng(20);
  const std::int64_t B = 2, T = 7, C = 12, H = 3, d = C / H;
  Builder b;
  const int q = b.input("q", {B, T, C}), k = b.input("k", {B, T, C}), v = b.input("v", {B, T, C});
  b.output(b.attention("attn", q, k, v, H));
  const Graph fused = b.finish();
  const Tensor tq = random_tensor({B, T, C}, rng, -2.f, 2.f), tk = random_tensor({B, T, C}, rng, -2.f, 2.f),
               tv = random_tensor({B, T, C}, rng);
  const Ref rq = Ref::from(tq), rk = Ref::from(tk), rv = Ref::from(tv);
  Ref want({B, T, C});
  for (std::int64_t n = 0; n < B; ++n)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t i = 0; i < T; ++i) {
        std::vector<double> s(T);
        double mx = -INFINITY, sum = 0;
        for (std::int64_t j = 0; j < T; ++j) {
          s[j] = 0;
          for (std::int64_t c = 0; c < d; ++c) s[j] += rq({n, i, h * d + c}) * rk({n, j, h * d + c});
          s[j] /= std::sqrt(static_cast<double>(d));
          mx = std::max(mx, s[j]);
        }
        for (auto& x : s) sum += (x = std::exp(x - mx));
        for (std::int64_t c = 0; c < d; ++c) {
          double acc = 0;
          for (std::int64_t j = 0; j < T; ++j) acc += s[j] / sum * rv({n, j, h * d + c});
          want({n, i, h * d + c}) = acc;
        }
      }
  EXPECT_LE(rel_error(run1(fused, {tq, tk, tv}), want), kTol);

  Builder c;
  auto heads = [&](const std::string& p, int x) {
    return c.transpose(p + ".t", c.reshape(p + ".r", x, {B, T, H, d}), 1, 2);  // [B, H, T, d]
  };
  const int cq = heads("q", c.input("q", {B, T, C})), ck = heads("k", c.input("k", {B, T, C})),
            cv = heads("v", c.input("v", {B, T, C}));
  int s = c.matmul("scores", cq, c.transpose("kt", ck, 2, 3));  // [B, H, T, T]
  // 1/sqrt(d) through a constant-free route: scale q instead (a linear with identity weight would
  // also work); here q is pre-scaled on the host.
  s = c.softmax("softmax", s, -1);
  int o = c.matmul("context", s, cv);  // [B, H, T, d]
  o = c.reshape("merge", c.transpose("ot", o, 1, 2), {B, T, C});
  c.output(o);
  Tensor tq_scaled = tq.clone();
  for (std::int64_t i = 0; i < tq_scaled.numel(); ++i) tq_scaled.data<float>()[i] /= std::sqrt(static_cast<float>(d));
  EXPECT_LE(rel_error(run1(c.finish(), {tq_scaled, tk, tv}), want), kTol);
}

}  // namespace
}  // namespace sb
