#include "sparsebench/bench/stats.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "sparsebench/core/error.h"

namespace sb {

double Timer::now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

void Timer::reset() {
  using namespace std::chrono;
  start_ns_ = duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

double Timer::seconds() const {
  using namespace std::chrono;
  const std::int64_t now = duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
  return static_cast<double>(now - start_ns_) * 1e-9;
}

double percentile(std::vector<double> v, double p) {
  SB_CHECK(!v.empty(), "percentile of an empty sample");
  SB_CHECK(p >= 0 && p <= 100, "percentile {} outside [0, 100]", p);
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (rank - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

Stats summarize(std::vector<double> samples_ms, double noisy_cv) {
  Stats s;
  s.samples_ms = std::move(samples_ms);
  const auto& v = s.samples_ms;
  if (v.empty()) return s;
  s.median_ms = percentile(v, 50);
  s.p10_ms = percentile(v, 10);
  s.p90_ms = percentile(v, 90);
  auto [mn, mx] = std::minmax_element(v.begin(), v.end());
  s.min_ms = *mn;
  s.max_ms = *mx;
  s.mean_ms = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  if (v.size() >= 2) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean_ms) * (x - s.mean_ms);
    s.stddev_ms = std::sqrt(ss / static_cast<double>(v.size() - 1));
    s.cv = s.mean_ms > 0 ? s.stddev_ms / s.mean_ms : 0;
  }
  s.noisy = s.cv > noisy_cv;
  return s;
}

Stats measure(const std::function<void()>& fn, int min_reps, double min_seconds, int warmup, int max_reps) {
  SB_CHECK(min_reps >= 1, "measure: min_reps {} must be at least 1", min_reps);
  SB_CHECK(max_reps >= min_reps, "measure: max_reps {} below min_reps {}", max_reps, min_reps);
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(min_reps));
  double timed = 0;
  while ((static_cast<int>(samples.size()) < min_reps || timed < min_seconds) &&
         static_cast<int>(samples.size()) < max_reps) {
    Timer t;
    fn();
    const double s = t.seconds();
    timed += s;
    samples.push_back(s * 1e3);
  }
  return summarize(std::move(samples));
}

}  // namespace sb
