// A device transpose of an i8 matrix, for the library paths whose i8 kernels want X transposed
// (cuBLASLt's IMMA and cuSPARSELt's i8 take op(B) = T): 32 x 32 tiles through shared memory (one
// byte wider per row), reads and writes coalesced.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/launch.cuh"

namespace sb::gpu {
namespace {
constexpr int kTile = 32;

__global__ void transpose_i8(const std::int8_t* __restrict__ in, std::int8_t* __restrict__ out, long long rows,
                             long long cols) {
  auto* tile = reinterpret_cast<std::int8_t(*)[kTile + 1]>(dynamic_smem<std::int8_t>());  // [kTile][kTile + 1]
  const long long r0 = static_cast<long long>(blockIdx.y) * kTile, c0 = static_cast<long long>(blockIdx.x) * kTile;
  for (int i = threadIdx.y; i < kTile; i += blockDim.y) {
    const long long r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = in[r * cols + c];
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTile; i += blockDim.y) {
    const long long c = c0 + i, r = r0 + threadIdx.x;  // out is [cols x rows]
    if (r < rows && c < cols) out[c * rows + r] = tile[threadIdx.x][i];
  }
}
}  // namespace

// out[c][r] = in[r][c]; in is [rows x cols] row-major.
cudaError_t launch_transpose_i8(const void* in, void* out, long long rows, long long cols, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile), static_cast<unsigned>((rows + kTile - 1) / kTile));
  return launch_kernel(transpose_i8, grid, dim3(kTile, 8), kTile * (kTile + 1), stream, static_cast<const std::int8_t*>(in),
                       static_cast<std::int8_t*>(out), rows, cols);
}

}  // namespace sb::gpu
