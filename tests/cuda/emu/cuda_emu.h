#pragma once
// A CPU emulator of the CUDA execution model, for testing our kernels without a GPU: the kernel
// sources (src/kernels/cuda/*.cu) compile with the host compiler after this header, and
// launch_kernel() runs every thread of a block as a fiber on one OS thread, blocks one after
// another. Threads switch only at __syncthreads, __syncwarp and shuffles, where the scheduler
// enforces CUDA's rules and reports what a real GPU would leave undefined (a full-mask warp
// operation with lanes exited or elsewhere, __syncthreads in divergent code, a deadlock) as a
// failed launch instead of hanging. It also checks what the hardware checks: launch sizes,
// dynamic shared memory above 48 KB without the opt-in attribute, misaligned vector loads through
// __ldg. Shared memory is allocated per block at its exact size and filled with NaN bytes, so a
// read of a slot nobody wrote shows in the result; built with AddressSanitizer (as the test is
// where the compiler offers it), a read or write past any buffer stops the test like memcheck.
//
// What it does not model: concurrency between blocks (they run in turn, so atomics cannot race),
// the memory model, timing. It answers "does this kernel and launcher compute the right thing,
// within bounds, for every shape", which is what a session without a GPU can check.
#define SB_CUDA_EMU 1

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace sb::emu {

struct ThreadState {
  uint3 thread_idx{0, 0, 0}, block_idx{0, 0, 0};
  dim3 block_dim{1, 1, 1}, grid_dim{1, 1, 1};
};

// The emulated device: what cudaDeviceGetAttribute answers. A small SM count by default makes the
// launchers choose few blocks, so their grid-stride loops run more than once; SB_EMU_SMS=132 gives
// the launch configurations of an H100 instead. Occupancy follows an H100's per-SM limits.
struct Device {
  int sm_count = 3;
  std::size_t smem_optin = 227 << 10;  // cudaDevAttrMaxSharedMemoryPerBlockOptin (H100)
};
const Device& device();

const ThreadState& current();  // the running thread's indices (outside a kernel: all zero)
void* dynamic_smem_base();
void syncthreads();
void syncwarp(unsigned mask);
std::uint64_t shfl_xor(unsigned mask, std::uint64_t bits, int lane_mask, int width);
// Every lane of the warp passes `bytes` at `in` and receives all 32 lanes' in lane order at `out`
// (32 * bytes): the warp-collective step behind the emulated tensor-core MMA (mma.cuh).
void warp_allgather(const void* in, std::size_t bytes, void* out);
void check_aligned(const void* p, std::size_t bytes);
// Runs body once per thread of every block; cudaSuccess, or the error a GPU would give (the
// reason in last_failure()).
cudaError_t launch(const void* kernel, dim3 grid, dim3 block, std::size_t smem, const std::function<void()>& body);
std::string last_failure();

}  // namespace sb::emu

#define threadIdx (::sb::emu::current().thread_idx)
#define blockIdx (::sb::emu::current().block_idx)
#define blockDim (::sb::emu::current().block_dim)
#define gridDim (::sb::emu::current().grid_dim)
#define __launch_bounds__(...)

// cuda_runtime.h declares these templates for nvcc only.
template <class F>
cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}
template <class F>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, F* kernel, int threads, std::size_t smem) {
  return ::cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, reinterpret_cast<const void*>(kernel), threads, smem);
}

inline void __syncthreads() { ::sb::emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::sb::emu::syncwarp(mask); }

template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  std::uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  b = ::sb::emu::shfl_xor(mask, b, lane_mask, width);
  T r;
  std::memcpy(&r, &b, sizeof(T));
  return r;
}

// A load through the read-only cache: a plain load, checked for the alignment of its size (a GPU
// faults on a misaligned 8- or 16-byte access).
template <class T>
T __ldg(const T* p) {
  ::sb::emu::check_aligned(p, sizeof(T));
  return *p;
}

inline float atomicAdd(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}

inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }

namespace sb::gpu {

// The emulator's launch_kernel / dynamic_smem (spmm_common.cuh has the CUDA ones).
template <class... P, class... A>
cudaError_t launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t, A&&... args) {
  std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  return ::sb::emu::launch(reinterpret_cast<const void*>(kernel), grid, block, smem, [&] { std::apply(kernel, params); });
}

template <class T>
T* dynamic_smem() {
  return static_cast<T*>(::sb::emu::dynamic_smem_base());
}

}  // namespace sb::gpu
