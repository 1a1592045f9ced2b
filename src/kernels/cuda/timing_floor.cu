// The empty kernel behind measure_timing_floor (gpu_runtime.cpp): what a call costs in each timing
// protocol when the kernel does nothing.
#include <cuda_runtime.h>

namespace sb::gpu {
namespace {
__global__ void empty_kernel() {}
}  // namespace

cudaError_t launch_empty_kernel(cudaStream_t stream) {
  empty_kernel<<<1, 32, 0, stream>>>();
  return cudaGetLastError();
}

}  // namespace sb::gpu
