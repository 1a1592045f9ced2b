#pragma once
// How fast do the CPUs of a multi-threaded measurement talk to each other right now?
//
// On a VM the host may move the vCPUs apart (another CCD, another socket) for tens of seconds at
// a time. This 2-vCPU VM was seen doing it: the round trip of a cache line between its two CPUs
// went from ~55 ns to ~340 ns, and while it lasted ResNet-50 pruned to 90 % ran 3x slower on two
// threads (its kernels read what the other thread wrote one layer earlier, and every layer ends
// at a barrier) while the dense model, bound by arithmetic, ran 1.3x slower. The speedup taken in
// such a window is wrong without its samples looking noisy. One-thread measurements are immune.
//
// The probe: thread 0 and thread t of one OpenMP team pass a counter back and forth through one
// cache line (the classic core-to-core latency test), for every t; the slowest pair counts.
#include <functional>
#include <string>
#include <vector>

namespace sb {

// Nanoseconds per round trip of a cache line between thread 0 and the farthest other thread of
// a team of `threads` (<= 0: num_threads()); 0 for one thread. Lowers the reference for that team
// size when it is the fastest seen.
double probe_core_to_core_ns(int threads = 0);

// The fastest round trip seen for a team of `threads` (0 before the first): how close the CPUs
// are at their best. In this process, and, once set_core_to_core_file() named one, in that file
// over earlier runs on this machine (keyed by CPU model and count), so that a process that starts
// in a bad window is not measured against itself. A faster probe rewrites the file.
double core_to_core_reference_ns(int threads);
void note_core_to_core_ns(int threads, double ns);   // lowers the reference (probes call it)
void set_core_to_core_file(const std::string& path);  // "" = this process only
// The file that goes with a plan cache (CompileOptions::plan_cache_path): core_to_core.json next
// to it; "" for "" (no plan cache, nothing on disk).
std::string core_to_core_file_for(const std::string& plan_cache_path);
// A probe now, judged against the reference: true when a team of `threads` (> 1) runs on CPUs
// that talk kDisturbedFactor slower than at their best. False for one thread or no reference.
bool cpus_apart_now(int threads);
void reset_core_to_core_reference();                 // this process's values and the file; for tests
// Tests: every probe_core_to_core_ns call returns probe(threads) instead of probing ({} restores).
void set_core_to_core_probe(std::function<double(int)> probe);

// Probes taken during one measurement.
struct ParallelProbeSummary {
  int probes = 0;
  double median_ns = 0, max_ns = 0;  // round trip, over the probes
  double reference_ns = 0;           // core_to_core_reference_ns when summarised
};
ParallelProbeSummary summarize_probes(int threads, const std::vector<double>& round_trip_ns);

// A measurement whose CPUs talked this much slower than at their best was taken in a disturbed
// window. Quiet windows here spread by +-20 %; the bad ones are 6x.
inline constexpr double kDisturbedFactor = 2.0;
bool disturbed(const ParallelProbeSummary& s, double factor = kDisturbedFactor);

// Probes every `poll_s` seconds until three in a row (half a second at the default) are within
// `factor` of the reference, or `max_wait_s` has passed. True when the CPUs are close again.
bool wait_for_close_cpus(int threads, double max_wait_s, double poll_s = 0.25, double factor = kDisturbedFactor);

}  // namespace sb
