#pragma once
// Our CSR SpMM for unstructured sparsity (Sputnik style: rows swizzled by length for balance,
// rows padded to 8 entries for 16-byte loads, subwarp tiling), f16 / bf16 values, u16 column
// indices, fp32 accumulation. Host-callable launchers; no device code here.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/csr_splitk_layout.h"
#include "kernels/cuda/csr_tc_layout.h"
#include "kernels/cuda/device_limits.h"
#include "kernels/cuda/staged_x.h"

namespace sb::gpu {

// Rows are stored in order of `row_order` (longest first), each padded with value-0 entries at
// column 0 to a multiple of 8 entries; row_ptr indexes the padded arrays in the original row
// order (row i's entries are [row_ptr[i], row_ptr[i + 1]), row_ptr[i] a multiple of 8).
struct CsrDevice {
  const void* values = nullptr;            // [padded nnz], f16 or bf16
  const std::uint16_t* cols = nullptr;     // [padded nnz]
  const std::int32_t* row_ptr = nullptr;   // [m + 1]
  const std::int32_t* row_order = nullptr; // [m]: a permutation, longest row first
  std::int64_t m = 0, k = 0, n = 0;
  int mean_row = 0;                        // mean padded row length (entries), for the tiling
  int threads = 0;                         // staged only: threads per block as the op timed them (0: staged_threads)
};

// The device copy of a weight packed for the split-K kernel (csr_splitk_layout.h) and its fp32
// workspace [m x n] (zero between calls).
struct CsrSplitkDevice {
  const void* values = nullptr;         // [nnz], f16 or bf16
  const std::uint16_t* cols = nullptr;  // [nnz], local to the slice
  const std::int32_t* ptr = nullptr;    // [ktiles][m + 1]
  float* workspace = nullptr;           // [m][n]
  std::int64_t n = 0;
  CsrSplitkLayout layout;
};

// The device copy of a weight packed for the tensor-core kernel (csr_tc_layout.h).
struct CsrTcDevice {
  const void* values = nullptr;             // [padded entries], f16 or bf16
  const std::uint16_t* places = nullptr;    // [padded entries]
  const std::uint32_t* ptr = nullptr;       // [groups * tiles + 1], in chunks of 8
  std::int64_t m = 0, k = 0, n = 0;
  int kt = 256;                             // columns per tile (CsrTcPacked::kt)
  int max_chunks = 0;                       // the most chunks of any tile
  TcLayout layout;                          // planned for this shape (csr_tc_plan)
  float* workspace = nullptr;               // where layout.kz > 1: tc_workspace_floats(layout, m, n) floats
};

enum class CsrVariant {
  simple,  // one thread per output element
  fast,    // n <= 64: subwarp per row (swizzled), lanes split 8-entry chunks (16-byte loads of
           // values and indices), up to 16 columns per lane, shuffle reduction; n > 64: subwarp
           // per row, lanes x 2 columns, X rows read coalesced
  staged,  // n = 1: the fast kernel's rows and subwarps, every chunk of a lane loaded at once, X
           // copied into shared memory while those loads are in flight and gathered there
  tc,      // n >= 8 on tensor cores: tiles of 16 rows x 32-256 columns (tiled CSL) scattered into
           // dense tiles in shared memory, mma.sync m16n8k16 (CsrTcDevice)
  splitk,  // n % 8 == 0: blocks over (rows, a k-slice, 8/16 columns), the slice of X in shared
           // memory, lanes splitting each row's entries in the slice, fp32 atomicAdd into a
           // workspace, then Y written and the workspace zeroed (CsrSplitkDevice)
};

cudaError_t launch_spmm_csr(const CsrDevice& w, const void* x, void* y, bool bf16, CsrVariant v, cudaStream_t stream);
// n >= 8 on tensor cores (csr_tc_layout.h): x device [k x n], y device [m x n].
cudaError_t launch_spmm_csr_tc(const CsrTcDevice& w, const void* x, void* y, bool bf16, cudaStream_t stream);
// The tensor-core kernel's layout for that problem on the current device: tiles, the slices of k
// over blocks (tc_pick_kz) and the warp groups per block (tc_pick_split).
TcLayout csr_tc_plan(std::int64_t m, std::int64_t n, std::int64_t k, int kt);
// n % 8 == 0: two kernels (partial sums, then Y).
cudaError_t launch_spmm_csr_splitk(const CsrSplitkDevice& w, const void* x, void* y, bool bf16, cudaStream_t stream);

}  // namespace sb::gpu
