#pragma once
// Choosing a kernel's plan by timing (session 14), host side and free of CUDA: a launcher's model
// proposes a plan (the first candidate), the op times every candidate on the device at initialize
// and keeps the fastest, as the cuBLASLt and cuSPARSE wrappers time their libraries' candidate
// algorithms. The model's plan stays unless another is more than kPlanTieMargin faster, so that
// timing noise does not flip the plan from run to run; the note keeps both times.
#include <cstddef>
#include <cstdlib>
#include <string>
#include <vector>

namespace sb::gpu {

constexpr double kPlanTieMargin = 0.02;

// SB_GPU_TIMED_PLANS=0 turns the timing off: the ops take the models' plans as they are (for a
// quick or an instrumented run, e.g. under compute-sanitizer, where every timed call costs an L2
// flush that the instrumentation makes slow). The ops' notes say so.
inline bool plan_timing_enabled() {
  const char* v = std::getenv("SB_GPU_TIMED_PLANS");
  return v == nullptr || std::string(v) != "0";
}
constexpr const char* kPlansUntimed = "untimed: SB_GPU_TIMED_PLANS=0";

struct TimedPick {
  std::size_t at = 0;       // the candidate kept (0, the model's, where none ran)
  int ran = 0;              // candidates that ran
  std::vector<double> us;   // microseconds a call, per candidate; negative where it failed
};

// time_us(candidate) -> microseconds a call, negative where the candidate failed to run.
template <class C, class TimeUs>
TimedPick pick_fastest(const std::vector<C>& candidates, TimeUs time_us) {
  TimedPick p;
  double fastest = -1;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const double us = time_us(candidates[i]);
    p.us.push_back(us >= 0 ? us : -1.0);  // NaN counts as failed
    if (!(us >= 0)) continue;
    ++p.ran;
    if (fastest < 0 || us < fastest) {
      fastest = us;
      p.at = i;
    }
  }
  if (p.ran > 0 && p.us[0] >= 0 && p.us[0] <= (1 + kPlanTieMargin) * fastest) p.at = 0;
  return p;
}

// "12.3 us": a time for the notes, to a tenth of a microsecond.
inline std::string format_us(double v) {
  const long long tenths = static_cast<long long>(v * 10 + 0.5);
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " us";
}

}  // namespace sb::gpu
