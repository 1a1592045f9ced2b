// Balanced / N:M SpMM kernels. Every row has the same number of entries per bank, so the rows of
// a block do identical work (no row-length branches) and a chunk of k rows of X serves every row
// of the block for exactly (chunk / bank) * kb entries each.
#include <algorithm>

#include "kernels/cuda/spmm_balanced.cuh"
#include "kernels/cuda/spmm_common.cuh"

namespace sb::gpu {
namespace {

template <class T>
__global__ void balanced_simple(BalancedDevice w, const T* __restrict__ x, T* __restrict__ y) {
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= w.m * w.n) return;
  const long long row = idx / w.n, col = idx % w.n;
  const T* v = static_cast<const T*>(w.values) + row * w.row_stride;
  const std::uint8_t* o = w.offsets + row * w.row_stride;
  float acc = 0.f;
  for (int b = 0; b < w.banks; ++b)
    for (int j = 0; j < w.kb; ++j) {
      const int e = b * w.kb + j;
      const long long c = static_cast<long long>(b) * w.bank + o[e];
      acc += Elem<T>::to_f(v[e]) * Elem<T>::to_f(x[c * w.n + col]);
    }
  y[idx] = Elem<T>::from_f(acc);
}

// Any n (the `fast` variant): a subwarp of L lanes per row, the lanes splitting the row's entries
// in chunks of 8 (one 16-byte load of values, one 8-byte load of offsets), each lane holding NC
// columns (blockIdx.y picks which); X is read straight from the read-only cache, NC columns per
// entry in one vector load, and the lanes' partial sums meet by shuffles. Every row has the same
// number of chunks, so the subwarps of a warp finish together, and a lane has only a couple of
// chunks in flight per row: latency, not a serial walk along the row, sets the time at small n.
template <class T, int L, int NC, bool VEC>
__global__ void balanced_skinny(BalancedDevice w, const T* __restrict__ x, T* __restrict__ y) {
  const int lane = threadIdx.x % L;
  const long long row = static_cast<long long>(blockIdx.x) * (blockDim.x / L) + threadIdx.x / L;
  const long long col0 = static_cast<long long>(blockIdx.y) * NC;
  float acc[NC];
#pragma unroll
  for (int j = 0; j < NC; ++j) acc[j] = 0.f;
  if (row < w.m) {
    const uint4* vrow = reinterpret_cast<const uint4*>(static_cast<const T*>(w.values) + row * w.row_stride);
    const uint2* orow = reinterpret_cast<const uint2*>(w.offsets + row * w.row_stride);
    const int chunks = w.row_stride / 8;
    const unsigned last_bank = static_cast<unsigned>(w.banks - 1);
    for (int c = lane; c < chunks; c += L) {
      const uint4 vv = __ldg(vrow + c);
      const uint2 oo = __ldg(orow + c);
      const T* vs = reinterpret_cast<const T*>(&vv);
      const std::uint8_t* os = reinterpret_cast<const std::uint8_t*>(&oo);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        // The entry's bank by a multiply-high, not a division; the row's padding past the last
        // bank (value 0, offset 0) is read as the last bank's first column, so no branch.
        const unsigned b = min(fast_div(static_cast<unsigned>(c * 8 + i), w.kb_div), last_bank);
        const float v = Elem<T>::to_f(vs[i]);
        float xv[NC];
        load_x_run<T, NC, VEC>(x + (static_cast<long long>(b) * w.bank + os[i]) * w.n, col0, w.n, xv);
#pragma unroll
        for (int j = 0; j < NC; ++j) acc[j] += v * xv[j];
      }
    }
  }
  reduce_store<T, L, NC>(acc, lane, row < w.m ? row : -1, col0, w.n, y);
}

template <class T, int L, int NC>
cudaError_t skinny(const BalancedDevice& w, const T* x, T* y, cudaStream_t s) {
  const long long passes = (w.n + NC - 1) / NC;
  const int threads = pick_threads(w.m, 32 / L, passes);
  const int rows_per_block = threads / L;
  const dim3 grid(static_cast<unsigned>((w.m + rows_per_block - 1) / rows_per_block), static_cast<unsigned>(passes));
  if (w.n % NC == 0)
    balanced_skinny<T, L, NC, true><<<grid, threads, 0, s>>>(w, x, y);
  else
    balanced_skinny<T, L, NC, false><<<grid, threads, 0, s>>>(w, x, y);
  return cudaGetLastError();
}

template <class T, int NC>
cudaError_t skinny_lanes(const BalancedDevice& w, const T* x, T* y, cudaStream_t s) {
  // Lanes per row: about two 8-entry chunks per lane, so short rows do not idle a whole warp.
  switch (pow2_at_least((w.row_stride / 8 + 1) / 2, 32)) {
    case 1: return skinny<T, 1, NC>(w, x, y, s);
    case 2: return skinny<T, 2, NC>(w, x, y, s);
    case 4: return skinny<T, 4, NC>(w, x, y, s);
    case 8: return skinny<T, 8, NC>(w, x, y, s);
    case 16: return skinny<T, 16, NC>(w, x, y, s);
    default: return skinny<T, 32, NC>(w, x, y, s);
  }
}

template <class T>
cudaError_t launch(const BalancedDevice& w, const void* xv, void* yv, BalancedVariant v, cudaStream_t s) {
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  if (w.m == 0 || w.n == 0) return cudaSuccess;
  if (v == BalancedVariant::simple) {
    const long long total = w.m * w.n;
    balanced_simple<T><<<static_cast<unsigned>((total + 255) / 256), 256, 0, s>>>(w, x, y);
    return cudaGetLastError();
  }
  switch (skinny_columns(w.n)) {
    case 1: return skinny_lanes<T, 1>(w, x, y, s);
    case 2: return skinny_lanes<T, 2>(w, x, y, s);
    case 4: return skinny_lanes<T, 4>(w, x, y, s);
    case 8: return skinny_lanes<T, 8>(w, x, y, s);
    default: return skinny_lanes<T, 16>(w, x, y, s);
  }
}

}  // namespace

cudaError_t launch_spmm_balanced(const BalancedDevice& w, const void* x, void* y, bool bf16, BalancedVariant v,
                                 cudaStream_t stream) {
  return bf16 ? launch<__nv_bfloat16>(w, x, y, v, stream) : launch<__half>(w, x, y, v, stream);
}

}  // namespace sb::gpu
