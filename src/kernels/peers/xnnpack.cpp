// XNNPACK (Debian snapshot 2022-02): sparse inference through a 1x1 NCHW convolution.
//
// Y[m x n] = W[m x k] * X[k x n] is a 1x1 convolution with k input channels and m output channels
// over an NCHW input of batch 1 and H x W = 1 x n: X and Y are already in that layout, no copy.
// Which path runs: xnn_create_convolution2d_nchw_f32 accepts a 1x1, unpadded, stride-1,
// ungrouped, NCHW-input convolution only as its SpMM microkernel type (XNNPACK
// src/operators/convolution-nchw.c; every other NCHW shape it takes is depthwise or the first
// 3x3 NHWC->CHW layer): there is no dense fallback on this operator, so a successful create is the
// sparse path. Its packing keeps the non-zero values (a kept weight that is exactly 0 is dropped).
// The "sparsity >= 2/3" rule of XNNPACK applies to its subgraph rewriting (choosing NCHW for a whole
// model), not to this operator; we call the operator directly, so it runs at any sparsity.
// Threads: a pthreadpool of sb::num_threads() workers (XNNPACK splits n), one per thread count for
// the whole process and shared by every op: a pool per op left dozens of idle workers (one per
// cold-cache copy) spinning against the timed code.
#include <xnnpack.h>

#include <cmath>
#include <limits>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "kernels/peers/peers.h"
#include "sparsebench/core/threads.h"

namespace sb::detail {
namespace {

// xnn_initialize once per process; its status, for every later can_implement.
xnn_status xnnpack_init_status() {
  static const xnn_status status = xnn_initialize(nullptr);
  return status;
}

// The process's pool for `threads` workers (nullptr for 1: XNNPACK then runs on the caller).
pthreadpool_t shared_pool(int threads) {
  if (threads <= 1) return nullptr;
  static std::mutex mu;
  static std::map<int, pthreadpool_t> pools;
  std::lock_guard<std::mutex> lock(mu);
  pthreadpool_t& p = pools[threads];
  if (!p) p = pthreadpool_create(static_cast<size_t>(threads));
  return p;
}

class XnnpackOp final : public SpmmOp {
 public:
  XnnpackOp(const SpmmDesc& d, xnn_operator_t op, pthreadpool_t pool, std::int64_t nnz)
      : d_(d), op_(op), pool_(pool), nnz_(nnz) {}
  ~XnnpackOp() override { xnn_delete_operator(op_); }
  XnnpackOp(const XnnpackOp&) = delete;
  XnnpackOp& operator=(const XnnpackOp&) = delete;

  void run(const float* x, float* y, const float* bias) override {
    // Setup rescales the packed input increments (O(nnz)): only when the buffers change, as an
    // application binding its tensors once would do.
    if (x != last_x_ || y != last_y_) {
      const xnn_status st = xnn_setup_convolution2d_nchw_f32(op_, 1, 1, static_cast<size_t>(d_.n), x, y, pool_);
      SB_CHECK(st == xnn_status_success, "xnnpack_spmm: setup failed with status {}", static_cast<int>(st));
      last_x_ = x;
      last_y_ = y;
    }
    const xnn_status st = xnn_run_operator(op_, pool_);
    SB_CHECK(st == xnn_status_success, "xnnpack_spmm: run failed with status {}", static_cast<int>(st));
    // The bias is not known at packing time (SpmmWeight has none), so it is added here; ReLU is
    // fused through the output clamp only when there is no bias to add first.
    if (d_.has_bias) peer_epilogue(y, bias, d_.relu, d_.m, d_.n);
  }
  // As packed by XNNPACK: per non-zero a value and two int32 (input channel delta, its scaled
  // increment); per output channel a bias slot and a u32 non-zero count.
  Footprint footprint() const override {
    Footprint f;
    f.values = static_cast<std::size_t>(nnz_ + d_.m) * sizeof(float);
    f.indices = static_cast<std::size_t>(nnz_) * 2 * sizeof(std::int32_t);
    f.pointers = static_cast<std::size_t>(d_.m) * sizeof(std::uint32_t);
    return f;
  }

 private:
  SpmmDesc d_;
  xnn_operator_t op_;
  pthreadpool_t pool_;
  std::int64_t nnz_;
  const float* last_x_ = nullptr;
  float* last_y_ = nullptr;
};

class XnnpackPeer final : public SpmmImpl {
 public:
  std::string name() const override { return "xnnpack_spmm"; }
  std::string library() const override { return "xnnpack"; }
  Format format() const override { return Format::csr; }
  Role role() const override { return Role::peer; }
  bool can_implement(const SpmmDesc& d, const SpmmWeight& w, std::string* why) const override {
    if (!check_peer_weight(d, w, why)) return false;
    if (const xnn_status st = xnnpack_init_status(); st != xnn_status_success) {
      if (why) *why = fmt::format("xnn_initialize failed (status {}: unsupported hardware?)", static_cast<int>(st));
      return false;
    }
    // Input increments are int32 byte offsets: (channel delta) * n * 4 must fit.
    if (d.k * d.n * static_cast<std::int64_t>(sizeof(float)) > std::numeric_limits<std::int32_t>::max()) {
      if (why) *why = "XNNPACK's int32 input increments cannot span k * n * 4 bytes >= 2^31";
      return false;
    }
    return true;
  }
  std::unique_ptr<SpmmOp> initialize(const SpmmDesc& d, const SpmmWeight& w) const override {
    const float* dense = w.dense.data<float>();
    const std::uint8_t* mask = w.mask.defined() ? w.mask.data<std::uint8_t>() : nullptr;
    std::vector<float> kernel(static_cast<std::size_t>(d.m * d.k));
    std::int64_t nnz = 0;
    for (std::int64_t i = 0; i < d.m * d.k; ++i) {
      kernel[i] = peer_kept(w, dense, mask, i) ? dense[i] : 0.f;
      nnz += kernel[i] != 0.f;
    }
    const float lo = (d.relu && !d.has_bias) ? 0.f : -std::numeric_limits<float>::infinity();
    const float hi = std::numeric_limits<float>::infinity();
    xnn_operator_t op = nullptr;
    const xnn_status st = xnn_create_convolution2d_nchw_f32(
        0, 0, 0, 0, /*kernel*/ 1, 1, /*subsampling*/ 1, 1, /*dilation*/ 1, 1, /*groups*/ 1,
        static_cast<size_t>(d.k), static_cast<size_t>(d.m), /*input channel stride*/ static_cast<size_t>(d.k),
        /*output channel stride*/ static_cast<size_t>(d.m), kernel.data(), /*bias*/ nullptr, lo, hi, /*flags*/ 0, &op);
    SB_CHECK(st == xnn_status_success, "xnnpack_spmm: xnn_create_convolution2d_nchw_f32 failed with status {} for {}x{}",
             static_cast<int>(st), d.m, d.k);
    const int threads = sb::num_threads();
    return std::make_unique<XnnpackOp>(d, op, shared_pool(threads), nnz);
  }
};

}  // namespace

std::unique_ptr<SpmmImpl> make_xnnpack_peer() { return std::make_unique<XnnpackPeer>(); }

}  // namespace sb::detail
