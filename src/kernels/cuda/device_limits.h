#pragma once
// Limits of the current device that our launchers and implementations size shared memory by,
// read once (host side; the CPU emulator of tests/cuda/emu answers these calls too).
#include <cuda_runtime.h>

#include <cstddef>

namespace sb::gpu {

// The most dynamic shared memory a block may opt in to on the current device, bytes (48 KB, the
// limit without an opt-in, when the runtime cannot say).
inline std::size_t smem_optin_limit() {
  static const std::size_t limit = [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
      cudaGetLastError();
      return std::size_t{48} << 10;
    }
    return static_cast<std::size_t>(v);
  }();
  return limit;
}

// The device's SM count, read once.
inline int sm_count() {
  static const int sms = [] {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      cudaGetLastError();
      return 132;
    }
    return n;
  }();
  return sms;
}

}  // namespace sb::gpu
