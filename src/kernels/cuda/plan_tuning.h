#pragma once
// Choosing a kernel's plan by timing (session 14), host side and free of CUDA: a launcher's model
// proposes a plan (the first candidate), the op times every candidate on the device at initialize
// and keeps the fastest, as the cuBLASLt and cuSPARSE wrappers time their libraries' candidate
// algorithms. The model's plan stays unless another is more than kPlanTieMargin faster, so that
// timing noise does not flip the plan from run to run; the note keeps both times.
#include <cstddef>
#include <cstdlib>
#include <cstring>
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

// What timing the candidates gave: the one kept and the first (the model's or the rule's), how many
// there were and how many ran, the kept one's time and the first's (microseconds a call; -1 where
// it did not run). candidates = 0: not timed (SB_GPU_TIMED_PLANS=0), the first taken as it is.
template <class C>
struct Tuned {
  C best{}, first{};
  int candidates = 0, ran = 0;
  double best_us = -1, first_us = -1;
};

// Times every candidate (time_us(candidate) -> microseconds a call, negative where it failed to
// run) and keeps the fastest; the first stays unless another is more than kPlanTieMargin faster,
// and is kept where none ran. Every candidate's time goes to *us where asked (-1: failed).
template <class C, class TimeUs>
Tuned<C> tune(const std::vector<C>& candidates, TimeUs time_us, std::vector<double>* us = nullptr) {
  Tuned<C> t;
  t.candidates = static_cast<int>(candidates.size());
  if (candidates.empty()) return t;
  std::vector<double> times;
  std::size_t at = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const double v = time_us(candidates[i]);
    times.push_back(v >= 0 ? v : -1.0);  // NaN counts as failed
    if (times[i] < 0) continue;
    ++t.ran;
    if (times[at] < 0 || times[i] < times[at]) at = i;
  }
  if (t.ran > 0 && times[0] >= 0 && times[0] <= (1 + kPlanTieMargin) * times[at]) at = 0;
  t.first = candidates[0];
  t.best = candidates[at];
  t.first_us = times[0];
  t.best_us = times[at];
  if (us) *us = std::move(times);
  return t;
}

// "12.3 us": a time for the notes, to a tenth of a microsecond.
inline std::string format_us(double v) {
  const long long tenths = static_cast<long long>(v * 10 + 0.5);
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " us";
}

// SB_VERBOSE containing "plans": every candidate's time, a line per op on stderr (the notes keep
// only the kept plan's, the first's and, for the tensor-core plans, the best unsliced one), to check
// the models against.
inline bool verbose_plans() {
  const char* v = std::getenv("SB_VERBOSE");
  return v && std::strstr(v, "plans") != nullptr;
}

// time_us wrapped so that, when verbose_plans(), each candidate's label and time are also appended
// to *line ("label 12.3 us; label failed; ..."), for the caller to print once.
template <class C, class Label, class TimeUs>
auto logged(std::string* line, Label label, TimeUs time_us) {
  return [=](const C& c) -> double {
    const double us = time_us(c);
    if (verbose_plans()) *line += (line->empty() ? "" : "; ") + label(c) + " " + (us >= 0 ? format_us(us) : "failed");
    return us;
  };
}

}  // namespace sb::gpu
