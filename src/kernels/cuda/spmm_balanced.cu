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

// n == 1 (GEMV, memory-bound): a subwarp of L lanes per row; each lane streams chunks of 8 entries
// (16 bytes of values, 8 of offsets) so the weight moves in full 16-byte transactions; X sits in
// shared memory (SMEM) or is read through the read-only cache.
template <class T, int L, bool SMEM>
__global__ void balanced_gemv(BalancedDevice w, const T* __restrict__ x, T* __restrict__ y) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const T* xs = x;
  if constexpr (SMEM) {
    T* s = reinterpret_cast<T*>(smem_raw);
    for (long long i = threadIdx.x; i < w.k; i += blockDim.x) s[i] = x[i];
    __syncthreads();
    xs = s;
  }
  const int lane = threadIdx.x % L;
  const long long row = static_cast<long long>(blockIdx.x) * (blockDim.x / L) + threadIdx.x / L;
  float acc = 0.f;
  if (row < w.m) {
    const uint4* vrow = reinterpret_cast<const uint4*>(static_cast<const T*>(w.values) + row * w.row_stride);
    const uint2* orow = reinterpret_cast<const uint2*>(w.offsets + row * w.row_stride);
    const int chunks = w.row_stride / 8, entries = w.banks * w.kb;
    for (int c = lane; c < chunks; c += L) {
      const uint4 vv = __ldg(vrow + c);
      const uint2 oo = __ldg(orow + c);
      const T* vs = reinterpret_cast<const T*>(&vv);
      const std::uint8_t* os = reinterpret_cast<const std::uint8_t*>(&oo);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int e = c * 8 + i;
        if (e < entries) acc += Elem<T>::to_f(vs[i]) * Elem<T>::to_f(xs[(e / w.kb) * w.bank + os[i]]);
      }
    }
  }
#pragma unroll
  for (int o = L / 2; o > 0; o /= 2) acc += __shfl_down_sync(0xffffffffu, acc, o, L);
  if (row < w.m && lane == 0) y[row] = Elem<T>::from_f(acc);
}

// n > 1: the block stages a tile of X (kc rows, kc a multiple of bank, x TN = 2L columns) in shared
// memory; each subwarp of L lanes owns R rows, each lane 2 adjacent columns, so a lane's shared
// reads are one 4-byte word and a subwarp's are consecutive words (no bank conflict inside it).
// Each row does exactly (kc / bank) * kb entries per tile.
template <class T, int L, int R>
__global__ void balanced_tiled(BalancedDevice w, const T* __restrict__ x, T* __restrict__ y, int kc) {
  using Pair = typename Elem<T>::Pair;
  constexpr int TN = 2 * L;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* xs = reinterpret_cast<T*>(smem_raw);
  const long long n0 = static_cast<long long>(blockIdx.y) * TN;
  const int groups = blockDim.x / L;
  const int lane = threadIdx.x % L;
  const long long row0 = (static_cast<long long>(blockIdx.x) * groups + threadIdx.x / L) * R;
  float acc[R][2];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = 0.f;
  const T* vals[R];
  const std::uint8_t* offs[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const long long row = row0 + r < w.m ? row0 + r : w.m - 1;  // rows past m compute a copy, never stored
    vals[r] = static_cast<const T*>(w.values) + row * w.row_stride;
    offs[r] = w.offsets + row * w.row_stride;
  }
  for (long long k0 = 0; k0 < w.k; k0 += kc) {
    const int rows_here = static_cast<int>(w.k - k0 < kc ? w.k - k0 : kc);
    __syncthreads();  // the previous tile is no longer read
    for (int i = threadIdx.x; i < rows_here * TN; i += blockDim.x) {
      const int r = i / TN, c = i % TN;
      const long long gc = n0 + c;
      xs[i] = gc < w.n ? x[(k0 + r) * w.n + gc] : Elem<T>::from_f(0.f);
    }
    __syncthreads();
    const int b0 = static_cast<int>(k0 / w.bank);
    const int b1 = min(w.banks, b0 + (rows_here + w.bank - 1) / w.bank);
    for (int b = b0; b < b1; ++b) {
      const int base = (b - b0) * w.bank;
      for (int j = 0; j < w.kb; ++j) {
        const int e = b * w.kb + j;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const float v = Elem<T>::to_f(vals[r][e]);
          const int lc = base + offs[r][e];
          const float2 xv = Elem<T>::pair_to_f(*reinterpret_cast<const Pair*>(xs + lc * TN + 2 * lane));
          acc[r][0] += v * xv.x;
          acc[r][1] += v * xv.y;
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const long long row = row0 + r;
    if (row >= w.m) continue;
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const long long gc = n0 + 2 * lane + c;
      if (gc < w.n) y[row * w.n + gc] = Elem<T>::from_f(acc[r][c]);
    }
  }
}

constexpr int kTiledRows = 2;
constexpr int kTileElems = 16384;  // X tile of 32 KiB at 2 bytes: under the 48 KiB default limit

template <class T, int L>
cudaError_t gemv(const BalancedDevice& w, const T* x, T* y, cudaStream_t s) {
  const int threads = pick_threads(w.m, 32 / L, 1);
  const int rows_per_block = threads / L;
  const dim3 grid(static_cast<unsigned>((w.m + rows_per_block - 1) / rows_per_block));
  const std::size_t smem = static_cast<std::size_t>(w.k) * sizeof(T);
  if (smem <= 48 * 1024)
    balanced_gemv<T, L, true><<<grid, threads, smem, s>>>(w, x, y);
  else
    balanced_gemv<T, L, false><<<grid, threads, 0, s>>>(w, x, y);
  return cudaGetLastError();
}

template <class T, int L>
cudaError_t tiled(const BalancedDevice& w, const T* x, T* y, cudaStream_t s) {
  constexpr int TN = 2 * L;
  const int kc = std::max(w.bank, kTileElems / TN / w.bank * w.bank);
  const long long tiles = (w.n + TN - 1) / TN;
  const int threads = pick_threads(w.m, 32 / L * kTiledRows, tiles);
  const int rows_per_block = threads / L * kTiledRows;
  const dim3 grid(static_cast<unsigned>((w.m + rows_per_block - 1) / rows_per_block), static_cast<unsigned>(tiles));
  const std::size_t smem = static_cast<std::size_t>(kc) * TN * sizeof(T);
  balanced_tiled<T, L, kTiledRows><<<grid, threads, smem, s>>>(w, x, y, kc);
  return cudaGetLastError();
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
  if (w.n == 1) {
    // Lanes per row: about two 8-entry chunks per lane, so short rows do not idle a whole warp.
    switch (pow2_at_least((w.row_stride / 8 + 1) / 2, 32)) {
      case 1: return gemv<T, 1>(w, x, y, s);
      case 2: return gemv<T, 2>(w, x, y, s);
      case 4: return gemv<T, 4>(w, x, y, s);
      case 8: return gemv<T, 8>(w, x, y, s);
      case 16: return gemv<T, 16>(w, x, y, s);
      default: return gemv<T, 32>(w, x, y, s);
    }
  }
  switch (pow2_at_least((w.n + 1) / 2, 32)) {  // 2 columns per lane
    case 1: return tiled<T, 1>(w, x, y, s);
    case 2: return tiled<T, 2>(w, x, y, s);
    case 4: return tiled<T, 4>(w, x, y, s);
    case 8: return tiled<T, 8>(w, x, y, s);
    case 16: return tiled<T, 16>(w, x, y, s);
    default: return tiled<T, 32>(w, x, y, s);
  }
}

}  // namespace

cudaError_t launch_spmm_balanced(const BalancedDevice& w, const void* x, void* y, bool bf16, BalancedVariant v,
                                 cudaStream_t stream) {
  return bf16 ? launch<__nv_bfloat16>(w, x, y, v, stream) : launch<__half>(w, x, y, v, stream);
}

}  // namespace sb::gpu
