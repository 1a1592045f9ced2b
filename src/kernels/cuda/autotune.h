#pragma once
// Host side, CUDA runtime: our ops' plans chosen by timing at initialize (session 14; the choosing
// itself, free of CUDA, in plan_tuning.h). The launchers' models propose; every candidate runs
// once, then is timed on scratch X / Y as every implementation here times its candidates
// (time_candidate_us: the median of 5 calls, each after an L2 flush, the conditions the default
// protocol measures in; the cuBLASLt and cuSPARSE wrappers time their algorithms the same way),
// and the fastest is kept:
//   tensor-core kernels (batch >= 8): tc_candidates, the slices of k and the warp groups;
//   staged batch-1 kernels: staged_thread_candidates, the block size.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/cuda/balanced_tc_layout.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_limits.h"
#include "kernels/cuda/staged_x.h"

namespace sb::gpu {

// Candidates' workspaces at most this many floats (64 MB) unless the model's is larger.
constexpr std::int64_t kTcTuneMaxWsFloats = std::int64_t{16} << 20;

// Scratch X and Y for timing, at least 16 bytes each, X filled with kCandidateFill as every
// implementation's is.
struct TuneScratch {
  DeviceBuffer x, y;
  TuneScratch(std::size_t x_bytes, std::size_t y_bytes)
      : x(std::max<std::size_t>(x_bytes, 16)), y(std::max<std::size_t>(y_bytes, 16)) {
    x.fill_bytes(kCandidateFill);
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
  if (!plan_timing_enabled()) {  // the model's plan, untimed (candidates = 0 says so in the note)
    TcTuning t;
    t.best = t.first = model;
    return t;
  }
  const std::vector<TcLayout> cands =
      tc_candidates(model, m, n, smem_optin_limit(), std::max(tc_workspace_floats(model, m, n), kTcTuneMaxWsFloats));
  std::int64_t ws_floats = 0;
  for (const TcLayout& c : cands) ws_floats = std::max(ws_floats, tc_workspace_floats(c, m, n));
  TuneScratch s(static_cast<std::size_t>(k * n) * elem_bytes, static_cast<std::size_t>(m * n) * elem_bytes);
  DeviceBuffer ws(std::max<std::size_t>(static_cast<std::size_t>(ws_floats) * sizeof(float), 16));
  float* wsp = static_cast<float*>(ws.get());
  std::string line;
  const TcTuning t = tc_tune(cands, logged<TcLayout>(&line, [](const TcLayout& l) { return std::to_string(l.kz) + "x" + std::to_string(l.ksplit); },
                                                     [&](const TcLayout& l) -> double {
                                                       auto call = [&] { return launch(l, s.x.get(), s.y.get(), wsp); };
                                                       if (!runs_once(call)) return -1;
                                                       return time_candidate_us([&] { return call() == cudaSuccess; });
                                                     }));
  if (verbose_plans())
    std::fprintf(stderr, "sparsebench: plans: tensor cores %lldx%lldx%lld, slices x warp groups (model %dx%d): %s\n",
                 static_cast<long long>(m), static_cast<long long>(k), static_cast<long long>(n), model.kz, model.ksplit,
                 line.c_str());
  return t;
}

// The block size of a staged batch-1 kernel on `dev` (BalancedDevice or CsrDevice: m, k, threads)
// whose rows hold about `chunks` chunks: launch(dev with threads set, x, y) -> cudaError_t runs it
// on the default stream; x holds k and y m elements of elem_bytes each.
template <class Dev, class Launch>
StagedTuning tune_staged(const Dev& dev, std::int64_t chunks, std::size_t elem_bytes, Launch launch) {
  const std::vector<int> candidates = staged_thread_candidates(dev.m, staged_lanes(chunks), sm_count());
  if (!plan_timing_enabled()) {  // the rule's size, untimed (candidates = 0 says so in the note)
    StagedTuning t;
    t.best = t.first = candidates[0];
    return t;
  }
  TuneScratch s(static_cast<std::size_t>(dev.k) * elem_bytes, static_cast<std::size_t>(dev.m) * elem_bytes);
  std::string line;
  const StagedTuning t = tune(candidates, logged<int>(&line, [](int threads) { return std::to_string(threads); },
                                                      [&](int threads) -> double {
                                                        Dev d = dev;
                                                        d.threads = threads;
                                                        auto call = [&] { return launch(d, s.x.get(), s.y.get()); };
                                                        if (!runs_once(call)) return -1;
                                                        return time_candidate_us([&] { return call() == cudaSuccess; });
                                                      }));
  if (verbose_plans())
    std::fprintf(stderr, "sparsebench: plans: staged %lldx%lldx1, threads per block (rule %d): %s\n",
                 static_cast<long long>(dev.m), static_cast<long long>(dev.k), candidates[0], line.c_str());
  return t;
}

}  // namespace sb::gpu
