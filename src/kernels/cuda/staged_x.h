#pragma once
// The shape of our `staged` batch-1 kernels (balanced / N:M in spmm_balanced.cu, CSR in
// spmm_csr.cu), host side: X copied into shared memory (as its f16 / bf16 storage type, in 16-byte
// units) and gathered there. Plain C++: the implementations size and check shared memory with it.
#include <cstddef>
#include <cstdint>

namespace sb::gpu {

constexpr int kStagedMaxThreads = 512;  // threads per block, at most

// Shared memory for a k-long X, bytes (k rounded up to 8 elements, zero past k).
inline std::size_t staged_smem_bytes(std::int64_t k) { return static_cast<std::size_t>((k + 7) / 8) * 16; }

// Threads per block for `rows` rows, `lanes` per row: as many as still give about two blocks per SM
// (each block copies X once, so fewer blocks copy less, as long as every SM has work).
inline int staged_threads(std::int64_t rows, int lanes, int sms) {
  int threads = kStagedMaxThreads;
  while (threads > 32 && (rows + threads / lanes - 1) / (threads / lanes) < 2LL * sms) threads /= 2;
  return threads < lanes ? lanes : threads;
}

}  // namespace sb::gpu
