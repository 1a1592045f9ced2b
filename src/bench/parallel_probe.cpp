#include "sparsebench/bench/parallel_probe.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "sparsebench/bench/stats.h"
#include "sparsebench/core/cpu_info.h"
#include "sparsebench/core/files.h"
#include "sparsebench/core/threads.h"

namespace sb {

namespace {

constexpr int kFileVersion = 2;  // 2: {machine: {team size: ns}}

struct References {
  std::mutex mu;
  std::map<int, double> seen;       // this process, by team size
  std::map<int, double> persisted;  // the file's, by team size
  std::string path;
};
References& refs() {
  static References r;
  return r;
}

std::string machine_key() {
  const CpuInfo& c = cpu_info();
  return fmt::format("{} | {} cpus", c.model, c.logical_cpus);
}

void save(const References& r) {
  if (r.path.empty()) return;
  nlohmann::json j = {{"version", kFileVersion}, {"best_round_trip_ns", nlohmann::json::object()}};
  std::ifstream in(r.path);
  if (in) {
    try {
      const nlohmann::json old = nlohmann::json::parse(in);
      if (old.at("version").get<int>() == kFileVersion) j = old;  // other machines' entries stay
    } catch (const std::exception&) {
    }
  }
  nlohmann::json& mine = j["best_round_trip_ns"][machine_key()];
  for (const auto& [t, ns] : r.persisted) mine[std::to_string(t)] = ns;
  write_file_atomically(r.path, j.dump(1) + "\n");  // a failed write only loses the record
}

}  // namespace

void set_core_to_core_file(const std::string& path) {
  References& r = refs();
  std::lock_guard<std::mutex> lock(r.mu);
  if (path == r.path) return;
  r.path = path;
  r.persisted.clear();
  if (path.empty()) return;
  std::ifstream in(path);
  if (!in) return;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    if (j.at("version").get<int>() != kFileVersion) return;
    const auto& best = j.at("best_round_trip_ns");
    const auto mine = best.find(machine_key());
    if (mine == best.end()) return;
    for (const auto& [t, ns] : mine->items())
      if (std::stoi(t) > 1 && ns.get<double>() > 0) r.persisted[std::stoi(t)] = ns.get<double>();
  } catch (const std::exception&) {
    r.persisted.clear();  // corrupt or foreign: the next faster probe rewrites it
  }
}

std::string core_to_core_file_for(const std::string& plan_cache_path) {
  if (plan_cache_path.empty()) return {};
  return (std::filesystem::path(plan_cache_path).parent_path() / "core_to_core.json").string();
}

bool cpus_apart_now(int threads) {
  return threads > 1 && disturbed(summarize_probes(threads, {probe_core_to_core_ns(threads)}));
}

void note_core_to_core_ns(int threads, double ns) {
  if (threads <= 1 || !(ns > 0)) return;
  References& r = refs();
  std::lock_guard<std::mutex> lock(r.mu);
  auto& seen = r.seen[threads];
  if (seen == 0 || ns < seen) seen = ns;
  if (r.path.empty()) return;
  auto it = r.persisted.find(threads);
  if (it == r.persisted.end() || ns < it->second) {
    r.persisted[threads] = ns;
    save(r);
  }
}

double core_to_core_reference_ns(int threads) {
  References& r = refs();
  std::lock_guard<std::mutex> lock(r.mu);
  double best = 0;
  for (const auto* m : {&r.seen, &r.persisted}) {
    const auto it = m->find(threads);
    if (it != m->end() && it->second > 0 && (best == 0 || it->second < best)) best = it->second;
  }
  return best;
}

void reset_core_to_core_reference() {
  References& r = refs();
  std::lock_guard<std::mutex> lock(r.mu);
  r.seen.clear();
  r.persisted.clear();
  r.path.clear();
}

// Round trips between threads 0 and `other` of the current team; the rest wait at the barriers.
// 2000 round trips: ~0.1 ms when close, ~0.7 ms when far; cut short after 20 ms (a descheduled
// partner would otherwise make every hand-over cost a time slice).
constexpr std::int64_t kRoundTrips = 2000;
constexpr double kMaxProbeSeconds = 0.02;

std::function<double(int)>& probe_override() {
  static std::function<double(int)> f;
  return f;
}

void set_core_to_core_probe(std::function<double(int)> probe) { probe_override() = std::move(probe); }

double probe_core_to_core_ns(int threads) {
  const int want = threads > 0 ? threads : num_threads();
  if (probe_override()) {
    const double ns = want > 1 ? probe_override()(want) : 0.0;
    note_core_to_core_ns(want, ns);
    return ns;
  }
  // One thread has no partner; more threads than CPUs would time the scheduler, not the CPUs.
  if (want <= 1 || want > available_cpus()) return 0.0;
  alignas(128) std::atomic<std::int64_t> flag{0};
  alignas(128) std::atomic<bool> stop{false};
  double worst = 0.0;
#pragma omp parallel num_threads(want)
  {
    const int t = omp_get_thread_num();
    const int team = omp_get_num_threads();
    for (int other = 1; other < team; ++other) {
#pragma omp barrier
#pragma omp single
      {
        flag.store(0, std::memory_order_relaxed);  // the single's implied barrier publishes both
        stop.store(false, std::memory_order_relaxed);
      }
      if (t == 0 || t == other) {
        const std::int64_t me = t == 0 ? 0 : 1;
        const auto t0 = std::chrono::steady_clock::now();
        std::int64_t done = 0;
        for (std::int64_t i = 0; i < kRoundTrips; ++i) {
          const std::int64_t turn = 2 * i + me;
          bool stopped = false;
          while (flag.load(std::memory_order_acquire) != turn)
            if (stop.load(std::memory_order_relaxed)) {
              stopped = true;
              break;
            }
          if (stopped) break;
          flag.store(turn + 1, std::memory_order_release);
          done = i + 1;
          if (t == 0 && (i & 63) == 63 &&
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > kMaxProbeSeconds) {
            stop.store(true, std::memory_order_relaxed);
            break;
          }
        }
        if (t == 0 && done > 0) {
          const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
          worst = std::max(worst, ns / static_cast<double>(done));
        }
      }
    }
  }
  note_core_to_core_ns(want, worst);
  return worst;
}

ParallelProbeSummary summarize_probes(int threads, const std::vector<double>& round_trip_ns) {
  ParallelProbeSummary s;
  s.reference_ns = core_to_core_reference_ns(threads);
  if (round_trip_ns.empty()) return s;
  s.probes = static_cast<int>(round_trip_ns.size());
  s.median_ns = percentile(round_trip_ns, 50);
  s.max_ns = *std::max_element(round_trip_ns.begin(), round_trip_ns.end());
  return s;
}

bool disturbed(const ParallelProbeSummary& s, double factor) {
  return s.probes > 0 && s.reference_ns > 0 && s.median_ns > factor * s.reference_ns;
}

bool wait_for_close_cpus(int threads, double max_wait_s, double poll_s, double factor) {
  const Timer waited;
  int close_in_a_row = 0;
  for (;;) {
    const bool apart = disturbed(summarize_probes(threads, {probe_core_to_core_ns(threads)}), factor);
    close_in_a_row = apart ? 0 : close_in_a_row + 1;
    if (close_in_a_row >= 3) return true;
    if (waited.seconds() >= max_wait_s) return false;
    // Close probes spaced too: the bad windows flicker, and three within a millisecond said little.
    std::this_thread::sleep_for(std::chrono::duration<double>(poll_s));
  }
}

}  // namespace sb
