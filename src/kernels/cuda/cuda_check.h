#pragma once
// Internal to the CUDA backend (host side): CUDA status checks that throw sb::Error naming the call.
#include <cuda_runtime.h>

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

// Milliseconds for `reps` back-to-back calls of `call` on the default stream (hot caches): how the
// library wrappers pick the fastest of their candidate algorithms at initialize.
template <class Call>
float time_repeated_ms(int reps, Call call) {
  EventPair ev;
  cudaEventRecord(ev.a);
  for (int r = 0; r < reps; ++r) call();
  cudaEventRecord(ev.b);
  cudaEventSynchronize(ev.b);
  float ms = 0;
  cudaEventElapsedTime(&ms, ev.a, ev.b);
  return ms;
}
// Flushes L2 on the default stream as the cold timing protocol does (gpu_runtime.cpp: a write, then
// a read of twice the L2), outside any timed window.
void flush_l2_default_stream();
// Milliseconds of one call of `call` on the default stream right after an L2 flush (cold caches).
template <class Call>
float time_once_cold_ms(Call call) {
  EventPair ev;
  flush_l2_default_stream();
  cudaEventRecord(ev.a);
  call();
  cudaEventRecord(ev.b);
  cudaEventSynchronize(ev.b);
  float ms = 0;
  cudaEventElapsedTime(&ms, ev.a, ev.b);
  return ms;
}
// out[c][r] = in[r][c] for an i8 matrix in [rows x cols], row-major (transpose.cu).
cudaError_t launch_transpose_i8(const void* in, void* out, long long rows, long long cols, cudaStream_t stream);
}  // namespace sb::gpu
