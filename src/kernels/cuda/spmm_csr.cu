// CSR SpMM kernels. Load balance comes from the row swizzle (consecutive subwarps take rows of
// similar length, so a warp's lanes finish together) rather than from splitting rows.
#include <algorithm>

#include "kernels/cuda/spmm_common.cuh"
#include "kernels/cuda/spmm_csr.cuh"
#include "kernels/cuda/spmm_tc_common.cuh"

namespace sb::gpu {
namespace {

template <class T>
__global__ void csr_simple(CsrDevice w, const T* __restrict__ x, T* __restrict__ y) {
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= w.m * w.n) return;
  const long long row = idx / w.n, col = idx % w.n;
  const T* v = static_cast<const T*>(w.values);
  float acc = 0.f;
  for (int p = w.row_ptr[row]; p < w.row_ptr[row + 1]; ++p)
    acc += Elem<T>::to_f(v[p]) * Elem<T>::to_f(x[static_cast<long long>(w.cols[p]) * w.n + col]);
  y[idx] = Elem<T>::from_f(acc);
}

// n <= 64: a subwarp of L lanes per row (rows in swizzled order), the lanes splitting the row's
// 8-entry chunks (16-byte loads of values and of u16 columns), each lane holding NC columns of the
// output (blockIdx.y picks which), X read straight from the read-only cache in NC-column vector
// loads, shuffle reduction. A lane has a couple of chunks in flight per row instead of walking the
// whole row: at small n the time is latency, and this keeps the dependent loads few.
template <class T, int L, int NC, bool VEC>
__global__ void csr_skinny(CsrDevice w, const T* __restrict__ x, T* __restrict__ y) {
  const int lane = threadIdx.x % L;
  const long long slot = static_cast<long long>(blockIdx.x) * (blockDim.x / L) + threadIdx.x / L;
  const long long col0 = static_cast<long long>(blockIdx.y) * NC;
  float acc[NC];
#pragma unroll
  for (int j = 0; j < NC; ++j) acc[j] = 0.f;
  long long row = -1;
  if (slot < w.m) {
    row = w.row_order[slot];
    const int begin = w.row_ptr[row] / 8, end = w.row_ptr[row + 1] / 8;  // in chunks of 8
    const uint4* vp = reinterpret_cast<const uint4*>(w.values);
    const uint4* cp = reinterpret_cast<const uint4*>(w.cols);
    for (int c = begin + lane; c < end; c += L) {
      const uint4 vv = __ldg(vp + c);
      const uint4 cc = __ldg(cp + c);
      const T* vs = reinterpret_cast<const T*>(&vv);
      const std::uint16_t* cs = reinterpret_cast<const std::uint16_t*>(&cc);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float v = Elem<T>::to_f(vs[i]);
        float xv[NC];
        load_x_run<T, NC, VEC>(x + static_cast<long long>(cs[i]) * w.n, col0, w.n, xv);
#pragma unroll
        for (int j = 0; j < NC; ++j) acc[j] += v * xv[j];
      }
    }
  }
  reduce_store<T, L, NC>(acc, lane, row, col0, w.n, y);
}

// n > 64: one row per subwarp of L lanes, each lane 2 adjacent columns of a TN = 2L tile; per entry
// the subwarp reads one contiguous run of X's row (coalesced), 4 entries in flight.
template <class T, int L, bool PAIR>
__global__ void csr_tiled(CsrDevice w, const T* __restrict__ x, T* __restrict__ y) {
  using Pair = typename Elem<T>::Pair;
  constexpr int TN = 2 * L;
  const int lane = threadIdx.x % L;
  const long long slot = static_cast<long long>(blockIdx.x) * (blockDim.x / L) + threadIdx.x / L;
  if (slot >= w.m) return;
  const long long row = w.row_order[slot];
  const long long c0 = static_cast<long long>(blockIdx.y) * TN + 2 * lane;
  const T* v = static_cast<const T*>(w.values);
  const int begin = w.row_ptr[row], end = w.row_ptr[row + 1];
  float a0 = 0.f, a1 = 0.f;
  if (PAIR && c0 + 1 < w.n) {
    // n even: X's row starts on a 4-byte boundary, so a pair is one aligned 4-byte load.
    int p = begin;
    for (; p + 4 <= end; p += 4) {
      float vf[4];
      float2 xv[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        vf[u] = Elem<T>::to_f(v[p + u]);
        xv[u] = Elem<T>::pair_to_f(__ldg(reinterpret_cast<const Pair*>(x + static_cast<long long>(w.cols[p + u]) * w.n + c0)));
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        a0 += vf[u] * xv[u].x;
        a1 += vf[u] * xv[u].y;
      }
    }
    for (; p < end; ++p) {
      const float vf = Elem<T>::to_f(v[p]);
      const float2 xv = Elem<T>::pair_to_f(__ldg(reinterpret_cast<const Pair*>(x + static_cast<long long>(w.cols[p]) * w.n + c0)));
      a0 += vf * xv.x;
      a1 += vf * xv.y;
    }
    y[row * w.n + c0] = Elem<T>::from_f(a0);
    y[row * w.n + c0 + 1] = Elem<T>::from_f(a1);
    return;
  }
  for (int p = begin; p < end; ++p) {
    const float vf = Elem<T>::to_f(v[p]);
    const T* xr = x + static_cast<long long>(w.cols[p]) * w.n;
    if (c0 < w.n) a0 += vf * Elem<T>::to_f(xr[c0]);
    if (c0 + 1 < w.n) a1 += vf * Elem<T>::to_f(xr[c0 + 1]);
  }
  if (c0 < w.n) y[row * w.n + c0] = Elem<T>::from_f(a0);
  if (c0 + 1 < w.n) y[row * w.n + c0 + 1] = Elem<T>::from_f(a1);
}

template <class T, int L, int NC>
cudaError_t skinny(const CsrDevice& w, const T* x, T* y, cudaStream_t s) {
  const long long passes = (w.n + NC - 1) / NC;
  const int threads = pick_threads(w.m, 32 / L, passes);
  const dim3 grid(static_cast<unsigned>((w.m + threads / L - 1) / (threads / L)), static_cast<unsigned>(passes));
  if (w.n % NC == 0) return launch_kernel(csr_skinny<T, L, NC, true>, grid, threads, 0, s, w, x, y);
  return launch_kernel(csr_skinny<T, L, NC, false>, grid, threads, 0, s, w, x, y);
}

template <class T, int NC>
cudaError_t skinny_lanes(const CsrDevice& w, const T* x, T* y, cudaStream_t s) {
  return with_pow2<32>((w.mean_row / 8 + 1) / 2,
                       [&](auto lanes) { return skinny<T, decltype(lanes)::value, NC>(w, x, y, s); });
}

template <class T, int L>
cudaError_t tiled(const CsrDevice& w, const T* x, T* y, cudaStream_t s) {
  constexpr int TN = 2 * L;
  const long long tiles = (w.n + TN - 1) / TN;
  const int threads = pick_threads(w.m, 32 / L, tiles);
  const dim3 grid(static_cast<unsigned>((w.m + threads / L - 1) / (threads / L)), static_cast<unsigned>(tiles));
  if (w.n % 2 == 0) return launch_kernel(csr_tiled<T, L, true>, grid, threads, 0, s, w, x, y);
  return launch_kernel(csr_tiled<T, L, false>, grid, threads, 0, s, w, x, y);
}

// Split-K (see csr_splitk_layout.h). Grid: x = row tiles of `rows` rows, y = k-slices, z =
// column tiles of NC.
template <class T, int NC>
__global__ void __launch_bounds__(kCsrSplitkWarps * 32)
    csr_splitk(CsrSplitkDevice w, const T* __restrict__ x, int rows) {
  uint4* xs = dynamic_smem<uint4>();
  const CsrSplitkLayout l = w.layout;
  constexpr int kUnits = NC / 8;
  const int s = blockIdx.y;
  const long long k0 = static_cast<long long>(s) * l.ks;
  const int kn = static_cast<int>(min(static_cast<long long>(l.ks), l.k - k0));
  const long long col0 = static_cast<long long>(blockIdx.z) * NC;
  for (int u = threadIdx.x; u < kn * kUnits; u += blockDim.x) {
    const int c = u / kUnits, h = u % kUnits;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (col0 + 8 * h < w.n) v = __ldg(reinterpret_cast<const uint4*>(x + (k0 + c) * w.n + col0 + 8 * h));
    xs[csr_splitk_unit(NC, c, h)] = v;
  }
  __syncthreads();

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const std::int32_t* ptr = w.ptr + static_cast<long long>(s) * (l.m + 1);
  const T* vals = static_cast<const T*>(w.values);
  const long long first = static_cast<long long>(blockIdx.x) * rows;
  const long long last = min(first + rows, static_cast<long long>(l.m));
  for (long long r = first + warp; r < last; r += kCsrSplitkWarps) {
    float acc[NC];
#pragma unroll
    for (int j = 0; j < NC; ++j) acc[j] = 0.f;
    const int e1 = ptr[r + 1];
#pragma unroll 2
    for (int e = ptr[r] + lane; e < e1; e += 32) {
      const float v = Elem<T>::to_f(vals[e]);
      const int c = w.cols[e];
#pragma unroll
      for (int h = 0; h < kUnits; ++h) fma_unit<T>(acc + 8 * h, v, xs[csr_splitk_unit(NC, c, h)]);
    }
    add_row_to_workspace<NC>(acc, lane, w.workspace, r, w.n, col0);
  }
}

template <class T, int NC>
cudaError_t csr_splitk_nc(const CsrSplitkDevice& w, const T* x, T* y, cudaStream_t s) {
  const CsrSplitkLayout& l = w.layout;
  const std::size_t smem = csr_splitk_smem_bytes(l);
  if (const cudaError_t e = allow_smem(csr_splitk<T, NC>, smem); e != cudaSuccess) return e;
  const long long col_tiles = (w.n + NC - 1) / NC;
  const int rows = splitk_rows(l.m, l.ktiles * col_tiles, kCsrSplitkWarps);
  const dim3 grid(static_cast<unsigned>((l.m + rows - 1) / rows), static_cast<unsigned>(l.ktiles),
                  static_cast<unsigned>(col_tiles));
  if (const cudaError_t e = launch_kernel(csr_splitk<T, NC>, grid, kCsrSplitkWarps * 32, smem, s, w, x, rows); e != cudaSuccess)
    return e;
  return finish_splitk(w.workspace, y, l.m * w.n, s);
}

// n = 1, X staged in shared memory (the `staged` variant; see balanced_staged in spmm_balanced.cu):
// the fast kernel's swizzled rows and subwarps, every chunk of a lane (up to CPL per pass) loaded at
// once, X copied into shared memory while those loads are in flight and gathered there instead of
// through L1. Rows longer than L * CPL chunks take more passes.
template <class T, int L, int CPL>
__global__ void __launch_bounds__(kStagedMaxThreads) csr_staged(CsrDevice w, const T* __restrict__ x, T* __restrict__ y) {
  T* xs = dynamic_smem<T>();
  const int lane = threadIdx.x % L;
  const long long slot = static_cast<long long>(blockIdx.x) * (blockDim.x / L) + threadIdx.x / L;
  const long long row = slot < w.m ? w.row_order[slot] : -1;
  const int begin = row >= 0 ? w.row_ptr[row] / 8 : 0, end = row >= 0 ? w.row_ptr[row + 1] / 8 : 0;  // chunks of 8
  const uint4* vp = reinterpret_cast<const uint4*>(w.values);
  const uint4* cp = reinterpret_cast<const uint4*>(w.cols);
  uint4 vv[CPL], cc[CPL];
  auto load_pass = [&](int c0) {
#pragma unroll
    for (int q = 0; q < CPL; ++q) {
      const int c = c0 + q * L + lane;
      if (c < end) {
        vv[q] = __ldg(vp + c);
        cc[q] = __ldg(cp + c);
      }
    }
  };
  load_pass(begin);
  copy_x_to_smem<T>(xs, x, w.k);  // while the loads are in flight
  __syncthreads();

  float acc = 0.f;
  for (int c0 = begin; c0 < end; c0 += L * CPL) {
    if (c0 != begin) load_pass(c0);
#pragma unroll
    for (int q = 0; q < CPL; ++q) {
      if (c0 + q * L + lane >= end) continue;
      const T* vs = reinterpret_cast<const T*>(&vv[q]);
      const std::uint16_t* cs = reinterpret_cast<const std::uint16_t*>(&cc[q]);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc += Elem<T>::to_f(vs[i]) * Elem<T>::to_f(xs[cs[i]]);
    }
  }
  float sums[1] = {acc};
  reduce_store<T, L, 1>(sums, lane, row, 0, 1, y);
}

template <class T>
cudaError_t staged(const CsrDevice& w, const T* x, T* y, cudaStream_t s) {
  // Sized for the mean row (rows are swizzled by length, so a warp's rows are alike); up to 8
  // chunks a lane (at 32 lanes; longer rows take passes).
  return launch_staged<8>(w.mean_row / 8, [](auto lanes, auto cpl) {
    return csr_staged<T, decltype(lanes)::value, decltype(cpl)::value>;
  }, w, x, y, s);
}

template <class T>
cudaError_t launch(const CsrDevice& w, const void* xv, void* yv, CsrVariant v, cudaStream_t s) {
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  if (w.m == 0 || w.n == 0) return cudaSuccess;
  if (v == CsrVariant::simple) {
    const long long total = w.m * w.n;
    return launch_kernel(csr_simple<T>, static_cast<unsigned>((total + 255) / 256), 256, 0, s, w, x, y);
  }
  if (v == CsrVariant::staged) return w.n == 1 ? staged<T>(w, x, y, s) : cudaErrorInvalidValue;
  if (w.n <= 64) {
    return with_pow2<16>(w.n, [&](auto nc) { return skinny_lanes<T, decltype(nc)::value>(w, x, y, s); });
  }
  return with_pow2<32>((w.n + 1) / 2, [&](auto lanes) { return tiled<T, decltype(lanes)::value>(w, x, y, s); });
}

// n >= 8 on tensor cores (csr_tc_layout.h, spmm_tc_common.cuh): warp `wrow` of group `group` takes
// row group blockIdx.y * 4 + wrow and, of its block's slice of k (blockIdx.z: tiles [t_begin,
// t_end)), the k-tiles t_begin + group, t_begin + group + ksplit, ...; CPL chunks per lane cover
// the largest tile. The entries of the tile D steps ahead are loaded right after this tile's
// scatter (in flight during its MMAs and, for D = 2, the next step too), and their bounds in ptr
// one step before that.
template <class T, int CPL, int D>
__global__ void __launch_bounds__(kTcRowWarps * kTcMaxSplit * 32)
    csr_tc(CsrTcDevice w, TcLayout l, const T* __restrict__ x, T* __restrict__ y, float* __restrict__ ws) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wrow = warp % kTcRowWarps, group = warp / kTcRowWarps;
  const TcSmem<T> sm = tc_smem<T>(l, warp);
  const long long rg = static_cast<long long>(blockIdx.y) * kTcRowWarps + wrow;
  const long long row0 = rg * 16;
  const long long col0 = static_cast<long long>(blockIdx.x) * kTcCols;
  const bool has_rows = row0 < w.m;
  const int t_begin = static_cast<int>(blockIdx.z) * l.slice, t_end = min(l.tiles, t_begin + l.slice);
  const std::uint32_t* tp = w.ptr + (has_rows ? rg : 0) * l.tiles;
  const uint4* vp = reinterpret_cast<const uint4*>(w.values);
  const uint4* pp = reinterpret_cast<const uint4*>(w.places);

  // This tile's entries (vv, pv), the next one's (v1, p1; D = 2 only) and those of the tile D steps
  // ahead (vn, pn): those loads are in flight during this tile's MMAs, and this tile's places are
  // still known after them, to clear.
  uint4 vv[CPL], pv[CPL], v1[CPL], p1[CPL], vn[CPL], pn[CPL];
  auto bounds = [&](int t) {  // tile t's chunks [lo, hi) (empty past the last tile)
    if (!has_rows || t >= t_end) return make_uint2(0, 0);
    return make_uint2(__ldg(tp + t), __ldg(tp + t + 1));
  };
  auto load_tile = [&](uint2 b, uint4 (&v)[CPL], uint4 (&p)[CPL]) {
#pragma unroll
    for (int j = 0; j < CPL; ++j) {
      const unsigned c = b.x + lane + 32 * j;
      if (c < b.y) {
        v[j] = __ldg(vp + c);
        p[j] = __ldg(pp + c);
      } else {
        v[j] = make_uint4(0, 0, 0, 0);  // value 0: nothing scattered
        p[j] = make_uint4(0, 0, 0, 0);
      }
    }
  };
  // This tile's entries into the warp's dense W tile (clear: zeros at their places instead, which
  // leaves the tile all zero again after its MMAs, cheaper than zeroing all 16 x kt).
  auto scatter = [&](bool clear) {
#pragma unroll
    for (int j = 0; j < CPL; ++j) {
      const T* vs = reinterpret_cast<const T*>(&vv[j]);
      const unsigned short* bits = reinterpret_cast<const unsigned short*>(&vv[j]);
      const std::uint16_t* ps = reinterpret_cast<const std::uint16_t*>(&pv[j]);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        if ((bits[i] & 0x7FFFu) == 0) continue;  // padding (or a kept zero): nothing to add
        sm.w_tile[(ps[i] >> 8) * l.stride + (ps[i] & 0xFFu)] = clear ? Elem<T>::from_f(0.f) : vs[i];
      }
    }
  };

  float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
  const int steps = (t_end - t_begin + l.ksplit - 1) / l.ksplit;
  uint4 xr[kTcXUnits];
  tc_load_x<T>(xr, x, l, t_begin, t_end, col0, w.k, w.n);
  load_tile(bounds(t_begin + group), vv, pv);
  if constexpr (D == 2) load_tile(bounds(t_begin + group + l.ksplit), v1, p1);
  uint2 next = bounds(t_begin + group + D * l.ksplit);
  tc_zero_tile<T>(sm.w_tile, l, lane);  // once: every tile's MMAs end by clearing what it scattered
  for (int s = 0; s < steps; ++s) {
    const int t = t_begin + s * l.ksplit + group;
    __syncthreads();  // the last step's MMAs are done with the X slices and W tiles
    tc_store_x<T>(xr, sm.x_slices, l);
    tc_load_x<T>(xr, x, l, t_begin + (s + 1) * l.ksplit, t_end, col0, w.k, w.n);  // the next step's, in flight now
    scatter(false);  // past the slice's last tile: no entries
    load_tile(next, vn, pn);  // tile t + D * ksplit
    next = bounds(t + (D + 1) * l.ksplit);
    __syncthreads();  // X staged and every W tile scattered
    if (t < t_end) {
      tc_mma_tile<T>(sm.w_tile, sm.x_slices + group * kTcCols * l.stride, l, lane, acc);
      __syncwarp();  // every lane's fragment reads done before the clear
      scatter(true);
    }
    tc_shift<D>(vv, v1, vn);
    tc_shift<D>(pv, p1, pn);
  }
  tc_finish<T>(acc, sm.red, l, group, wrow, lane, row0, col0, w.m, w.n, y, ws);
}

template <class T>
cudaError_t tc(const CsrTcDevice& w, const T* x, T* y, cudaStream_t s) {
  if (w.m == 0 || w.n == 0) return cudaSuccess;
  // The layout the op planned (csr_tc_plan) for this very shape.
  const TcLayout& l = w.layout;
  // Chunks per lane: enough for the largest tile, at most 4 (pack_csr_tc narrows the tiles so).
  if (w.max_chunks > 32 * kTcMaxChunksPerLane || w.kt > kTcCsrKt || w.kt < 16 || w.kt % 16 || l.kt != w.kt ||
      l.tiles != make_csr_tc_layout(w.k, w.kt, 1).tiles)
    return cudaErrorInvalidValue;
  return with_pow2<kTcMaxChunksPerLane>((w.max_chunks + 31) / 32, [&](auto cpl) {
    constexpr int C = decltype(cpl)::value;
    return launch_tc(csr_tc<T, C, tc_prefetch_steps(C)>, w, l, x, y, w.workspace, s);
  });
}

}  // namespace

cudaError_t launch_spmm_csr(const CsrDevice& w, const void* x, void* y, bool bf16, CsrVariant v, cudaStream_t stream) {
  return bf16 ? launch<__nv_bfloat16>(w, x, y, v, stream) : launch<__half>(w, x, y, v, stream);
}

cudaError_t launch_spmm_csr_splitk(const CsrSplitkDevice& w, const void* x, void* y, bool bf16, cudaStream_t stream) {
  if (w.layout.m == 0 || w.n == 0) return cudaSuccess;
  if (bf16) {
    auto* xb = static_cast<const __nv_bfloat16*>(x);
    auto* yb = static_cast<__nv_bfloat16*>(y);
    return w.layout.nc == 16 ? csr_splitk_nc<__nv_bfloat16, 16>(w, xb, yb, stream) : csr_splitk_nc<__nv_bfloat16, 8>(w, xb, yb, stream);
  }
  auto* xh = static_cast<const __half*>(x);
  auto* yh = static_cast<__half*>(y);
  return w.layout.nc == 16 ? csr_splitk_nc<__half, 16>(w, xh, yh, stream) : csr_splitk_nc<__half, 8>(w, xh, yh, stream);
}

cudaError_t launch_spmm_csr_tc(const CsrTcDevice& w, const void* x, void* y, bool bf16, cudaStream_t stream) {
  return bf16 ? tc<__nv_bfloat16>(w, static_cast<const __nv_bfloat16*>(x), static_cast<__nv_bfloat16*>(y), stream)
              : tc<__half>(w, static_cast<const __half*>(x), static_cast<__half*>(y), stream);
}

TcLayout csr_tc_plan(std::int64_t m, std::int64_t n, std::int64_t k, int kt) {
  return tc_plan_grid(make_csr_tc_layout(k, kt, 1), m, n);
}

}  // namespace sb::gpu
