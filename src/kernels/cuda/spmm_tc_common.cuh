#pragma once
// The device steps our tensor-core SpMM kernels share (balanced_tc in spmm_balanced.cu, csr_tc in
// spmm_csr.cu): "load as sparse, compute as dense" (Flash-LLM). A block holds kTcRowWarps warps of
// 16 rows times 16 columns of Y, in `ksplit` warp groups that take turns over the k-tiles. Per
// step the block stages X's slices for the groups' tiles, transposed; each warp scatters its
// entries into its dense 16 x kw tile of W in shared memory (zeroed once at the start), runs kw / 16
// k-steps of two m16n8k16 MMAs, and writes zeros back at the places it scattered (the scatter and
// clear are the kernel's own part). The next step's X tile is loaded into registers during each
// step, and the W tile of 1 or 2 steps ahead (tc_prefetch_steps), so that neither the L2 nor the
// HBM round trip sits between two steps. At the end the
// groups' sums meet in shared memory.
// Shared memory (tc_smem_bytes): [ksplit * 4 warps][16][stride] W tiles, [ksplit][16][stride]
// X slices, [ksplit - 1][4][32][8] floats of partial sums.
#include "kernels/cuda/balanced_tc_layout.h"
#include "kernels/cuda/device_limits.h"  // smem_optin_limit
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/spmm_common.cuh"

namespace sb::gpu {

template <class T>
struct TcSmem {
  T* w_tile;      // this warp's [16][stride]
  T* x_slices;    // [ksplit][16 columns][stride]
  float* red;     // [ksplit - 1][kTcRowWarps][32][8]
};

template <class T>
__device__ __forceinline__ TcSmem<T> tc_smem(const TcLayout& l, int warp) {
  T* smem = dynamic_smem<T>();
  TcSmem<T> s;
  s.w_tile = smem + warp * 16 * l.stride;
  s.x_slices = smem + l.ksplit * kTcRowWarps * 16 * l.stride;
  s.red = reinterpret_cast<float*>(s.x_slices + l.ksplit * kTcCols * l.stride);
  return s;
}

// A step's X slices, transposed: x_slices[h][column][r] = X[(t0 + h) * kt + r][col0 + column] for
// the step's first tile t0, zero past k, past n, in a tile's rounding columns kt .. kw and for tiles
// from t_end on (past the block's slice of k). In two halves, so that the loads of the next step are
// in flight during this one: tc_load_x takes a thread's units of 8 columns (at most kTcXUnits:
// ksplit * kw * 2 units over 128 * ksplit threads) into registers, tc_store_x writes them. Every
// thread of the block takes part.
constexpr int kTcXUnits = 4;  // kw <= 256: kw / 64 units per thread

template <class T>
__device__ __forceinline__ void tc_load_x(uint4 (&xr)[kTcXUnits], const T* __restrict__ x, const TcLayout& l, int t0,
                                          int t_end, long long col0, long long k, long long n) {
  const int units = l.ksplit * l.kw * 2;
#pragma unroll
  for (int j = 0; j < kTcXUnits; ++j) {
    xr[j] = make_uint4(0, 0, 0, 0);  // zero bits: 0 in f16 and bf16
    const int u = threadIdx.x + j * blockDim.x;
    if (u >= units) continue;
    const int q = u / (l.ksplit * l.kw), rall = u % (l.ksplit * l.kw);
    const int h = rall / l.kw, r = rall % l.kw;
    const long long kr = static_cast<long long>(t0 + h) * l.kt + r;
    const long long c = col0 + 8 * q;
    if (r >= l.kt || t0 + h >= t_end || kr >= k || c >= n) continue;
    if (n % 8 == 0) {
      xr[j] = __ldg(reinterpret_cast<const uint4*>(x + kr * n + c));
    } else {
      T* v = reinterpret_cast<T*>(&xr[j]);
#pragma unroll
      for (int i = 0; i < 8; ++i)
        if (c + i < n) v[i] = __ldg(x + kr * n + c + i);
    }
  }
}

template <class T>
__device__ __forceinline__ void tc_store_x(const uint4 (&xr)[kTcXUnits], T* x_slices, const TcLayout& l) {
  const int units = l.ksplit * l.kw * 2;
#pragma unroll
  for (int j = 0; j < kTcXUnits; ++j) {
    const int u = threadIdx.x + j * blockDim.x;
    if (u >= units) continue;
    const int q = u / (l.ksplit * l.kw), rall = u % (l.ksplit * l.kw);
    const int h = rall / l.kw, r = rall % l.kw;
    T* dst = x_slices + (h * kTcCols + 8 * q) * l.stride + r;
    const T* v = reinterpret_cast<const T*>(&xr[j]);
#pragma unroll
    for (int i = 0; i < 8; ++i) dst[i * l.stride] = v[i];
  }
}

// The warp's W tile to zero (its kw columns; the padding is never read), then __syncwarp: once,
// at the start; after that each tile clears the places it scattered once its MMAs are done.
template <class T>
__device__ __forceinline__ void tc_zero_tile(T* w_tile, const TcLayout& l, int lane) {
  const int units_per_row = l.kw / 8;
  for (int u = lane; u < 16 * units_per_row; u += 32) {
    T* unit = w_tile + (u / units_per_row) * l.stride + 8 * (u % units_per_row);
    SB_SMEM_ALIGNED(unit, 16);
    *reinterpret_cast<uint4*>(unit) = make_uint4(0, 0, 0, 0);
  }
  __syncwarp();
}

// acc[j] += W tile (16 x kw) x X slice columns 8 j .. 8 j + 7.
template <class T>
__device__ __forceinline__ void tc_mma_tile(const T* w_tile, const T* xs, const TcLayout& l, int lane, float (&acc)[2][4]) {
  const int gq = lane >> 2, tq = lane & 3;
  for (int kk = 0; kk < l.kw; kk += 16) {
    const int kc = kk + 2 * tq;
    const unsigned a[4] = {ld_pair(w_tile + gq * l.stride + kc), ld_pair(w_tile + (gq + 8) * l.stride + kc),
                           ld_pair(w_tile + gq * l.stride + kc + 8), ld_pair(w_tile + (gq + 8) * l.stride + kc + 8)};
    const unsigned b0[2] = {ld_pair(xs + gq * l.stride + kc), ld_pair(xs + gq * l.stride + kc + 8)};
    const unsigned b1[2] = {ld_pair(xs + (8 + gq) * l.stride + kc), ld_pair(xs + (8 + gq) * l.stride + kc + 8)};
    mma_16816<T>(acc[0], a, b0);
    mma_16816<T>(acc[1], a, b1);
  }
}

// The end: groups 1 .. ksplit - 1 hand their sums to group 0, which writes its 16 rows x 16 columns
// (rows from row0, columns from col0, within m x n) of Y, or, where k is sliced over kz blocks, of
// this block's fp32 partial sums, ws[blockIdx.z][m][n]. Every thread of the block calls it.
template <class T>
__device__ __forceinline__ void tc_finish(float (&acc)[2][4], float* red, const TcLayout& l, int group, int wrow, int lane,
                                          long long row0, long long col0, long long m, long long n, T* __restrict__ y,
                                          float* __restrict__ ws) {
  if (group > 0) {
    float* mine = red + (((group - 1) * kTcRowWarps + wrow) * 32 + lane) * 8;
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int o = 0; o < 4; ++o) mine[j * 4 + o] = acc[j][o];
  }
  __syncthreads();
  if (group > 0) return;
  for (int h = 1; h < l.ksplit; ++h) {
    const float* theirs = red + (((h - 1) * kTcRowWarps + wrow) * 32 + lane) * 8;
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int o = 0; o < 4; ++o) acc[j][o] += theirs[j * 4 + o];
  }
  const int gq = lane >> 2, tq = lane & 3;
#pragma unroll
  for (int j = 0; j < 2; ++j)
#pragma unroll
    for (int o = 0; o < 4; ++o) {
      const long long r = row0 + gq + (o >= 2 ? 8 : 0), c = col0 + 8 * j + 2 * tq + o % 2;
      if (r >= m || c >= n) continue;
      if (l.kz > 1)
        ws[(static_cast<long long>(blockIdx.z) * m + r) * n + c] = acc[j][o];
      else
        y[r * n + c] = Elem<T>::from_f(acc[j][o]);
    }
}

// Where k is sliced: Y = the sum of the kz partial outputs in ws ([kz][count]), in fp32.
template <class T>
__global__ void tc_sum_slices(const float* __restrict__ ws, int kz, long long count, T* __restrict__ y) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    float s = 0.f;
    for (int z = 0; z < kz; ++z) s += ws[z * count + i];
    y[i] = Elem<T>::from_f(s);
  }
}

// How many steps ahead a warp loads its W tiles: 2 where a lane holds at most 2 chunks of a tile
// (the 90 % cases: a third register set still fits, and a tile's HBM round trip then spans two
// steps of scatter and MMAs rather than one), else 1 (4 chunks a lane already take the 128
// registers a thread has at 512 threads).
constexpr int tc_prefetch_steps(int chunks_per_lane) { return chunks_per_lane <= 2 ? 2 : 1; }

// The end of a step: the registers of the tile 1 step ahead become this tile's (cur), and for
// D = 2 those of the tile 2 steps ahead (fresh, just loaded) the next one's (ahead). For D = 1
// `ahead` is unused.
template <int D, class U, int CPL>
__device__ __forceinline__ void tc_shift(U (&cur)[CPL], U (&ahead)[CPL], const U (&fresh)[CPL]) {
#pragma unroll
  for (int j = 0; j < CPL; ++j) {
    if constexpr (D == 2) {
      cur[j] = ahead[j];
      ahead[j] = fresh[j];
    } else {
      cur[j] = fresh[j];
    }
  }
}

// Launches a tensor-core kernel (balanced_tc or csr_tc, one instantiation) on w (m x k weight, n
// columns) with the layout the op planned (w's tc layout, tc_plan / csr_tc_plan): a block per 64
// rows, 16 columns and slice of k, 128 threads per warp group, its shared memory allowed first.
// Column tiles are the grid's x (blocks run in x order first), so that the blocks reading the same
// rows of W run together and share them in L2 when n is large; row blocks are its y (at most
// kTcMaxRowBlocks), slices of k its z. Where k is sliced (kz > 1), a second kernel sums the
// partial outputs the blocks left in the workspace (ws, tc_workspace_floats of them).
template <class Kernel, class Dev, class T>
inline cudaError_t launch_tc(Kernel kernel, const Dev& w, const TcLayout& l, const T* x, T* y, float* ws, cudaStream_t s) {
  if (!tc_rows_fit(w.m) || l.kz < 1 || l.slice < 1 || (l.kz > 1 && ws == nullptr)) return cudaErrorInvalidValue;
  const std::size_t smem = tc_smem_bytes(l);
  if (const cudaError_t e = allow_smem(kernel, smem); e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>((w.n + kTcCols - 1) / kTcCols), static_cast<unsigned>((w.m + kTcRows - 1) / kTcRows),
                  static_cast<unsigned>(l.kz));
  if (const cudaError_t e = launch_kernel(kernel, grid, kTcRowWarps * 32 * l.ksplit, smem, s, w, l, x, y, ws);
      e != cudaSuccess || l.kz == 1)
    return e;
  const long long count = w.m * w.n;
  const long long blocks = (count + 255) / 256 < 8LL * sm_count() ? (count + 255) / 256 : 8LL * sm_count();
  return launch_kernel(tc_sum_slices<T>, static_cast<unsigned>(blocks), 256, 0, s, static_cast<const float*>(ws), l.kz,
                       count, y);
}

// Warp groups per block for `blocks` blocks (k's slices included) of `tiles` k-tiles each (a
// slice's): doubled while the blocks x groups stay under two per SM (small layers are
// latency-bound: more groups, more loads in flight at once), every group still gets at least one
// tile, and the block's shared memory (smem_of(split)) fits the device.
template <class SmemOf>
inline int tc_pick_split(long long blocks, int tiles, std::size_t smem_limit, SmemOf smem_of) {
  int split = 1;
  while (split < kTcMaxSplit && blocks * split < 2LL * sm_count() && tiles >= 2 * split && smem_of(2 * split) <= smem_limit)
    split *= 2;
  return split;
}

// A tensor-core layout (l: its tiles, one slice, one group) planned for an m x n output on the
// current device: the slices of k over blocks (tc_pick_kz), then the warp groups per block.
inline TcLayout tc_plan_grid(TcLayout l, std::int64_t m, std::int64_t n) {
  tc_set_slices(l, tc_pick_kz(m, n, l.tiles, sm_count()));
  const long long blocks = (m + kTcRows - 1) / kTcRows * ((n + kTcCols - 1) / kTcCols) * l.kz;
  l.ksplit = tc_pick_split(blocks, l.slice, smem_optin_limit(), [&](int split) {
    TcLayout t = l;
    t.ksplit = split;
    return tc_smem_bytes(t);
  });
  return l;
}

}  // namespace sb::gpu
