#pragma once
// The shape of our `staged` batch-1 kernels (balanced / N:M in spmm_balanced.cu, CSR in
// spmm_csr.cu), host side: X copied into shared memory (as its f16 / bf16 storage type, in 16-byte
// units) and gathered there. Plain C++: the implementations size and check shared memory with it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/plan_tuning.h"

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

// Lanes per row the launcher takes for rows of about `chunks` 8-entry chunks: about four chunks a
// lane, the next power of two, at most 32 (launch_staged).
inline int staged_lanes(std::int64_t chunks) {
  int lanes = 1;
  while (lanes < 32 && lanes < (chunks + 3) / 4) lanes *= 2;
  return lanes;
}

// Block sizes worth timing (session 14): staged_threads' rule first, then 64 to kStagedMaxThreads
// (at least a row a block). The rule trades X's copies (one per block, from L2) against blocks per
// SM; at 4096 rows x 11008 it takes 512 blocks of 8 rows, so X (22 KB) is copied 512 times, 11 MB
// of L2 traffic beside the weight's 13.5 MB. Which side wins is for the timing to say.
inline std::vector<int> staged_thread_candidates(std::int64_t rows, int lanes, int sms) {
  std::vector<int> out{staged_threads(rows, lanes, sms)};
  for (int t = 64; t <= kStagedMaxThreads; t *= 2)
    if (t >= lanes && t != out[0]) out.push_back(t);
  return out;
}

// What timing the block sizes gave (tune over staged_thread_candidates: first = the rule's).
using StagedTuning = Tuned<int>;

inline std::string staged_tuning_note(const StagedTuning& t) {
  if (t.candidates == 0) return "blocks of " + std::to_string(t.best) + " threads (the rule's; " + kPlansUntimed + ")";
  if (t.ran == 0) return "blocks of " + std::to_string(t.best) + " threads (the rule's; no candidate ran when timed)";
  std::string s = "blocks of " + std::to_string(t.best) + " threads, the fastest of " + std::to_string(t.ran) +
                  " sizes timed at initialize (cold): " + format_us(t.best_us);
  if (t.best == t.first) return s + ", the rule's";
  if (t.first_us >= 0) s += "; the rule's " + std::to_string(t.first) + ": " + format_us(t.first_us);
  return s;
}

}  // namespace sb::gpu
