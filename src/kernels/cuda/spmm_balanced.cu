// Balanced / N:M SpMM kernels. Every row has the same number of entries per bank, so the rows of
// a block do identical work (no row-length branches) and a chunk of k rows of X serves every row
// of the block for exactly (chunk / bank) * kb entries each.
#include <algorithm>
#include <map>
#include <mutex>

#include "kernels/cuda/spmm_balanced.cuh"
#include "kernels/cuda/spmm_common.cuh"
#include "kernels/cuda/spmm_tc_common.cuh"

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

// n = 1 (see balanced_gemv_layout.h). First the block stages X bank-interleaved in shared memory:
// each warp takes tiles of 32 banks x seg offsets, loads them coalesced (a lane holds up to
// kGemvJobsPerPass tiles in registers, so that their loads are in flight together), transposes them
// through a padded per-warp staging tile and writes xs rows of 32 consecutive banks. Then each warp
// takes rows: per group of 128 banks and slot, lane j loads 4 values (8 bytes) and 4 offsets
// (4 bytes) -- banks j, 32 + j, 64 + j, 96 + j -- and gathers their X from shared-memory bank j; the
// tail banks one per lane. A shuffle reduction ends the row.
template <class T>
__global__ void __launch_bounds__(kGemvWarps * 32) balanced_gemv(BalancedGemvDevice w, const T* __restrict__ x, T* __restrict__ y) {
  float* smem = dynamic_smem<float>();
  const GemvLayout l = w.layout;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int seg = gemv_stage_seg(l), segs = gemv_stage_segs(l), jobs = gemv_stage_jobs(l);
  float* xs = smem;
  float* stage = smem + static_cast<long long>(l.bank) * l.smem_stride + warp * 32 * (seg + 1);
  for (int j0 = warp; j0 < jobs; j0 += kGemvJobsPerPass * kGemvWarps) {
    float v[kGemvJobsPerPass][kGemvStageSeg];
#pragma unroll
    for (int u = 0; u < kGemvJobsPerPass; ++u) {
      const int job = j0 + u * kGemvWarps;
#pragma unroll
      for (int e = 0; e < kGemvStageSeg; ++e) {
        v[u][e] = 0.f;
        if (job < jobs && e < seg) {
          const int p = lane + 32 * e;  // the tile's element: bank row p / seg, offset column p % seg
          const int b = 32 * (job / segs) + p / seg;
          const int o = seg * (job % segs) + p % seg;
          const long long col = static_cast<long long>(b) * l.bank + o;
          if (b < l.banks && o < l.bank && col < l.k) v[u][e] = Elem<T>::to_f(x[col]);
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kGemvJobsPerPass; ++u) {
      const int job = j0 + u * kGemvWarps;
      if (job >= jobs) break;  // the same for every lane of the warp
#pragma unroll
      for (int e = 0; e < kGemvStageSeg; ++e)
        if (e < seg) {
          const int p = lane + 32 * e;
          stage[(p / seg) * (seg + 1) + p % seg] = v[u][e];
        }
      __syncwarp();
      const int b0 = 32 * (job / segs), o0 = seg * (job % segs);
      for (int c = 0; c < seg && o0 + c < l.bank; ++c) xs[gemv_smem_index(l, o0 + c, b0 + lane)] = stage[lane * (seg + 1) + c];
      __syncwarp();
    }
  }
  __syncthreads();

  for (long long row = static_cast<long long>(blockIdx.x) * kGemvWarps + warp; row < w.m;
       row += static_cast<long long>(gridDim.x) * kGemvWarps) {
    const T* vr = static_cast<const T*>(w.values) + row * l.row_stride;
    const std::uint8_t* orow = w.offsets + row * l.row_stride;
    float acc = 0.f;
    for (int g = 0; g < l.groups; ++g) {
#pragma unroll 4
      for (int i = 0; i < l.kb; ++i) {
        const int pos = gemv_main_pos(l, i, g, lane, 0);
        const uint2 vv = __ldg(reinterpret_cast<const uint2*>(vr + pos));
        const unsigned oo = __ldg(reinterpret_cast<const unsigned*>(orow + pos));
        const T* v4 = reinterpret_cast<const T*>(&vv);
#pragma unroll
        for (int q = 0; q < 4; ++q)
          acc += Elem<T>::to_f(v4[q]) * xs[gemv_smem_index(l, static_cast<int>((oo >> (8 * q)) & 0xFFu), gemv_main_bank(g, lane, q))];
      }
    }
    for (int t = lane; t < l.tail; t += 32) {
#pragma unroll 4
      for (int i = 0; i < l.kb; ++i) {
        const int pos = gemv_tail_pos(l, i, t);
        acc += Elem<T>::to_f(vr[pos]) * xs[gemv_smem_index(l, __ldg(orow + pos), l.main + t)];
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) y[row] = Elem<T>::from_f(acc);
  }
}

// n = 1, X staged in shared memory (the `staged` variant). The fast kernel's H100 timings track its
// entry count, not its bytes (session 10: the CSR kernel on the same weights, with 8 % more entries
// and 34-43 % more bytes, took 8-12 % longer), which points at its gather of X through L1: a warp's
// 32 lanes read 32 scattered 2-byte values from up to 32 cache lines per step. Here a block first sends out its rows' weight
// loads (every chunk a lane owns, CPL of them, in registers: one round trip to HBM, not one per
// chunk), then copies X into shared memory in 16-byte units while they are in flight, and gathers
// X from there: a warp-wide gather of random 2-byte values costs a few shared-memory bank
// conflicts at most. Rows are split over L lanes as in the fast kernel; a row longer than L * CPL
// chunks is done in passes.
template <class T, int L, int CPL>
__global__ void __launch_bounds__(kStagedMaxThreads) balanced_staged(BalancedDevice w, const T* __restrict__ x, T* __restrict__ y) {
  T* xs = dynamic_smem<T>();
  const int lane = threadIdx.x % L;
  const long long row = static_cast<long long>(blockIdx.x) * (blockDim.x / L) + threadIdx.x / L;
  const bool has_row = row < w.m;
  const int chunks = w.row_stride / 8;
  const int per_pass = L * CPL;
  const int passes = (chunks + per_pass - 1) / per_pass;
  const uint4* vrow = reinterpret_cast<const uint4*>(static_cast<const T*>(w.values) + (has_row ? row : 0) * w.row_stride);
  const uint2* orow = reinterpret_cast<const uint2*>(w.offsets + (has_row ? row : 0) * w.row_stride);
  uint4 vv[CPL];
  uint2 oo[CPL];
  auto load_pass = [&](int p) {
#pragma unroll
    for (int q = 0; q < CPL; ++q) {
      const int c = p * per_pass + q * L + lane;
      if (has_row && c < chunks) {
        vv[q] = __ldg(vrow + c);
        oo[q] = __ldg(orow + c);
      }
    }
  };
  load_pass(0);

  copy_x_to_smem<T>(xs, x, w.k);  // while the loads are in flight
  __syncthreads();

  const unsigned last_bank = static_cast<unsigned>(w.banks - 1);
  float acc = 0.f;
  for (int p = 0; p < passes; ++p) {
    if (p > 0) load_pass(p);
#pragma unroll
    for (int q = 0; q < CPL; ++q) {
      const int c = p * per_pass + q * L + lane;
      if (!has_row || c >= chunks) continue;
      const T* vs = reinterpret_cast<const T*>(&vv[q]);
      const std::uint8_t* os = reinterpret_cast<const std::uint8_t*>(&oo[q]);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        // As in the fast kernel: the bank by a multiply-high, the row's padding read as the last
        // bank's first column (value 0), so no branch.
        const unsigned b = min(fast_div(static_cast<unsigned>(c * 8 + i), w.kb_div), last_bank);
        acc += Elem<T>::to_f(vs[i]) * Elem<T>::to_f(xs[b * w.bank + os[i]]);
      }
    }
  }
  float sums[1] = {acc};
  reduce_store<T, L, 1>(sums, lane, has_row ? row : -1, 0, 1, y);
}

// n >= 8 on tensor cores (see balanced_tc_layout.h, spmm_tc_common.cuh). CPL: chunks per lane of
// a warp's tile. Each lane's (row, chunk) pairs are the same in every tile, so they are worked out
// once; the loads of the tile D steps ahead (tc_prefetch_steps) go out right after this tile's
// scatter and are in flight during its MMAs. The block works through the tiles of its slice of k
// (blockIdx.z), [t_begin, t_end).
template <class T, int CPL, int D>
__global__ void __launch_bounds__(kTcRowWarps * kTcMaxSplit * 32)
    balanced_tc(BalancedDevice w, TcLayout l, const T* __restrict__ x, T* __restrict__ y, float* __restrict__ ws) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wrow = warp % kTcRowWarps, group = warp / kTcRowWarps;
  const TcSmem<T> sm = tc_smem<T>(l, warp);
  const long long row0 = static_cast<long long>(blockIdx.y) * kTcRows + wrow * 16;
  const long long col0 = static_cast<long long>(blockIdx.x) * kTcCols;
  const int tile_chunks = l.e / 8, row_chunks = w.row_stride / 8;
  const int t_begin = static_cast<int>(blockIdx.z) * l.slice, t_end = min(l.tiles, t_begin + l.slice);

  int cr[CPL], cc[CPL];
  bool cv[CPL];
#pragma unroll
  for (int j = 0; j < CPL; ++j) {
    const int q = lane + 32 * j;
    cr[j] = q / tile_chunks;
    cc[j] = q % tile_chunks;
    cv[j] = q < 16 * tile_chunks && row0 + cr[j] < w.m;
  }
  // This tile's entries (vv, oo), the next one's (v1, o1; D = 2 only) and those of the tile D steps
  // ahead (vn, on): those loads are in flight during this tile's MMAs (and for D = 2 the next
  // step's too), and this tile's places are still known after them, to clear.
  uint4 vv[CPL], v1[CPL], vn[CPL];
  uint2 oo[CPL], o1[CPL], on[CPL];
  auto load_tile = [&](int t, uint4 (&v)[CPL], uint2 (&o)[CPL]) {
#pragma unroll
    for (int j = 0; j < CPL; ++j) {
      const int c = t * tile_chunks + cc[j];
      if (cv[j] && t < t_end && c < row_chunks) {
        const long long r = row0 + cr[j];
        v[j] = __ldg(reinterpret_cast<const uint4*>(static_cast<const T*>(w.values) + r * w.row_stride) + c);
        o[j] = __ldg(reinterpret_cast<const uint2*>(w.offsets + r * w.row_stride) + c);
      } else {
        v[j] = make_uint4(0, 0, 0, 0);  // value 0: nothing scattered
        o[j] = make_uint2(0, 0);
      }
    }
  };
  // Tile t's entries into the warp's dense W tile (clear: zeros at their places instead, which
  // leaves the tile all zero again after its MMAs, cheaper than zeroing all 16 x kw).
  auto scatter = [&](int t, bool clear) {
    const unsigned first_bank = static_cast<unsigned>(t) * l.g;
#pragma unroll
    for (int j = 0; j < CPL; ++j) {
      const T* vs = reinterpret_cast<const T*>(&vv[j]);
      const unsigned short* bits = reinterpret_cast<const unsigned short*>(&vv[j]);
      const std::uint8_t* os = reinterpret_cast<const std::uint8_t*>(&oo[j]);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        if ((bits[i] & 0x7FFFu) == 0) continue;  // a zero: padding (or a kept zero), nothing to add
        const unsigned e = static_cast<unsigned>((t * tile_chunks + cc[j]) * 8 + i);
        const unsigned b = fast_div(e, w.kb_div) - first_bank;
        sm.w_tile[cr[j] * l.stride + b * w.bank + os[i]] = clear ? Elem<T>::from_f(0.f) : vs[i];
      }
    }
  };

  float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
  const int steps = (t_end - t_begin + l.ksplit - 1) / l.ksplit;
  uint4 xr[kTcXUnits];
  tc_load_x<T>(xr, x, l, t_begin, t_end, col0, w.k, w.n);
  load_tile(t_begin + group, vv, oo);
  if constexpr (D == 2) load_tile(t_begin + group + l.ksplit, v1, o1);
  tc_zero_tile<T>(sm.w_tile, l, lane);  // once: every tile's MMAs end by clearing what it scattered
  for (int s = 0; s < steps; ++s) {
    const int t = t_begin + s * l.ksplit + group;
    __syncthreads();  // the last step's MMAs are done with the X slices and W tiles
    tc_store_x<T>(xr, sm.x_slices, l);
    tc_load_x<T>(xr, x, l, t_begin + (s + 1) * l.ksplit, t_end, col0, w.k, w.n);  // the next step's, in flight now
    if (t < t_end) scatter(t, false);
    load_tile(t + D * l.ksplit, vn, on);
    __syncthreads();  // X staged and every W tile scattered
    if (t < t_end) {
      tc_mma_tile<T>(sm.w_tile, sm.x_slices + group * kTcCols * l.stride, l, lane, acc);
      __syncwarp();  // every lane's fragment reads done before the clear
      scatter(t, true);
    }
    tc_shift<D>(vv, v1, vn);
    tc_shift<D>(oo, o1, on);
  }
  tc_finish<T>(acc, sm.red, l, group, wrow, lane, row0, col0, w.m, w.n, y, ws);
}

template <class T>
cudaError_t gemv(const BalancedGemvDevice& w, const T* x, T* y, cudaStream_t s) {
  if (w.m == 0) return cudaSuccess;
  const std::size_t smem = gemv_smem_bytes(w.layout);
  if (const cudaError_t e = allow_smem(balanced_gemv<T>, smem); e != cudaSuccess) return e;
  // Blocks per SM at this shared-memory size, asked once per size (a host call, see allow_smem).
  static std::mutex mu;
  static std::map<std::size_t, int> occupancy;
  int per_sm = 0;
  {
    const std::lock_guard<std::mutex> lock(mu);
    if (const auto it = occupancy.find(smem); it != occupancy.end()) {
      per_sm = it->second;
    } else {
      if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, balanced_gemv<T>, kGemvWarps * 32, smem) != cudaSuccess) {
        cudaGetLastError();
        per_sm = 1;
      }
      occupancy[smem] = per_sm;
    }
  }
  // Every block stages X once: no more blocks than fill the GPU, no more than there are rows.
  const long long blocks = std::min<long long>((w.m + kGemvWarps - 1) / kGemvWarps,
                                               static_cast<long long>(sm_count()) * std::max(per_sm, 1));
  return launch_kernel(balanced_gemv<T>, static_cast<unsigned>(blocks), kGemvWarps * 32, smem, s, w, x, y);
}

// Split-K (see balanced_splitk_layout.h). Grid: x = row tiles of `rows` rows, y = k-slices, z =
// column tiles of NC. Stage the slice of X (16-byte units, coalesced reads; n % 8 == 0 keeps every
// unit inside a row of X and aligned), then each warp takes rows: lane j < width works on bank
// 32 c + j, slot by slot, FMAs NC columns from one or two conflict-free 16-byte shared-memory
// reads; a reduce-scatter leaves one column per lane pair (NC = 16) or quad (NC = 8), added into
// the fp32 workspace.
template <class T, int NC>
__global__ void __launch_bounds__(kSplitkWarps * 32)
    balanced_splitk(BalancedSplitkDevice w, const T* __restrict__ x, int rows) {
  uint4* xs = dynamic_smem<uint4>();
  const SplitkLayout l = w.layout;
  constexpr int kUnits = NC / 8;
  const int c0 = blockIdx.y * l.ck;
  const int cend = min(c0 + l.ck, l.chunks);
  const long long col0 = static_cast<long long>(blockIdx.z) * NC;
  const int slice_rows = (cend - c0) * 32 * l.bank;  // rows of X in the slice (past k: zeros)
  const long long row0 = static_cast<long long>(c0) * 32 * l.bank;
  for (int u = threadIdx.x; u < slice_rows * kUnits; u += blockDim.x) {
    const int lr = u / kUnits, h = u % kUnits;
    const long long c = row0 + lr;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (c < l.k && col0 + 8 * h < w.n) v = __ldg(reinterpret_cast<const uint4*>(x + c * w.n + col0 + 8 * h));
    xs[splitk_unit(l, lr % l.bank, lr / l.bank, h)] = v;
  }
  // The slice's unused banks of a short last k-slice (cend - c0 < ck) are never read.
  __syncthreads();

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const long long first = static_cast<long long>(blockIdx.x) * rows;
  const long long last = min(first + rows, static_cast<long long>(w.m));
  for (long long r = first + warp; r < last; r += kSplitkWarps) {
    const T* vr = static_cast<const T*>(w.values) + r * l.row_stride;
    const std::uint8_t* orow = w.offsets + r * l.row_stride;
    float acc[NC];
#pragma unroll
    for (int j = 0; j < NC; ++j) acc[j] = 0.f;
    for (int c = c0; c < cend; ++c) {
      const int width = splitk_width(l, c);
      if (lane >= width) continue;
      const int lb = 32 * (c - c0) + lane;
#pragma unroll 4
      for (int i = 0; i < l.kb; ++i) {
        const int pos = splitk_pos(l, c, i, lane);
        const float v = Elem<T>::to_f(vr[pos]);
        const int o = orow[pos];
#pragma unroll
        for (int h = 0; h < kUnits; ++h) fma_unit<T>(acc + 8 * h, v, xs[splitk_unit(l, o, lb, h)]);
      }
    }
    add_row_to_workspace<NC>(acc, lane, w.workspace, r, w.n, col0);
  }
}

template <class T, int NC>
cudaError_t splitk_nc(const BalancedSplitkDevice& w, const T* x, T* y, cudaStream_t s) {
  const std::size_t smem = splitk_smem_bytes(w.layout);
  if (const cudaError_t e = allow_smem(balanced_splitk<T, NC>, smem); e != cudaSuccess) return e;
  const long long col_tiles = (w.n + NC - 1) / NC;
  const int rows = splitk_rows(w.m, w.layout.ktiles * col_tiles, kSplitkWarps);
  const dim3 grid(static_cast<unsigned>((w.m + rows - 1) / rows), static_cast<unsigned>(w.layout.ktiles),
                  static_cast<unsigned>(col_tiles));
  if (const cudaError_t e = launch_kernel(balanced_splitk<T, NC>, grid, kSplitkWarps * 32, smem, s, w, x, rows); e != cudaSuccess)
    return e;
  return finish_splitk(w.workspace, y, w.m * w.n, s);
}

template <class T>
cudaError_t splitk(const BalancedSplitkDevice& w, const T* x, T* y, cudaStream_t s) {
  if (w.m == 0 || w.n == 0) return cudaSuccess;
  return w.layout.nc == 16 ? splitk_nc<T, 16>(w, x, y, s) : splitk_nc<T, 8>(w, x, y, s);
}

template <class T, int L, int NC>
cudaError_t skinny(const BalancedDevice& w, const T* x, T* y, cudaStream_t s) {
  const long long passes = (w.n + NC - 1) / NC;
  const int threads = pick_threads(w.m, 32 / L, passes);
  const int rows_per_block = threads / L;
  const dim3 grid(static_cast<unsigned>((w.m + rows_per_block - 1) / rows_per_block), static_cast<unsigned>(passes));
  if (w.n % NC == 0) return launch_kernel(balanced_skinny<T, L, NC, true>, grid, threads, 0, s, w, x, y);
  return launch_kernel(balanced_skinny<T, L, NC, false>, grid, threads, 0, s, w, x, y);
}

template <class T, int NC>
cudaError_t skinny_lanes(const BalancedDevice& w, const T* x, T* y, cudaStream_t s) {
  // Lanes per row: about two 8-entry chunks per lane, so short rows do not idle a whole warp.
  return with_pow2<32>((w.row_stride / 8 + 1) / 2,
                       [&](auto lanes) { return skinny<T, decltype(lanes)::value, NC>(w, x, y, s); });
}

template <class T>
cudaError_t staged(const BalancedDevice& w, const T* x, T* y, cudaStream_t s) {
  return launch_staged<8>(w.row_stride / 8, [](auto lanes, auto cpl) {
    return balanced_staged<T, decltype(lanes)::value, decltype(cpl)::value>;
  }, w, x, y, s);
}

template <class T>
cudaError_t tc(const BalancedDevice& w, const T* x, T* y, cudaStream_t s) {
  // The layout the op planned (tc_plan) for this very shape.
  const TcLayout& l = w.tc;
  if (w.bank > kTcMaxBank || l.tiles != make_tc_layout(w.k, w.bank, w.kb, 1).tiles) return cudaErrorInvalidValue;
  // More than 4 chunks per lane would spill: a kb that tc_padded_kb did not give.
  if (tc_chunks_per_lane(l) > kTcMaxChunksPerLane) return cudaErrorInvalidValue;
  return with_pow2<kTcMaxChunksPerLane>(tc_chunks_per_lane(l), [&](auto cpl) {
    constexpr int C = decltype(cpl)::value;
    return launch_tc(balanced_tc<T, C, tc_prefetch_steps(C)>, w, l, x, y, w.workspace, s);
  });
}

template <class T>
cudaError_t launch(const BalancedDevice& w, const void* xv, void* yv, BalancedVariant v, cudaStream_t s) {
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  if (w.m == 0 || w.n == 0) return cudaSuccess;
  if (v == BalancedVariant::simple) {
    const long long total = w.m * w.n;
    return launch_kernel(balanced_simple<T>, static_cast<unsigned>((total + 255) / 256), 256, 0, s, w, x, y);
  }
  if (v == BalancedVariant::staged) return w.n == 1 ? staged<T>(w, x, y, s) : cudaErrorInvalidValue;
  if (v == BalancedVariant::tc) return tc<T>(w, x, y, s);
  return with_pow2<16>(w.n, [&](auto nc) { return skinny_lanes<T, decltype(nc)::value>(w, x, y, s); });
}

}  // namespace

cudaError_t launch_spmm_balanced_gemv(const BalancedGemvDevice& w, const void* x, void* y, bool bf16, cudaStream_t stream) {
  return bf16 ? gemv<__nv_bfloat16>(w, static_cast<const __nv_bfloat16*>(x), static_cast<__nv_bfloat16*>(y), stream)
              : gemv<__half>(w, static_cast<const __half*>(x), static_cast<__half*>(y), stream);
}

cudaError_t launch_spmm_balanced_splitk(const BalancedSplitkDevice& w, const void* x, void* y, bool bf16,
                                        cudaStream_t stream) {
  return bf16 ? splitk<__nv_bfloat16>(w, static_cast<const __nv_bfloat16*>(x), static_cast<__nv_bfloat16*>(y), stream)
              : splitk<__half>(w, static_cast<const __half*>(x), static_cast<__half*>(y), stream);
}

TcLayout tc_plan(std::int64_t m, std::int64_t n, std::int64_t k, int bank, int kb) {
  return tc_plan_grid(make_tc_layout(k, bank, kb, 1), m, n);
}

cudaError_t launch_spmm_balanced(const BalancedDevice& w, const void* x, void* y, bool bf16, BalancedVariant v,
                                 cudaStream_t stream) {
  return bf16 ? launch<__nv_bfloat16>(w, x, y, v, stream) : launch<__half>(w, x, y, v, stream);
}

}  // namespace sb::gpu
