#pragma once
// How our kernels are launched and reach their dynamic shared memory: through launch_kernel() and
// dynamic_smem(), never with <<<>>> or `extern __shared__` written out, so that a host compiler with
// the CPU emulator of tests/cuda/emu (SB_CUDA_EMU, which supplies both) runs the same kernel and
// launcher code, and CI checks them without a GPU.
#include <cstddef>
#include <utility>

#include <cuda_runtime.h>

// A vector access to shared memory needs its size's alignment (a GPU faults otherwise, with a
// sticky error): the kernels name such accesses, and the emulator checks them; on a GPU a no-op.
#if defined(SB_CUDA_EMU)
#define SB_SMEM_ALIGNED(p, bytes) ::sb::emu::check_aligned((p), (bytes))
#else
#define SB_SMEM_ALIGNED(p, bytes) ((void)0)
#endif

namespace sb::gpu {

#if !defined(SB_CUDA_EMU)
// kernel<<<grid, block, smem, stream>>>(args...), and the launch's error.
template <class... P, class... A>
inline cudaError_t launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream,
                                 A&&... args) {
  kernel<<<grid, block, smem, stream>>>(std::forward<A>(args)...);
  return cudaGetLastError();
}

// The block's dynamic shared memory (16-byte aligned).
template <class T>
__device__ __forceinline__ T* dynamic_smem() {
  extern __shared__ uint4 sb_dynamic_smem[];
  return reinterpret_cast<T*>(sb_dynamic_smem);
}
#endif

}  // namespace sb::gpu
