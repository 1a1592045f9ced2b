// The memory plan: buffers placed in one arena by liveness.
#include <algorithm>
#include <numeric>

#include "sparsebench/core/error.h"
#include "sparsebench/runtime/executor.h"

namespace sb {

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests, std::size_t alignment) {
  SB_CHECK(alignment >= 1 && (alignment & (alignment - 1)) == 0, "plan_memory: alignment {} is not a power of two",
           alignment);
  MemoryPlan plan;
  plan.offsets.assign(requests.size(), 0);
  std::vector<std::size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest first (ties: earliest first): big buffers get the low, contiguous space.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (requests[a].bytes != requests[b].bytes) return requests[a].bytes > requests[b].bytes;
    return requests[a].first < requests[b].first;
  });
  auto round_up = [&](std::size_t x) { return (x + alignment - 1) / alignment * alignment; };
  std::vector<std::size_t> placed;
  for (std::size_t idx : order) {
    const BufferRequest& r = requests[idx];
    SB_CHECK(r.first <= r.last, "plan_memory: buffer {} has lifetime [{}, {}]", idx, r.first, r.last);
    const std::size_t size = round_up(std::max<std::size_t>(r.bytes, 1));
    std::vector<std::pair<std::size_t, std::size_t>> busy;  // [begin, end) in bytes
    for (std::size_t p : placed) {
      const BufferRequest& q = requests[p];
      if (q.last < r.first || r.last < q.first) continue;
      busy.emplace_back(plan.offsets[p], plan.offsets[p] + round_up(std::max<std::size_t>(q.bytes, 1)));
    }
    std::sort(busy.begin(), busy.end());
    // Best fit: the smallest gap that holds it, else after the last busy range.
    std::size_t best = SIZE_MAX, best_gap = SIZE_MAX, cursor = 0;
    for (const auto& [b, e] : busy) {
      if (b > cursor && b - cursor >= size && b - cursor < best_gap) {
        best = cursor;
        best_gap = b - cursor;
      }
      cursor = std::max(cursor, e);
    }
    if (best == SIZE_MAX) best = cursor;
    plan.offsets[idx] = best;
    plan.total = std::max(plan.total, best + size);
    placed.push_back(idx);
  }
  return plan;
}

}  // namespace sb
