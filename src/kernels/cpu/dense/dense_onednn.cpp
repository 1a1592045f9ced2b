// The dense baseline every speedup is measured against: oneDNN 2.6 on the masked dense weight.
// Two ways in, both registered (the benchmark keeps the faster per case):
// - onednn_sgemm: dnnl_sgemm, row-major, bias pre-filled into Y (beta = 1), ReLU as one pass after;
// - onednn_matmul: the matmul primitive, created once at initialize; bias pre-filled and added by
//   a sum post-op, ReLU as an eltwise post-op (both fused in brgemm).
// Threads: oneDNN's OpenMP runtime uses omp_get_max_threads(), which sb::set_num_threads sets.
#include <omp.h>

#include <unordered_map>

#include <dnnl.h>
#include <dnnl.hpp>

#include <fmt/format.h>

#include "kernels/cpu/common.h"
#include "kernels/internal.h"

namespace sb::cpu {
namespace {

// The weight as the dense library must see it: pruned entries zero.
Tensor masked_dense(const SpmmWeight& w) {
  Tensor wd = w.dense.clone();
  if (w.mask.defined()) {
    float* p = wd.data<float>();
    const std::uint8_t* m = w.mask.data<std::uint8_t>();
    for (std::int64_t i = 0; i < wd.numel(); ++i)
      if (!m[i]) p[i] = 0.f;
  }
  return wd;
}

Footprint dense_footprint(const SpmmDesc& d) {
  Footprint fp;
  fp.values = static_cast<std::size_t>(d.m * d.k) * sizeof(float);
  return fp;
}

// Y[i, :] = bias[i]: both ways in add the product to it (beta = 1, or the sum post-op).
void fill_bias(float* y, const float* bias, const SpmmDesc& d) {
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (std::int64_t i = 0; i < d.m; ++i)
    for (std::int64_t j = 0; j < d.n; ++j) y[i * d.n + j] = bias[i];
}

class SgemmOp final : public SpmmOp {
 public:
  SgemmOp(const SpmmDesc& d, Tensor w) : d_(d), w_(std::move(w)) {}
  void run(const float* x, float* y, const float* bias) override {
    const std::int64_t m = d_.m, n = d_.n, k = d_.k;
    const bool with_bias = d_.has_bias && bias;
    if (with_bias) fill_bias(y, bias, d_);
    const dnnl_status_t st = dnnl_sgemm('N', 'N', m, n, k, 1.f, w_.data<float>(), k, x, n,
                                        with_bias ? 1.f : 0.f, y, n);
    SB_CHECK(st == dnnl_success, "dnnl_sgemm {}x{}x{} failed with status {}", m, k, n,
             static_cast<int>(st));
    if (d_.relu) {
#pragma omp parallel for schedule(static) num_threads(num_threads())
      for (std::int64_t i = 0; i < m * n; ++i) y[i] = y[i] > 0.f ? y[i] : 0.f;
    }
  }
  Footprint footprint() const override { return dense_footprint(d_); }

 private:
  SpmmDesc d_;
  Tensor w_;
};

class MatmulOp final : public SpmmOp {
 public:
  MatmulOp(const SpmmDesc& d, Tensor w)
      : d_(d), w_(std::move(w)), eng_(dnnl::engine::kind::cpu, 0), strm_(eng_) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const dnnl::memory::dim m = d.m, k = d.k, n = d.n;
    // Y = W * X as oneDNN's dst = src * weights: the constant W is the src operand (row-major,
    // as stored), X the weights operand. The transposed form (W as weights in a packed layout,
    // X^T and Y^T through strides) was measured to fall back to ref:any / gemm:jit in 2.6, far
    // slower than this, which runs brg:avx512_core.
    const dnnl::memory::desc src_md({m, k}, dt::f32, tag::ab);
    const dnnl::memory::desc wei_md({k, n}, dt::f32, tag::ab);
    const dnnl::memory::desc dst_md({m, n}, dt::f32, tag::ab);
    // Our bias is one value per row of Y; a {m, 1} bias (or binary post-op) sends 2.6 to ref:any.
    // So the bias is pre-filled into Y and added by a sum post-op, which brgemm fuses.
    dnnl::post_ops po;
    if (d.has_bias) po.append_sum(1.f);
    if (d.relu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    const dnnl::matmul::desc md(src_md, wei_md, dst_md);
    pd_ = dnnl::matmul::primitive_desc(md, attr, eng_);
    prim_ = dnnl::matmul(pd_);
    w_mem_ = dnnl::memory(src_md, eng_, w_.data<float>());
    x_mem_ = dnnl::memory(wei_md, eng_, DNNL_MEMORY_NONE);
    dst_mem_ = dnnl::memory(dst_md, eng_, DNNL_MEMORY_NONE);
    impl_ = pd_.impl_info_str();
  }
  void run(const float* x, float* y, const float* bias) override {
    x_mem_.set_data_handle(const_cast<float*>(x));
    dst_mem_.set_data_handle(y);
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, w_mem_}, {DNNL_ARG_WEIGHTS, x_mem_}, {DNNL_ARG_DST, dst_mem_}};
    if (d_.has_bias) fill_bias(y, bias, d_);
    prim_.execute(strm_, args);
    strm_.wait();
  }
  Footprint footprint() const override { return dense_footprint(d_); }
  const std::string& impl() const { return impl_; }

 private:
  SpmmDesc d_;
  Tensor w_;
  dnnl::engine eng_;
  dnnl::stream strm_;
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul prim_;
  dnnl::memory w_mem_, x_mem_, dst_mem_;
  std::string impl_;
};

class OnednnImpl final : public SpmmImpl {
 public:
  explicit OnednnImpl(bool matmul) : matmul_(matmul) {}
  std::string name() const override { return matmul_ ? "onednn_matmul" : "onednn_sgemm"; }
  std::string library() const override { return "onednn"; }
  Format format() const override { return Format::dense; }
  Role role() const override { return Role::baseline; }
  bool can_implement(const SpmmDesc& d, const SpmmWeight& w, std::string* why) const override {
    return check_weight(d, w, why);
  }
  std::unique_ptr<SpmmOp> initialize(const SpmmDesc& d, const SpmmWeight& w) const override {
    Tensor wd = masked_dense(w);
    if (!matmul_) return std::make_unique<SgemmOp>(d, std::move(wd));
    try {
      return std::make_unique<MatmulOp>(d, std::move(wd));
    } catch (const dnnl::error& e) {
      fail(fmt::format("onednn_matmul {}x{}x{}: primitive creation failed: {}", d.m, d.k, d.n,
                       e.what()));
    }
  }

 private:
  bool matmul_;
};

}  // namespace
}  // namespace sb::cpu

namespace sb::detail {
void register_dense_baselines(SpmmRegistry& r) {
  r.add(std::make_unique<cpu::OnednnImpl>(true));
  r.add(std::make_unique<cpu::OnednnImpl>(false));
}
}  // namespace sb::detail
