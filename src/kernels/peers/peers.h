#pragma once
// Peer sparse libraries (Role::peer): compared in the same run, never dispatched.
#include <cstdint>
#include <memory>
#include <string>

#include "sparsebench/kernels/spmm.h"

namespace sb::detail {

std::unique_ptr<SpmmImpl> make_eigen_peer();
std::unique_ptr<SpmmImpl> make_libxsmm_peer();
std::unique_ptr<SpmmImpl> make_xnnpack_peer();
// libtorch CSR matmul; without SB_HAVE_TORCH an implementation that always declines, saying so.
std::unique_ptr<SpmmImpl> make_torch_peer();

// Checks shared by every peer: a contiguous [m, k] f32 dense weight, a u8 mask of the same shape
// or none, positive sizes. False with *why otherwise.
bool check_peer_weight(const SpmmDesc& d, const SpmmWeight& w, std::string* why);
// Kept entry (i, j) of the weight: mask set, or a non-zero value without a mask.
inline bool peer_kept(const SpmmWeight& w, const float* dense, const std::uint8_t* mask, std::int64_t idx) {
  return mask ? mask[idx] != 0 : dense[idx] != 0.f;
}
// For libraries without a fused epilogue: y[i, :] += bias[i], then max(y, 0) when relu. Part of
// the timed run, as a caller of that library would have to do it.
void peer_epilogue(float* y, const float* bias, bool relu, std::int64_t m, std::int64_t n);

}  // namespace sb::detail
