#pragma once
// Internal to the CUDA backend (host side): CUDA status checks that throw sb::Error naming the call.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/gpu_internal.h"
#include "sparsebench/core/error.h"

#define SB_CUDA_CHECK(call)                                                                        \
  do {                                                                                             \
    const cudaError_t sb_err_ = (call);                                                            \
    if (sb_err_ != cudaSuccess)                                                                    \
      ::sb::fail(::fmt::format("{} failed: {} ({}:{})", #call, cudaGetErrorString(sb_err_),        \
                               __FILE__, __LINE__));                                               \
  } while (0)

namespace sb::gpu {
inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// Two CUDA events, created and destroyed with the object.
struct EventPair {
  cudaEvent_t a = nullptr, b = nullptr;
  EventPair() {
    SB_CUDA_CHECK(cudaEventCreate(&a));
    SB_CUDA_CHECK(cudaEventCreate(&b));
  }
  ~EventPair() {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
};

// Flushes L2 on the default stream as the cold timing protocol does (gpu_runtime.cpp: a write, then
// a read of twice the L2), outside any timed window.
void flush_l2_default_stream();
// How every implementation chooses among its candidate algorithms or plans at initialize (the
// cuBLASLt heuristic's top algorithms, cuSPARSE's algorithms, our kernels' plans, autotune.h): the
// median of kCandidateReps calls of `call` on the default stream, each right after an L2 flush,
// the conditions the default (cold) protocol measures in; microseconds a call, or -1 where `call`
// returned false or the stream reported an error (cleared). The candidate has run once before.
constexpr int kCandidateReps = 5;
// The byte every implementation's scratch X is filled with for that timing: 1.06 in f16, 0.0115 in
// bf16 and f32, 60 in i8; not zeros, whose products the hardware might take at lower power and so
// at a higher clock.
constexpr int kCandidateFill = 0x3C;
template <class Call>
double time_candidate_us(Call call) {
  EventPair ev;
  double us[kCandidateReps];
  for (int r = 0; r < kCandidateReps; ++r) {
    flush_l2_default_stream();
    cudaEventRecord(ev.a);
    const bool ok = call();
    cudaEventRecord(ev.b);
    float ms = 0;
    if (!ok || cudaEventSynchronize(ev.b) != cudaSuccess || cudaEventElapsedTime(&ms, ev.a, ev.b) != cudaSuccess) {
      cudaGetLastError();
      return -1;
    }
    us[r] = 1000.0 * ms;
  }
  std::sort(us, us + kCandidateReps);
  return us[kCandidateReps / 2];
}
// out[c][r] = in[r][c] for an i8 matrix in [rows x cols], row-major (transpose.cu).
cudaError_t launch_transpose_i8(const void* in, void* out, long long rows, long long cols, cudaStream_t stream);
}  // namespace sb::gpu
