#pragma once
// Device helpers shared by our SpMM kernels: f16 / bf16 <-> f32 and paired (2-column) access.
#include <cstddef>
#include <mutex>
#include <type_traits>
#include <unordered_map>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/balanced_splitk_layout.h"  // splitk_reduce_col, splitk_stores
#include "kernels/cuda/device_limits.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/staged_x.h"

namespace sb::gpu {

template <class T> struct Elem;
template <> struct Elem<__half> {
  using Pair = __half2;
  static __device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half from_f(float v) { return __float2half_rn(v); }
  static __device__ __forceinline__ float2 pair_to_f(__half2 v) { return __half22float2(v); }
};
template <> struct Elem<__nv_bfloat16> {
  using Pair = __nv_bfloat162;
  static __device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 from_f(float v) { return __float2bfloat16_rn(v); }
  static __device__ __forceinline__ float2 pair_to_f(__nv_bfloat162 v) { return __bfloat1622float2(v); }
};

// NC consecutive columns of one row of X (row-major, n columns) from col0, as floats, through the
// read-only cache. VEC: n % NC == 0 (so the run is aligned to its size, X's base to 16 bytes):
// one 16-byte load per 8 columns (4 / 8 bytes for NC = 2 / 4); else element loads, 0 past n.
template <class T, int NC, bool VEC>
__device__ __forceinline__ void load_x_run(const T* __restrict__ xr, long long col0, long long n, float (&out)[NC]) {
  if constexpr (VEC && NC >= 8) {
#pragma unroll
    for (int q = 0; q < NC / 8; ++q) {
      const uint4 u = __ldg(reinterpret_cast<const uint4*>(xr + col0) + q);
      const T* t = reinterpret_cast<const T*>(&u);
#pragma unroll
      for (int i = 0; i < 8; ++i) out[q * 8 + i] = Elem<T>::to_f(t[i]);
    }
  } else if constexpr (VEC && NC == 4) {
    const uint2 u = __ldg(reinterpret_cast<const uint2*>(xr + col0));
    const T* t = reinterpret_cast<const T*>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = Elem<T>::to_f(t[i]);
  } else if constexpr (VEC && NC == 2) {
    const unsigned int u = __ldg(reinterpret_cast<const unsigned int*>(xr + col0));
    const T* t = reinterpret_cast<const T*>(&u);
    out[0] = Elem<T>::to_f(t[0]);
    out[1] = Elem<T>::to_f(t[1]);
  } else {
#pragma unroll
    for (int i = 0; i < NC; ++i) out[i] = col0 + i < n ? Elem<T>::to_f(xr[col0 + i]) : 0.f;
  }
}

// X (k elements) into shared memory xs (staged_smem_bytes(k)): 16-byte units where k % 8 == 0
// (X's base is 16-byte aligned), element by element otherwise, zero past k. Every thread of the
// block takes part; the caller synchronizes before reading xs.
template <class T>
__device__ __forceinline__ void copy_x_to_smem(T* xs, const T* __restrict__ x, long long k) {
  const int k8 = static_cast<int>((k + 7) / 8);
  if (k % 8 == 0) {
    uint4* xs4 = reinterpret_cast<uint4*>(xs);
    SB_SMEM_ALIGNED(xs4, 16);
    for (int u = threadIdx.x; u < k8; u += blockDim.x) xs4[u] = __ldg(reinterpret_cast<const uint4*>(x) + u);
  } else {
    for (int i = threadIdx.x; i < 8 * k8; i += blockDim.x) xs[i] = i < k ? x[i] : Elem<T>::from_f(0.f);
  }
}

// Sums acc over the L lanes of a subwarp (all lanes end with the sums), then lane j % L stores
// column col0 + j of row `row` (when row >= 0 and the column exists).
template <class T, int L, int NC>
__device__ __forceinline__ void reduce_store(float (&acc)[NC], int lane, long long row, long long col0, long long n,
                                             T* __restrict__ y) {
#pragma unroll
  for (int j = 0; j < NC; ++j)
#pragma unroll
    for (int o = L / 2; o > 0; o /= 2) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o, L);
  if (row < 0) return;
#pragma unroll
  for (int j = 0; j < NC; ++j)
    if (j % L == lane && col0 + j < n) y[row * n + col0 + j] = Elem<T>::from_f(acc[j]);
}

// Threads per block (128, 64 or 32) for a grid of `rows` rows, `rows_per_warp32` of them per 32
// threads, `grid_y` column tiles: the largest block that still gives about two blocks per SM, so
// small layers (BERT at batch 1 to 16: a few hundred rows) spread over the whole GPU instead of a
// few large blocks. The SM count (sm_count) is read once from the device.
inline int pick_threads(long long rows, int rows_per_warp32, long long grid_y) {
  const int sms = sm_count();
  for (int t : {128, 64}) {
    const long long per_block = static_cast<long long>(rows_per_warp32) * (t / 32);
    if ((rows + per_block - 1) / per_block * grid_y >= 2LL * sms) return t;
  }
  return 32;
}

// Returns f(std::integral_constant<int, P>{}) with P the smallest power of two >= p, capped at Max
// (1 for p <= 1): how the launchers turn a run-time lane, column or chunk count into the template
// argument of a kernel, e.g.
//   with_pow2<32>(lanes, [&](auto l) { return launch_it<decltype(l)::value>(); }).
template <int Max, class F>
inline cudaError_t with_pow2(long long p, F&& f) {
  if constexpr (Max > 1) {
    if (p > Max / 2) return f(std::integral_constant<int, Max>{});
    return with_pow2<Max / 2>(p, static_cast<F&&>(f));
  } else {
    return f(std::integral_constant<int, 1>{});
  }
}

// One reduce-scatter step over lane stride s: lanes with bit s set keep the upper HALF columns,
// the others the lower, each adding its partner's half.
template <int HALF>
__device__ __forceinline__ void rs_step(float* acc, int lane, int s) {
  const bool upper = (lane & s) != 0;
#pragma unroll
  for (int j = 0; j < HALF; ++j) {
    const float send = upper ? acc[j] : acc[j + HALF];
    const float keep = upper ? acc[j + HALF] : acc[j];
    acc[j] = keep + __shfl_xor_sync(0xffffffffu, send, s);
  }
}

// The warp's reduce-scatter of NC (8 or 16) partial sums: afterwards acc[0] of lane `lane` holds
// the warp's total of column splitk_reduce_col(NC, lane) (balanced_splitk_layout.h), 16 shuffles
// instead of a butterfly's 80.
template <int NC>
__device__ __forceinline__ void reduce_scatter(float (&acc)[NC], int lane) {
  if constexpr (NC == 16) {
    rs_step<8>(acc, lane, 16);
    rs_step<4>(acc, lane, 8);
    rs_step<2>(acc, lane, 4);
    rs_step<1>(acc, lane, 2);
    acc[0] += __shfl_xor_sync(0xffffffffu, acc[0], 1);
  } else {
    rs_step<4>(acc, lane, 16);
    rs_step<2>(acc, lane, 8);
    rs_step<1>(acc, lane, 4);
    acc[0] += __shfl_xor_sync(0xffffffffu, acc[0], 2);
    acc[0] += __shfl_xor_sync(0xffffffffu, acc[0], 1);
  }
}

// Y = the workspace in the storage type; the workspace back to zero for the next call.
template <class T>
__global__ void splitk_finish(float* __restrict__ ws, T* __restrict__ y, long long count) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    y[i] = Elem<T>::from_f(ws[i]);
    ws[i] = 0.f;
  }
}

// acc[0 .. 8) += v * the 8 values of X in one 16-byte unit (the split-K kernels' inner step).
template <class T>
__device__ __forceinline__ void fma_unit(float* acc, float v, uint4 u) {
  const T* t = reinterpret_cast<const T*>(&u);
#pragma unroll
  for (int e = 0; e < 8; ++e) acc[e] += v * Elem<T>::to_f(t[e]);
}

// The end of a split-K row r: the warp's NC partial sums reduce-scattered, and the lane holding
// each column (col0 + splitk_reduce_col) adds it into the fp32 workspace [m x n].
template <int NC>
__device__ __forceinline__ void add_row_to_workspace(float (&acc)[NC], int lane, float* ws, long long r, long long n,
                                                     long long col0) {
  reduce_scatter<NC>(acc, lane);
  const long long col = col0 + splitk_reduce_col(NC, lane);
  if (splitk_stores(NC, lane) && col < n) atomicAdd(ws + r * n + col, acc[0]);
}

// Lets `kernel` use `bytes` of dynamic shared memory (an opt-in above the default 48 KB). The
// attribute is set once per kernel, and again only for a larger size: it is a host call, and in
// the cold protocol the GPU waits for whatever the host does between the timing events.
template <class Kernel>
inline cudaError_t allow_smem(Kernel kernel, std::size_t bytes) {
  if (bytes <= (std::size_t{48} << 10)) return cudaSuccess;
  static std::mutex mu;
  static std::unordered_map<const void*, std::size_t> allowed;  // kernel -> bytes already allowed
  const std::lock_guard<std::mutex> lock(mu);
  std::size_t& done = allowed[reinterpret_cast<const void*>(kernel)];
  if (bytes <= done) return cudaSuccess;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (e == cudaSuccess) done = bytes;
  return e;
}

// Returns f(std::integral_constant<int, P>{}) with P = p exactly for Lo < p <= Max (Max for p above),
// else with_pow2<Lo>(p, f).
template <int Lo, int Max, class F>
inline cudaError_t with_exact_above(long long p, F&& f) {
  if constexpr (Max > Lo) {
    if (p >= Max) return f(std::integral_constant<int, Max>{});
    return with_exact_above<Lo, Max - 1>(p, static_cast<F&&>(f));
  } else {
    return with_pow2<Lo>(p, static_cast<F&&>(f));
  }
}

// Launches a staged batch-1 kernel (balanced_staged or csr_staged) on w (m rows, k columns) for
// rows of about `chunks` chunks: lanes per row about four chunks each (so that short rows do not
// idle a whole warp), chunks per lane as many as the row needs on those lanes, up to MaxCpl
// (longer rows take passes); kernel_of(lanes, cpl) gives the instantiation for those constants.
// w.threads per block where the op timed a choice (staged_thread_candidates), else staged_threads';
// X's shared memory allowed first.
//
// Below 32 lanes a lane never has more than 4 chunks (lanes >= chunks / 4), so only 1, 2 and 4 are
// instantiated there. At 32 lanes (rows above 128 chunks) the count is exact from 5 up: a lane holds
// all its chunks in registers, and rounding 5 up to 8 took 82 registers where 5 takes 62
// (ptxas, sm_90a), which at 4096 x 11008 (129 chunks a row) meant two waves of blocks, not one.
template <int MaxCpl, class KernelOf, class Dev, class T>
inline cudaError_t launch_staged(int chunks, KernelOf kernel_of, const Dev& w, const T* x, T* y, cudaStream_t s) {
  constexpr int kPow2Cpl = MaxCpl < 4 ? MaxCpl : 4;
  return with_pow2<32>((chunks + 3) / 4, [&](auto lanes) {
    constexpr int L = decltype(lanes)::value;
    return with_exact_above<kPow2Cpl, L == 32 ? MaxCpl : kPow2Cpl>((chunks + L - 1) / L, [&](auto cpl) {
      const auto kernel = kernel_of(lanes, cpl);
      const std::size_t smem = staged_smem_bytes(w.k);
      if (const cudaError_t e = allow_smem(kernel, smem); e != cudaSuccess) return e;
      // The op's timed choice (w.threads), else the rule; a whole number of rows, within the bound.
      const int threads = w.threads > 0 ? w.threads : staged_threads(w.m, L, sm_count());
      if (threads % L != 0 || threads > kStagedMaxThreads) return cudaErrorInvalidValue;
      const long long rows_per_block = threads / L;
      return launch_kernel(kernel, static_cast<unsigned>((w.m + rows_per_block - 1) / rows_per_block), threads, smem, s, w,
                           x, y);
    });
  });
}

// Split-K rows per block (blocks of `warps` warps, `other_tiles` k-slices x column tiles): as many as
// still give every SM a block -- each block stages its slice of X once, so fewer, fuller blocks move
// less -- between one and 16 rows per warp.
inline int splitk_rows(long long m, long long other_tiles, int warps) {
  int rows = warps * 16;
  while (rows > warps && (m + rows - 1) / rows * other_tiles < sm_count()) rows /= 2;
  return rows;
}

// The split-K epilogue: Y from the fp32 workspace, which it leaves zeroed for the next call.
template <class T>
inline cudaError_t finish_splitk(float* ws, T* y, long long count, cudaStream_t s) {
  const long long blocks = (count + 255) / 256 < 8LL * sm_count() ? (count + 255) / 256 : 8LL * sm_count();
  return launch_kernel(splitk_finish<T>, static_cast<unsigned>(blocks), 256, 0, s, ws, y, count);
}

}  // namespace sb::gpu
