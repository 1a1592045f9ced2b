// libtorch 1.13: a CSR weight (Tensor::to_sparse_csr) times a dense X through at::addmm_out /
// at::mm_out into Y. Built in its own target (sparsebench_torch_peer) so that only this file pays
// for the torch headers and links libtorch.
//
// Threads: ATen's intra-op pool (OpenMP in Debian's build) set to sb::num_threads() before a run.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <fmt/format.h>

#include "kernels/peers/peers.h"
#include "sparsebench/core/threads.h"

namespace sb::detail {
namespace {

// The library never prints: libtorch warns (once, on stderr) that sparse CSR support is in beta
// when the first CSR tensor is made. Swallowed while we call into it.
class SilentWarnings final : public c10::WarningHandler {
 public:
  void process(const c10::SourceLocation&, const std::string&, const bool) override {}
};
SilentWarnings g_silent;

class TorchOp final : public SpmmOp {
 public:
  TorchOp(const SpmmDesc& d, at::Tensor csr) : d_(d), csr_(std::move(csr)) {}
  void run(const float* x, float* y, const float* bias) override {
    c10::Warning::WarningHandlerGuard quiet(&g_silent);
    const int threads = sb::num_threads();
    if (at::get_num_threads() != threads) at::set_num_threads(threads);
    // Wrapping the buffers is cheap but not free: rewrap only when they change.
    if (x != last_x_ || y != last_y_) {
      const auto opts = at::TensorOptions().dtype(at::kFloat);
      x_ = at::from_blob(const_cast<float*>(x), {d_.k, d_.n}, opts);
      y_ = at::from_blob(y, {d_.m, d_.n}, opts);
      last_x_ = x;
      last_y_ = y;
    }
    if (d_.has_bias) {
      if (bias != last_bias_) {
        bias_ = at::from_blob(const_cast<float*>(bias), {d_.m, 1}, at::TensorOptions().dtype(at::kFloat));
        last_bias_ = bias;
      }
      at::addmm_out(y_, bias_.expand({d_.m, d_.n}), csr_, x_);
    } else {
      at::mm_out(y_, csr_, x_);
    }
    if (d_.relu) y_.clamp_min_(0.f);
  }
  Footprint footprint() const override {
    Footprint f;
    const auto nnz = static_cast<std::size_t>(csr_._nnz());
    f.values = nnz * sizeof(float);
    f.indices = nnz * sizeof(std::int64_t);
    f.pointers = static_cast<std::size_t>(d_.m + 1) * sizeof(std::int64_t);
    return f;
  }

 private:
  SpmmDesc d_;
  at::Tensor csr_, x_, y_, bias_;
  const float* last_x_ = nullptr;
  float* last_y_ = nullptr;
  const float* last_bias_ = nullptr;
};

class TorchPeer final : public SpmmImpl {
 public:
  std::string name() const override { return "libtorch_csr"; }
  std::string library() const override { return "libtorch"; }
  Format format() const override { return Format::csr; }
  Role role() const override { return Role::peer; }
  bool can_implement(const SpmmDesc& d, const SpmmWeight& w, std::string* why) const override {
    return check_peer_weight(d, w, why);
  }
  std::unique_ptr<SpmmOp> initialize(const SpmmDesc& d, const SpmmWeight& w) const override {
    c10::Warning::WarningHandlerGuard quiet(&g_silent);
    const float* dense = w.dense.data<float>();
    const std::uint8_t* mask = w.mask.defined() ? w.mask.data<std::uint8_t>() : nullptr;
    // Build the CSR from the mask so that kept zeros stay stored, like our formats.
    std::vector<std::int64_t> crow(static_cast<std::size_t>(d.m + 1), 0), col;
    std::vector<float> val;
    for (std::int64_t i = 0; i < d.m; ++i) {
      for (std::int64_t j = 0; j < d.k; ++j)
        if (peer_kept(w, dense, mask, i * d.k + j)) {
          col.push_back(j);
          val.push_back(dense[i * d.k + j]);
        }
      crow[i + 1] = static_cast<std::int64_t>(col.size());
    }
    const auto i64 = at::TensorOptions().dtype(at::kLong);
    at::Tensor crow_t = at::from_blob(crow.data(), {d.m + 1}, i64).clone();
    at::Tensor col_t = at::from_blob(col.data(), {static_cast<std::int64_t>(col.size())}, i64).clone();
    at::Tensor val_t =
        at::from_blob(val.data(), {static_cast<std::int64_t>(val.size())}, at::TensorOptions().dtype(at::kFloat)).clone();
    at::Tensor csr = at::sparse_csr_tensor(crow_t, col_t, val_t, {d.m, d.k}, at::TensorOptions().dtype(at::kFloat));
    return std::make_unique<TorchOp>(d, std::move(csr));
  }
};

}  // namespace

std::unique_ptr<SpmmImpl> make_torch_peer() { return std::make_unique<TorchPeer>(); }

}  // namespace sb::detail
