// Statistics, the shape-file parser and a smoke run of the sweep.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "sparsebench/bench/kernel_bench.h"
#include "sparsebench/bench/shapes.h"
#include "sparsebench/bench/stats.h"
#include "sparsebench/core/cpu_info.h"
#include "sparsebench/core/error.h"
#include "sparsebench/kernels/spmm.h"

namespace sb {
namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Stats, PercentilesInterpolateLinearly) {
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 10), 2.0);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 90), 10.0);
  EXPECT_DOUBLE_EQ(percentile({1, 2}, 10), 1.1);
  EXPECT_DOUBLE_EQ(percentile({7}, 90), 7.0);
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2}, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2}, 100), 3.0);
  EXPECT_THROW(percentile({}, 50), Error);
  EXPECT_THROW(percentile({1}, 101), Error);
}

TEST(Stats, SummarizeKnownSample) {
  const Stats s = summarize({5, 1, 4, 2, 3});
  EXPECT_DOUBLE_EQ(s.median_ms, 3);
  EXPECT_DOUBLE_EQ(s.mean_ms, 3);
  EXPECT_DOUBLE_EQ(s.min_ms, 1);
  EXPECT_DOUBLE_EQ(s.max_ms, 5);
  EXPECT_NEAR(s.stddev_ms, std::sqrt(2.5), 1e-12);
  EXPECT_NEAR(s.cv, std::sqrt(2.5) / 3, 1e-12);
  EXPECT_TRUE(s.noisy);
  EXPECT_NEAR(s.p10_ms, 1.4, 1e-12);
  EXPECT_NEAR(s.p90_ms, 4.6, 1e-12);
  EXPECT_EQ(s.samples_ms, (std::vector<double>{5, 1, 4, 2, 3}));  // raw order kept

  const Stats quiet = summarize({10, 10.1, 9.9, 10});
  EXPECT_FALSE(quiet.noisy);
  const Stats empty = summarize({});
  EXPECT_EQ(empty.median_ms, 0);
  EXPECT_FALSE(empty.noisy);
  const Stats one = summarize({2});
  EXPECT_EQ(one.cv, 0);
}

TEST(Stats, MeasureHonoursRepsAndWarmup) {
  int calls = 0;
  const Stats s = measure([&] { ++calls; }, 5, 0.0, 2);
  EXPECT_EQ(calls, 7);
  EXPECT_EQ(s.samples_ms.size(), 5u);
  for (double v : s.samples_ms) EXPECT_GE(v, 0);
  calls = 0;
  const Stats t = measure([&] { ++calls; }, 1, 0.01, 0);
  EXPECT_GT(t.samples_ms.size(), 1u);  // kept calling until 10 ms were timed
  EXPECT_THROW(measure([] {}, 0, 0, 0), Error);
}

TEST(Stats, TimerIsMonotonic) {
  Timer t;
  const double a = t.seconds(), b = t.seconds();
  EXPECT_GE(a, 0);
  EXPECT_GE(b, a);
}

TEST(Shapes, ParsesMxKxN) {
  const GemmShape s = parse_shape("768x3072x128");
  EXPECT_EQ(s.m, 768);
  EXPECT_EQ(s.k, 3072);
  EXPECT_EQ(s.n, 128);
  EXPECT_EQ(s.to_string(), "768x3072x128");
  EXPECT_EQ(parse_shape(" 4 X 5 x 6 ").k, 5);
  EXPECT_EQ(parse_shape_list("1x2x3,4x5x6").size(), 2u);
}

TEST(Shapes, RejectsBadText) {
  EXPECT_NE(error_of([] { parse_shape("768x"); }).find("bad shape '768x'"), std::string::npos);
  EXPECT_NE(error_of([] { parse_shape("0x4x4"); }).find("between 1"), std::string::npos);
  EXPECT_NE(error_of([] { parse_shape("4x4x-1"); }).find("bad shape"), std::string::npos);
  EXPECT_NE(error_of([] { parse_shape("4x4x4x4"); }).find("after the third"), std::string::npos);
  EXPECT_NE(error_of([] { parse_shape("axbxc"); }).find("not a number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_shape("99999999999999999999x1x1"); }).find("too large"), std::string::npos);
  EXPECT_THROW(parse_shape_list("1x2x3,"), Error);
  EXPECT_THROW(parse_shape_list(""), Error);
}

TEST(Shapes, FileErrorsNameFileAndLine) {
  const auto dir = std::filesystem::temp_directory_path() / ("sb_shapes_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string good = (dir / "good.txt").string(), bad = (dir / "bad.txt").string(),
                    empty = (dir / "empty.txt").string();
  std::ofstream(good) << "# header\n\n8x16x4   # a layer\n  2x3x5\n";
  std::ofstream(bad) << "# header\n8x16x4\n8x16x  # broken\n";
  std::ofstream(empty) << "# only comments\n\n";
  const auto shapes = load_shape_file(good);
  ASSERT_EQ(shapes.size(), 2u);
  EXPECT_EQ(shapes[0].comment, "a layer");
  EXPECT_EQ(shapes[0].source, "good.txt:3");
  EXPECT_EQ(shapes[1].n, 5);
  const std::string e = error_of([&] { load_shape_file(bad); });
  EXPECT_NE(e.find(bad + ":3"), std::string::npos) << e;
  EXPECT_NE(e.find("8x16x"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { load_shape_file(empty); }).find("no shape"), std::string::npos);
  EXPECT_NE(error_of([&] { load_shape_file((dir / "missing.txt").string()); }).find("cannot be read"), std::string::npos);
  EXPECT_EQ(list_shape_files(dir.string()).size(), 3u);
  std::filesystem::remove_all(dir);
}

TEST(Shapes, RepositoryShapeFilesParse) {
  const std::string dir = std::string(SB_SOURCE_DIR) + "/bench/shapes";
  const auto files = list_shape_files(dir);
  ASSERT_GE(files.size(), 4u);
  bool conv = false, bert = false, gemv = false;
  for (const auto& f : files)
    for (const GemmShape& s : load_shape_file(f)) {
      conv |= s.to_string() == "256x2304x196";
      bert |= s.to_string() == "3072x768x128";
      gemv |= s.to_string() == "4096x4096x1";
    }
  EXPECT_TRUE(conv && bert && gemv);
}

KernelBenchConfig tiny_config() {
  KernelBenchConfig cfg;
  cfg.shapes = {parse_shape("40x72x9")};
  cfg.patterns = {Pattern::parse("unstructured")};
  cfg.sparsities = {0.8};
  cfg.threads = {1};
  cfg.min_reps = 3;
  cfg.min_seconds = 0;
  cfg.warmup = 1;
  cfg.rounds = 2;
  return cfg;
}

TEST(KernelBench, DefaultTimesOnlyTheBestIsaAndMarksTheDispatchedKernel) {
  const auto recs = run_kernel_bench(tiny_config());
  const std::string suffix = std::string("__") + isa_name(max_isa());
  int dispatched = 0;
  for (const KernelRecord& r : recs) {
    if (r.role != "kernel") {
      EXPECT_FALSE(r.dispatched) << r.impl;
      continue;
    }
    EXPECT_TRUE(r.impl.ends_with(suffix)) << r.impl;
    dispatched += r.dispatched;
  }
  // One format (CSR) can run an unstructured weight: exactly one of our kernels is the dispatcher's.
  EXPECT_EQ(dispatched, 1);
}

TEST(KernelBench, EveryImplementationGetsARecord) {
  KernelBenchConfig cfg = tiny_config();
  cfg.all_isas = true;
  const auto recs = run_kernel_bench(cfg);
  std::size_t expected = 0;
  for (const auto& impl : SpmmRegistry::instance().all()) expected += impl->role() != Role::reference;
  ASSERT_EQ(recs.size(), expected);
  bool baseline_ok = false;
  for (const KernelRecord& r : recs) {
    EXPECT_TRUE(r.ok() || r.status.starts_with("skipped: ")) << r.impl << ": " << r.status;
    EXPECT_EQ(r.m, 40);
    EXPECT_NEAR(r.achieved, 0.8, 0.01);
    if (!r.ok()) continue;
    EXPECT_TRUE(r.verified) << r.impl;
    EXPECT_EQ(r.stats.samples_ms.size() >= 3, true) << r.impl;
    EXPECT_GT(r.speedup, 0) << r.impl;
    EXPECT_GT(r.weight_bytes, 0u) << r.impl;
    EXPECT_NEAR(r.effective_gflops / r.useful_gflops, 1.0 / (1.0 - r.achieved), 1e-6);
    baseline_ok |= r.role == "baseline";
    const auto j = to_json(r);
    for (const char* key : {"m", "k", "n", "pattern", "sparsity", "impl", "threads", "median_ms", "p10_ms", "p90_ms",
                            "weight_bytes", "speedup", "cache", "status", "samples_ms", "noisy", "cv"})
      EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_TRUE(baseline_ok);
}

TEST(KernelBench, ColdCacheRotatesCopies) {
  KernelBenchConfig cfg = tiny_config();
  cfg.cache = CacheMode::cold;
  cfg.peers = false;
  cfg.max_copies = 5;
  for (const KernelRecord& r : run_kernel_bench(cfg)) {
    EXPECT_EQ(r.cache, CacheMode::cold);
    if (r.ok()) EXPECT_EQ(r.copies, 5) << r.impl;  // a 40x72 case is far below any LLC
  }
}

TEST(KernelBench, StreamCacheModeIsGpuOnly) {
  KernelBenchConfig cfg = tiny_config();
  cfg.cache = CacheMode::stream;
  try {
    run_kernel_bench(cfg);
    FAIL() << "the CPU bench accepted --cache stream";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'stream' is for --device cuda"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_cache_mode("stream"), CacheMode::stream);
  EXPECT_STREQ(cache_mode_name(CacheMode::stream), "stream");
  EXPECT_THROW(parse_cache_mode("warm"), Error);
}

TEST(KernelBench, PatternThatDoesNotFitIsReportedNotDropped) {
  KernelBenchConfig cfg = tiny_config();
  cfg.patterns = {Pattern::parse("block:64x64")};  // larger than the 40 x 72 weight
  const auto recs = run_kernel_bench(cfg);
  ASSERT_FALSE(recs.empty());
  for (const KernelRecord& r : recs) EXPECT_TRUE(r.status.starts_with("skipped: ")) << r.status;
}

TEST(KernelBench, GeometricMeanPerSet) {
  KernelRecord a, b;
  a.set = b.set = "bert_base";
  a.pattern = b.pattern = "unstructured";
  a.impl = b.impl = "x";
  a.status = b.status = "ok";
  a.speedup = 2;
  b.speedup = 8;
  const auto s = summarize_speedups({a, b});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_NEAR(s[0].geomean_speedup, 4.0, 1e-12);
  EXPECT_EQ(s[0].count, 2);
}

TEST(KernelBench, UnknownKernelIsAnError) {
  KernelBenchConfig cfg = tiny_config();
  cfg.kernel = "no_such_kernel";
  EXPECT_NE(error_of([&] { run_kernel_bench(cfg); }).find("no_such_kernel"), std::string::npos);
}

TEST(KernelBench, DlmcBatchSizesGiveN) {
  const std::string dir = std::string(SB_SOURCE_DIR) + "/../shared/data/dlmc/rn50/magnitude_pruning/0.9";
  if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << "no DLMC data at " << dir;
  const auto cases = list_matrix_cases(dir, 128);
  ASSERT_FALSE(cases.empty());
  for (const MatrixCase& c : cases)
    if (c.name == "bottleneck_3_block_group3_5_1") EXPECT_EQ(c.n, 196);
  EXPECT_NE(error_of([] { list_matrix_cases("/nonexistent/dlmc", 128); }).find("no such file"), std::string::npos);
}

}  // namespace
}  // namespace sb
