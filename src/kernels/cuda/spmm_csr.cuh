#pragma once
// Our CSR SpMM for unstructured sparsity (Sputnik style: rows swizzled by length for balance,
// rows padded to 8 entries for 16-byte loads, subwarp tiling), f16 / bf16 values, u16 column
// indices, fp32 accumulation. Host-callable launchers; no device code here.
#include <cuda_runtime.h>

#include <cstdint>

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
};

enum class CsrVariant {
  simple,  // one thread per output element
  fast,    // n <= 64: subwarp per row (swizzled), lanes split 8-entry chunks (16-byte loads of
           // values and indices), up to 16 columns per lane, shuffle reduction; n > 64: subwarp
           // per row, lanes x 2 columns, X rows read coalesced
};

cudaError_t launch_spmm_csr(const CsrDevice& w, const void* x, void* y, bool bf16, CsrVariant v, cudaStream_t stream);

}  // namespace sb::gpu
