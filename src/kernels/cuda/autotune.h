#pragma once
// Host side, CUDA runtime: our ops' plans chosen by timing at initialize (session 14; the choosing
// itself, free of CUDA, in plan_tuning.h). The launchers' models propose; every candidate runs
// once, then is timed on scratch X / Y, and the fastest is kept -- as the cuBLASLt and cuSPARSE
// wrappers time their candidate algorithms (cublas_gemm.cpp, cusparse_spmm.cpp).
//   tensor-core kernels (batch >= 8): tc_candidates, kTcTuneReps calls back to back (hot caches,
//     as the libraries' candidates are timed): the slices of k and the warp groups;
//   staged batch-1 kernels: staged_thread_candidates, each call after an L2 flush (a batch-1
//     call is bound by its weight's trip from HBM, which hot caches would hide), the median of
//     kStagedTuneReps: the block size.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cuda/balanced_tc_layout.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_limits.h"
#include "kernels/cuda/staged_x.h"

namespace sb::gpu {

constexpr int kTcTuneReps = 10;
constexpr int kStagedTuneReps = 7;
// Candidates' workspaces at most this many floats (64 MB) unless the model's is larger.
constexpr std::int64_t kTcTuneMaxWsFloats = std::int64_t{16} << 20;

// Scratch X and Y for timing: X of 1.06 in f16 (not zeros, whose products the hardware might take
// faster), at least 16 bytes each.
struct TuneScratch {
  DeviceBuffer x, y;
  TuneScratch(std::size_t x_bytes, std::size_t y_bytes)
      : x(std::max<std::size_t>(x_bytes, 16)), y(std::max<std::size_t>(y_bytes, 16)) {
    x.fill_bytes(0x3C);
  }
};

// Runs `launch` once and checks it finished; false (the error cleared) where it did not.
template <class Launch>
bool runs_once(Launch launch) {
  if (launch() != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return true;
}

// launch(layout, x, y, workspace) -> cudaError_t runs the op's kernel with that plan on the
// default stream; x holds k x n and y m x n elements of elem_bytes each.
template <class Launch>
TcTuning tune_tc(const TcLayout& model, std::int64_t m, std::int64_t n, std::int64_t k, std::size_t elem_bytes, Launch launch) {
  const std::vector<TcLayout> cands =
      tc_candidates(model, m, n, smem_optin_limit(), std::max(tc_workspace_floats(model, m, n), kTcTuneMaxWsFloats));
  std::int64_t ws_floats = 0;
  for (const TcLayout& c : cands) ws_floats = std::max(ws_floats, tc_workspace_floats(c, m, n));
  TuneScratch s(static_cast<std::size_t>(k * n) * elem_bytes, static_cast<std::size_t>(m * n) * elem_bytes);
  DeviceBuffer ws(std::max<std::size_t>(static_cast<std::size_t>(ws_floats) * sizeof(float), 16));
  float* wsp = static_cast<float*>(ws.get());
  return tc_tune(cands, [&](const TcLayout& l) -> double {
    auto call = [&] { return launch(l, s.x.get(), s.y.get(), wsp); };
    if (!runs_once(call)) return -1;
    bool ok = true;
    const float ms = time_repeated_ms(kTcTuneReps, [&] { ok = call() == cudaSuccess && ok; });
    if (!ok || cudaGetLastError() != cudaSuccess) return -1;
    return 1000.0 * ms / kTcTuneReps;
  });
}

// launch(threads, x, y) -> cudaError_t runs the staged kernel with blocks of `threads` on the
// default stream; x holds k and y m elements of elem_bytes each.
template <class Launch>
StagedTuning tune_staged(const std::vector<int>& candidates, std::int64_t m, std::int64_t k, std::size_t elem_bytes,
                         Launch launch) {
  TuneScratch s(static_cast<std::size_t>(k) * elem_bytes, static_cast<std::size_t>(m) * elem_bytes);
  return staged_tune(candidates, [&](int threads) -> double {
    auto call = [&] { return launch(threads, s.x.get(), s.y.get()); };
    if (!runs_once(call)) return -1;
    std::vector<double> us;
    for (int r = 0; r < kStagedTuneReps; ++r) {
      bool ok = true;
      us.push_back(1000.0 * time_once_cold_ms([&] { ok = call() == cudaSuccess; }));
      if (!ok || cudaGetLastError() != cudaSuccess) return -1;
    }
    std::nth_element(us.begin(), us.begin() + kStagedTuneReps / 2, us.end());
    return us[kStagedTuneReps / 2];
  });
}

}  // namespace sb::gpu
