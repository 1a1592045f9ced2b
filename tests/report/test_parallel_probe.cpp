// The core-to-core probe that tells a multi-threaded measurement taken while the host had moved
// the CPUs apart (bench/parallel_probe.h), and what the whole-model benchmark and the study do
// with it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sparsebench/bench/model_bench.h"
#include "sparsebench/bench/parallel_probe.h"
#include "sparsebench/core/threads.h"

namespace fs = std::filesystem;

namespace {

fs::path temp_file(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("sb_probe_" + std::to_string(::getpid()));
  fs::create_directories(d);
  const fs::path p = d / name;
  fs::remove(p);
  return p;
}

struct ProbeTest : ::testing::Test {
  void SetUp() override { sb::reset_core_to_core_reference(); }
  void TearDown() override {
    sb::set_core_to_core_probe({});
    sb::reset_core_to_core_reference();
  }
};

}  // namespace

TEST_F(ProbeTest, OneThreadHasNoPartnerTwoThreadsAreTimed) {
  EXPECT_EQ(sb::probe_core_to_core_ns(1), 0.0);
  if (sb::available_cpus() < 2) GTEST_SKIP() << "one CPU: no pair of CPUs to probe";
  const double ns = sb::probe_core_to_core_ns(2);
  EXPECT_GT(ns, 1.0);     // a cache line between two CPUs takes more than a nanosecond
  EXPECT_LT(ns, 1.0e7);   // and the probe gives up long before 10 ms a round trip
  EXPECT_EQ(sb::core_to_core_reference_ns(2), ns);  // the first probe is the best so far
  // More threads than CPUs would time the scheduler: not probed.
  EXPECT_EQ(sb::probe_core_to_core_ns(sb::available_cpus() + 1), 0.0);
}

TEST_F(ProbeTest, ReferenceIsTheBestSeenPerTeamSizeAndOutlivesTheProcessInItsFile) {
  const fs::path f = temp_file("core_to_core.json");
  sb::set_core_to_core_file(f.string());
  sb::note_core_to_core_ns(2, 100);
  sb::note_core_to_core_ns(2, 80);
  sb::note_core_to_core_ns(2, 120);
  sb::note_core_to_core_ns(4, 300);
  sb::note_core_to_core_ns(1, 5);   // one thread: nothing to note
  sb::note_core_to_core_ns(2, -1);  // nonsense: ignored
  EXPECT_EQ(sb::core_to_core_reference_ns(2), 80);
  EXPECT_EQ(sb::core_to_core_reference_ns(4), 300);
  EXPECT_EQ(sb::core_to_core_reference_ns(1), 0);
  EXPECT_EQ(sb::core_to_core_reference_ns(3), 0);

  // A new process (reset) that names the same file starts from the file's best, not from itself.
  sb::reset_core_to_core_reference();
  EXPECT_EQ(sb::core_to_core_reference_ns(2), 0);
  sb::set_core_to_core_file(f.string());
  EXPECT_EQ(sb::core_to_core_reference_ns(2), 80);
  sb::note_core_to_core_ns(2, 350);  // a bad window does not raise it
  EXPECT_EQ(sb::core_to_core_reference_ns(2), 80);

  // Another machine's entry is not ours; a corrupt file is ignored and rewritten.
  {
    std::ofstream out(f);
    out << R"({"version": 2, "best_round_trip_ns": {"Some Other CPU | 64 cpus": {"2": 20}}})";
  }
  sb::reset_core_to_core_reference();
  sb::set_core_to_core_file(f.string());
  EXPECT_EQ(sb::core_to_core_reference_ns(2), 0);
  sb::note_core_to_core_ns(2, 90);
  const auto j = nlohmann::json::parse(std::ifstream(f));
  EXPECT_EQ(j.at("best_round_trip_ns").size(), 2u) << j.dump();  // the other machine's stays
  { std::ofstream(f) << "{ not json"; }
  sb::reset_core_to_core_reference();
  EXPECT_NO_THROW(sb::set_core_to_core_file(f.string()));
  EXPECT_EQ(sb::core_to_core_reference_ns(2), 0);
  EXPECT_EQ(sb::core_to_core_file_for(""), "");
  EXPECT_EQ(sb::core_to_core_file_for("/a/b/plans.json"), "/a/b/core_to_core.json");
  fs::remove_all(f.parent_path());
}

TEST_F(ProbeTest, DisturbedIsTheMedianOverTwiceTheBest) {
  EXPECT_FALSE(sb::disturbed(sb::summarize_probes(2, {500, 600})));  // no reference: cannot tell
  sb::note_core_to_core_ns(2, 100);
  const sb::ParallelProbeSummary quiet = sb::summarize_probes(2, {150, 180, 900});
  EXPECT_EQ(quiet.probes, 3);
  EXPECT_EQ(quiet.median_ns, 180);
  EXPECT_EQ(quiet.max_ns, 900);
  EXPECT_EQ(quiet.reference_ns, 100);
  EXPECT_FALSE(sb::disturbed(quiet));  // one far probe in a quiet measurement
  EXPECT_TRUE(sb::disturbed(sb::summarize_probes(2, {250, 300, 90})));
  EXPECT_FALSE(sb::disturbed(sb::summarize_probes(2, {})));
}

TEST_F(ProbeTest, WaitingEndsWhenThreeProbesInARowAreClose) {
  sb::note_core_to_core_ns(2, 100);
  std::vector<double> seq = {500, 500, 110, 600, 120, 105, 101};
  std::size_t calls = 0;
  auto scripted = [&](int) { return seq[std::min(calls++, seq.size() - 1)]; };
  sb::set_core_to_core_probe(scripted);
  EXPECT_TRUE(sb::wait_for_close_cpus(2, 10.0, 0.001));
  EXPECT_EQ(calls, 7u);
  calls = 0;
  seq = {500};
  EXPECT_FALSE(sb::wait_for_close_cpus(2, 0.05, 0.001));  // gives up
  EXPECT_GT(calls, 3u);
}

// The whole-model benchmark: probes before each slice; a measurement whose probes say the CPUs
// were apart is flagged noisy and disturbed, and (cv_threshold > 0) measured again after waiting.
TEST_F(ProbeTest, ModelBenchFlagsAndRemeasuresADisturbedWindow) {
  sb::ModelBenchConfig c;
  c.model = "mlp";
  c.pattern = sb::Pattern::parse("unstructured");
  c.sparsity = 0.5;
  c.threads = 2;
  c.min_reps = 2;
  c.min_seconds = 0;
  c.warmup = 1;
  c.rounds = 2;
  c.profile_runs = 0;
  c.energy = false;
  c.disturbed_wait_s = 0.05;
  int calls = 0;
  sb::set_core_to_core_probe([&](int) { return ++calls == 1 ? 100.0 : 500.0; });  // close once, then apart
  c.cv_threshold = 0;  // flag only
  sb::ModelBenchResult r = sb::run_model_bench(c);
  EXPECT_EQ(r.parallel.probes, 4);  // rounds x (dense, sparse)
  EXPECT_EQ(r.parallel.reference_ns, 100);
  EXPECT_TRUE(r.disturbed);
  EXPECT_TRUE(r.noisy);
  EXPECT_FALSE(r.remeasured);

  sb::reset_core_to_core_reference();
  calls = 0;
  c.cv_threshold = 10;  // re-measure only for the disturbance, never for the spread
  c.disturbed_retries = 2;
  r = sb::run_model_bench(c);
  EXPECT_TRUE(r.remeasured);
  EXPECT_EQ(r.measurements, 3);   // the first and two retries
  EXPECT_GE(r.waited_s, 0.1);     // the CPUs never came back: waited the whole allowance twice
  EXPECT_TRUE(r.disturbed);

  // Apart during the first measurement, close again after a wait: the retry is kept, clean.
  sb::reset_core_to_core_reference();
  const std::vector<double> script = {100, 500, 500, 500,  // first measurement: median 500
                                      100, 100, 100,       // the wait: three close probes
                                      100, 100, 100, 100};  // the retry
  std::size_t at = 0;
  sb::set_core_to_core_probe([&](int) { return script[std::min(at++, script.size() - 1)]; });
  r = sb::run_model_bench(c);
  EXPECT_EQ(r.measurements, 2);
  EXPECT_FALSE(r.disturbed);
  EXPECT_EQ(r.parallel.median_ns, 100);

  // Close during the first measurement but noisy (cv over a threshold of 0: any spread), apart
  // during its re-measurement: that one is retried too.
  sb::reset_core_to_core_reference();
  const std::vector<double> script2 = {100, 100, 100, 100,  // first: close
                                       500, 500, 500, 500,  // the noisy re-measurement: apart
                                       100, 100, 100,       // the wait
                                       100, 100, 100, 100};  // the retry
  at = 0;
  sb::set_core_to_core_probe([&](int) { return script2[std::min(at++, script2.size() - 1)]; });
  c.cv_threshold = 1e-12;
  r = sb::run_model_bench(c);
  EXPECT_EQ(r.measurements, 3);
  EXPECT_FALSE(r.disturbed);
  EXPECT_EQ(r.parallel.median_ns, 100);
  c.cv_threshold = 10;

  sb::reset_core_to_core_reference();
  sb::set_core_to_core_probe([](int) { return 100.0; });  // close throughout
  r = sb::run_model_bench(c);
  EXPECT_FALSE(r.disturbed);
  EXPECT_FALSE(r.remeasured);
  EXPECT_EQ(r.measurements, 1);
  EXPECT_EQ(r.waited_s, 0);

  // One thread: nothing to probe.
  c.threads = 1;
  r = sb::run_model_bench(c);
  EXPECT_EQ(r.parallel.probes, 0);
  EXPECT_FALSE(r.disturbed);
  sb::set_num_threads(0);
}
