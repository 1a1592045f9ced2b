#pragma once
// Device helpers shared by our SpMM kernels: f16 / bf16 <-> f32 and paired (2-column) access.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

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

// Threads per block (128, 64 or 32) for a grid of `rows` rows, `rows_per_warp32` of them per 32
// threads, `grid_y` column tiles: the largest block that still gives about two blocks per SM, so
// small layers (BERT at batch 1 to 16: a few hundred rows) spread over the whole GPU instead of a
// few large blocks. The SM count is read once from the device.
inline int pick_threads(long long rows, int rows_per_warp32, long long grid_y) {
  static const int sms = [] {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      cudaGetLastError();
      return 132;
    }
    return n;
  }();
  for (int t : {128, 64}) {
    const long long per_block = static_cast<long long>(rows_per_warp32) * (t / 32);
    if ((rows + per_block - 1) / per_block * grid_y >= 2LL * sms) return t;
  }
  return 32;
}

// Smallest power of two >= v (v >= 1), capped at cap.
inline int pow2_at_least(long long v, int cap) {
  int p = 1;
  while (p < v && p < cap) p *= 2;
  return p;
}

}  // namespace sb::gpu
