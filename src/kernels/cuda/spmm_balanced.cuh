#pragma once
// Our balanced-sparsity SpMM (Yao et al., AAAI 2019) and N:M (its case bank = M, k = N), f16 / bf16
// values with u8 in-bank offsets, fp32 accumulation. Host-callable launchers; no device code here.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/balanced_gemv_layout.h"
#include "kernels/cuda/balanced_splitk_layout.h"
#include "kernels/cuda/balanced_tc_layout.h"
#include "kernels/cuda/device_limits.h"
#include "kernels/cuda/fast_div.h"
#include "kernels/cuda/staged_x.h"

namespace sb::gpu {

// The device copy of a balanced weight. Every row holds banks * kb entries (bank b's kb entries
// at [b * kb, (b + 1) * kb), in-bank offsets ascending; a bank keeping fewer is padded with value
// 0 at offset 0, a column that exists), then zeros up to row_stride (a multiple of 8, so that a
// row starts on a 16-byte boundary and 8 entries are one 16-byte load of values and one 8-byte
// load of offsets). Column of entry e of a row: (e / kb) * bank + offsets[e].
struct BalancedDevice {
  const void* values = nullptr;           // [m][row_stride], f16 or bf16
  const std::uint8_t* offsets = nullptr;  // [m][row_stride]
  std::int64_t m = 0, k = 0, n = 0;
  int bank = 0, kb = 0, banks = 0, row_stride = 0;
  FastDiv kb_div;  // divides an entry's index by kb (its bank), exact since row_stride * kb < 2^32
  TcLayout tc;              // tc only: the tensor-core layout planned for this shape (tc_plan)
  float* workspace = nullptr;  // tc only, where tc.kz > 1: tc_workspace_floats(tc, m, n) floats
  int threads = 0;             // staged only: threads per block as the op timed them (0: staged_threads)
};

// A BalancedDevice's shape and layout (values / offsets still to point at) for an m x k weight in
// banks of `bank` keeping at most kb entries each, and n columns of X.
inline BalancedDevice balanced_device_layout(std::int64_t m, std::int64_t k, std::int64_t n, int bank, int kb) {
  BalancedDevice d;
  d.m = m;
  d.k = k;
  d.n = n;
  d.bank = bank;
  d.kb = kb;
  d.banks = static_cast<int>((k + bank - 1) / bank);
  d.row_stride = (d.banks * kb + 7) / 8 * 8;
  d.kb_div = make_fast_div(static_cast<std::uint32_t>(kb));
  return d;
}

// The weight packed for that layout: slot i of bank b of a row at b * kb + i (balanced_pack.h).
inline BalancedPacked pack_balanced_rows(const BalancedDevice& d, const float* values, const std::uint8_t* kept) {
  return pack_balanced(d.m, d.k, d.bank, d.kb, d.row_stride, values, kept, [&](int b, int i) { return b * d.kb + i; });
}

// The device copy of a weight packed for the GEMV kernel (balanced_gemv_layout.h).
struct BalancedGemvDevice {
  const void* values = nullptr;           // [m][layout.row_stride], f16 or bf16
  const std::uint8_t* offsets = nullptr;  // [m][layout.row_stride]
  std::int64_t m = 0;
  GemvLayout layout;
};

// The device copy of a weight packed for the split-K kernel (balanced_splitk_layout.h), and its
// fp32 workspace [m x n] (zero between calls: the second kernel zeroes what it reads).
struct BalancedSplitkDevice {
  const void* values = nullptr;           // [m][layout.row_stride], f16 or bf16
  const std::uint8_t* offsets = nullptr;  // [m][layout.row_stride]
  float* workspace = nullptr;             // [m][n]
  std::int64_t m = 0, n = 0;
  SplitkLayout layout;
};

enum class BalancedVariant {
  simple,  // one thread per output element: the obviously-correct version
  fast,    // a subwarp per row splitting its 8-entry chunks (16-byte loads), up to 16 columns per
           // lane read from the read-only cache, shuffle reduction; fixed work per row and bank
  gemv,    // n = 1: X staged bank-interleaved in shared memory (conflict-free gathers), the weight
           // slot-major in 8-byte loads per lane, a warp per row (BalancedGemvDevice)
  staged,  // n = 1: the fast kernel's layout and lanes, every chunk of a lane loaded at once, X
           // copied into shared memory (as T) while those loads are in flight and gathered there
  tc,      // n >= 8 on tensor cores, bank <= 32, kb from tc_padded_kb: tiles of the weight
           // scattered into dense 16-row tiles in shared memory, X's slice staged transposed,
           // mma.sync m16n8k16 with fp32 accumulation; several warp groups per block split k and
           // sum in shared memory
  splitk,  // n % 8 == 0, bank <= 64: blocks over (rows, k-slice, 8/16 columns), the X slice staged
           // bank-interleaved in shared memory, fp32 partial sums by atomicAdd into a workspace,
           // then Y written and the workspace zeroed (BalancedSplitkDevice)
};

// x: device [k x n], y: device [m x n], both of the values' type (bf16 when `bf16`, else f16).
cudaError_t launch_spmm_balanced(const BalancedDevice& w, const void* x, void* y, bool bf16, BalancedVariant v,
                                 cudaStream_t stream);
// n = 1 only: x device [k], y device [m].
cudaError_t launch_spmm_balanced_gemv(const BalancedGemvDevice& w, const void* x, void* y, bool bf16, cudaStream_t stream);
// n % 8 == 0: x device [k x n], y device [m x n]; two kernels (partial sums, then Y).
cudaError_t launch_spmm_balanced_splitk(const BalancedSplitkDevice& w, const void* x, void* y, bool bf16,
                                        cudaStream_t stream);
// The tensor-core kernel's layout for that problem on the current device: tiles, the slices of k
// over blocks (tc_pick_kz) and the warp groups per block (tc_pick_split).
TcLayout tc_plan(std::int64_t m, std::int64_t n, std::int64_t k, int bank, int kb);

}  // namespace sb::gpu
