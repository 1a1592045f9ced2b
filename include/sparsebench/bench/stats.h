#pragma once
// Timing and the statistics of repeated measurements. Every reported time keeps its raw samples.
#include <cstdint>
#include <functional>
#include <vector>

namespace sb {

// A monotonic wall-clock timer (std::chrono::steady_clock: clock_gettime(CLOCK_MONOTONIC) on
// Linux, ~20 ns per reading through the vDSO). Never the CPU-time clock: a kernel that waits for
// memory or for its threads must be charged for the wait.
class Timer {
 public:
  Timer() { reset(); }
  void reset();
  double seconds() const;        // since construction or the last reset()
  double milliseconds() const { return seconds() * 1e3; }
  static double now_seconds();   // monotonic, arbitrary origin

 private:
  std::int64_t start_ns_ = 0;
};

// A sample is "noisy" when its coefficient of variation (stddev / mean) exceeds this: 10 % is the
// spread beyond which two implementations closer than ~1.2x can no longer be ranked reliably.
inline constexpr double kNoisyCv = 0.10;

struct Stats {
  std::vector<double> samples_ms;  // raw, in measurement order
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
  double mean_ms = 0, stddev_ms = 0, min_ms = 0, max_ms = 0;
  double cv = 0;                   // stddev / mean (sample stddev, n - 1); 0 for < 2 samples
  bool noisy = false;              // cv > the threshold summarize() was given
};

// The p-th percentile (p in [0, 100]) with linear interpolation between closest ranks (NumPy's
// default): p = 50 of {1, 2, 3, 4} is 2.5. Throws sb::Error on an empty sample or p outside [0, 100].
double percentile(std::vector<double> samples, double p);
// Every statistic of `samples_ms` (milliseconds); an empty sample gives all zeros.
Stats summarize(std::vector<double> samples_ms, double noisy_cv = kNoisyCv);

// Calls fn `warmup` times untimed, then times each call until at least `min_reps` samples and
// `min_seconds` of timed calls were taken (at most `max_reps` samples).
Stats measure(const std::function<void()>& fn, int min_reps, double min_seconds, int warmup,
              int max_reps = 100000);

}  // namespace sb
