// Peer sparse libraries (Eigen, libxsmm, XNNPACK, libtorch): compared, never dispatched.
#include "kernels/peers/peers.h"

#include <algorithm>

#include <fmt/format.h>

#include "kernels/internal.h"
#include "sparsebench/core/threads.h"

namespace sb::detail {

bool check_peer_weight(const SpmmDesc& d, const SpmmWeight& w, std::string* why) {
  auto no = [&](std::string s) {
    if (why) *why = std::move(s);
    return false;
  };
  if (d.m < 1 || d.k < 1 || d.n < 1) return no(fmt::format("empty problem {}x{}x{}", d.m, d.k, d.n));
  if (!w.dense.defined() || w.dense.dtype() != DType::f32 || w.dense.dim() != 2 || !w.dense.is_contiguous() ||
      w.dense.size(0) != d.m || w.dense.size(1) != d.k)
    return no(fmt::format("weight must be a contiguous f32 [{}, {}] tensor", d.m, d.k));
  if (w.mask.defined() && (w.mask.dtype() != DType::u8 || w.mask.shape() != w.dense.shape() || !w.mask.is_contiguous()))
    return no("mask must be a contiguous u8 tensor of the weight's shape");
  if (!d.x_rows.empty()) return no("reads X as k x n only, not as offset rows (SpmmDesc::x_rows)");
  return true;
}

void peer_epilogue(float* y, const float* bias, bool relu, std::int64_t m, std::int64_t n) {
  if (!bias && !relu) return;
#pragma omp parallel for num_threads(sb::num_threads()) schedule(static)
  for (std::int64_t i = 0; i < m; ++i) {
    float* row = y + i * n;
    const float b = bias ? bias[i] : 0.f;
    if (relu)
      for (std::int64_t j = 0; j < n; ++j) row[j] = std::max(row[j] + b, 0.f);
    else
      for (std::int64_t j = 0; j < n; ++j) row[j] += b;
  }
}

#ifndef SB_HAVE_TORCH
namespace {
class TorchUnavailable final : public SpmmImpl {
 public:
  std::string name() const override { return "libtorch_csr"; }
  std::string library() const override { return "libtorch"; }
  Format format() const override { return Format::csr; }
  Role role() const override { return Role::peer; }
  bool can_implement(const SpmmDesc&, const SpmmWeight&, std::string* why) const override {
    if (why) *why = "built without libtorch";
    return false;
  }
  std::unique_ptr<SpmmOp> initialize(const SpmmDesc&, const SpmmWeight&) const override {
    fail("libtorch_csr: built without libtorch");
  }
};
}  // namespace

std::unique_ptr<SpmmImpl> make_torch_peer() { return std::make_unique<TorchUnavailable>(); }
#endif

void register_peers(SpmmRegistry& r) {
  r.add(make_eigen_peer());
  r.add(make_libxsmm_peer());
  r.add(make_xnnpack_peer());
  r.add(make_torch_peer());
}

}  // namespace sb::detail
