// sparsebench bench --model M --pattern P --sparsity S --batch B [--threads N] [--format table|json]:
// whole-model latency of the pruned model and of the dense model, measured in the same run
// (interleaved rounds), with the per-layer breakdown and the speedup. Thin: calls the runtime.
#include <sys/resource.h>

#include <algorithm>
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sparsebench/bench/stats.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/rng.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/runtime/executor.h"
#include "sparsebench/runtime/passes.h"

// SB_WITH_TRAIN: the CLI links sparsebench_train (libtorch); tools/CMakeLists.txt defines it for
// the files that use it.
#ifdef SB_WITH_TRAIN
#include "sparsebench/train/torch_graph.h"
#endif

namespace sb::cli {
namespace {

struct BenchOptions {
  std::string model, pattern = "dense", kernel = "auto", allocation = "uniform", format = "table";
  double sparsity = 0.9;
  std::int64_t batch = 1, seq_len = 0;
  int threads = -1;  // -1: keep the global --threads
  int min_reps = 10, warmup = 2, rounds = 3;
  double min_time = 1.0;
  std::vector<std::string> dense_layers, prune_layers;
  std::uint64_t seed = 0x5eed;
  std::string plan_cache = default_plan_cache_path();
  bool no_plan_cache = false;
  bool compare_torch = false;
};

// libtorch dense vs our dense on the same graph (the M3 target "at most 10 % slower than libtorch"):
// interleaved rounds, our dense executor and a TorchGraph (NoGradGuard, at::set_num_threads to our
// thread count) of the unpruned graph. Medians of each, and ours / torch.
#ifdef SB_WITH_TRAIN
constexpr bool kHaveTorch = true;
#else
constexpr bool kHaveTorch = false;
#endif

struct TorchCompare {
  Stats torch, ours;
};

TorchCompare compare_with_torch(const Graph& dense_graph, Executor& dense, const Tensor& x, const BenchOptions& o) {
#ifdef SB_WITH_TRAIN
  set_torch_threads(0);  // = sb::num_threads(), which --threads has set
  TorchGraph tg(dense_graph);
  std::vector<Tensor> out_d;
  std::vector<double> st, so;
  const int reps = std::max(1, (o.min_reps + o.rounds - 1) / o.rounds);
  const double secs = o.min_time / o.rounds;
  for (int r = 0; r < o.rounds; ++r) {
    const Stats a = measure([&] { (void)tg.run({x}); }, reps, secs, r == 0 ? o.warmup : 1);
    const Stats b = measure([&] { dense.run({x}, out_d); }, reps, secs, 1);
    st.insert(st.end(), a.samples_ms.begin(), a.samples_ms.end());
    so.insert(so.end(), b.samples_ms.begin(), b.samples_ms.end());
  }
  return {summarize(st), summarize(so)};
#else
  (void)dense_graph, (void)dense, (void)x, (void)o;
  return {};  // run_bench refused --compare-torch already
#endif
}

Tensor random_input(const Graph& g, std::uint64_t seed) {
  const Value& v = g.value(g.inputs()[0]);
  Rng rng(seed);
  if (v.dtype == DType::i32) {
    std::int64_t vocab = 1 << 30;
    for (const auto& n : g.nodes())
      if (n.op == OpKind::embedding) vocab = std::min(vocab, n.param("weight").size(0));
    Tensor t = Tensor::empty(v.shape, DType::i32);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(vocab));
    return t;
  }
  Tensor t = Tensor::empty(v.shape);
  rng.fill_uniform(t, -1.f, 1.f);
  return t;
}

nlohmann::json stats_json(const Stats& s, std::int64_t batch) {
  return {{"median_ms", s.median_ms},
          {"p90_ms", s.p90_ms},
          {"p99_ms", s.samples_ms.empty() ? 0.0 : percentile(s.samples_ms, 99)},
          {"mean_ms", s.mean_ms},
          {"min_ms", s.min_ms},
          {"cv", s.cv},
          {"noisy", s.noisy},
          {"samples", s.samples_ms.size()},
          {"throughput_samples_per_s", s.median_ms > 0 ? 1e3 * static_cast<double>(batch) / s.median_ms : 0.0}};
}

int run_bench(const BenchOptions& o) {
  // Before minutes of measurement, not after.
  if (o.compare_torch && !kHaveTorch)
    fail("--compare-torch needs a libtorch build (cmake -DSB_TORCH=ON, with SB_WITH_TRAIN defined for cmd_bench.cpp)");
  if (o.threads >= 0) set_num_threads(o.threads);
  ModelOptions mo;
  mo.batch = o.batch;
  mo.seq_len = o.seq_len;
  mo.seed = o.seed;
  const Graph dense_graph = build_model(o.model, mo);
  Graph pruned_graph = dense_graph.clone();
  PruneOptions po;
  po.pattern = Pattern::parse(o.pattern);
  po.sparsity = po.pattern.kind == Pattern::Kind::dense ? 0.0 : o.sparsity;
  po.allocation = parse_allocation(o.allocation);
  po.dense_layers = o.dense_layers;
  po.prune_layers = o.prune_layers;
  const PruneReport report = prune(pruned_graph, po);

  CompileOptions dense_opts;
  dense_opts.kernel = "dense";
  dense_opts.plan_cache_path = o.no_plan_cache ? std::string() : o.plan_cache;
  CompileOptions sparse_opts;
  sparse_opts.kernel = o.kernel;
  sparse_opts.plan_cache_path = dense_opts.plan_cache_path;
  Executor dense(dense_graph, dense_opts);
  Executor sparse(pruned_graph, sparse_opts);
  const Tensor x = random_input(dense_graph, o.seed + 1);
  std::vector<Tensor> out_d, out_s;

  // Interleaved rounds: drift of the machine (clock, neighbours) hits both models alike.
  std::vector<double> sd, ss;
  const int reps = std::max(1, (o.min_reps + o.rounds - 1) / o.rounds);
  const double secs = o.min_time / o.rounds;
  for (int r = 0; r < o.rounds; ++r) {
    const Stats a = measure([&] { dense.run({x}, out_d); }, reps, secs, r == 0 ? o.warmup : 1);
    const Stats b = measure([&] { sparse.run({x}, out_s); }, reps, secs, r == 0 ? o.warmup : 1);
    sd.insert(sd.end(), a.samples_ms.begin(), a.samples_ms.end());
    ss.insert(ss.end(), b.samples_ms.begin(), b.samples_ms.end());
  }
  const Stats st_d = summarize(sd), st_s = summarize(ss);
  // Per-layer breakdown from separate profiled runs (the timer calls stay out of the latency).
  const int prof_runs = std::max(3, std::min(20, reps));
  dense.set_profiling(true);
  sparse.set_profiling(true);
  for (int i = 0; i < prof_runs; ++i) {
    dense.run({x}, out_d);
    sparse.run({x}, out_s);
  }
  std::map<std::string, double> dense_ms;
  for (const auto& t : dense.profile()) dense_ms[t.plan.name] = t.mean_ms();
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const std::size_t peak_rss = static_cast<std::size_t>(ru.ru_maxrss) * 1024;
  const double speedup = st_s.median_ms > 0 ? st_d.median_ms / st_s.median_ms : 0.0;
  TorchCompare tc;
  if (o.compare_torch) tc = compare_with_torch(dense_graph, dense, x, o);

  if (o.format == "json") {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& t : sparse.profile()) {
      const auto it = dense_ms.find(t.plan.name);
      layers.push_back({{"name", t.plan.name}, {"op", t.plan.op}, {"kernel", t.plan.kernel}, {"format", t.plan.format},
                        {"sparsity", t.plan.sparsity}, {"ms", t.mean_ms()},
                        {"dense_ms", it == dense_ms.end() ? 0.0 : it->second}, {"m", t.plan.m}, {"k", t.plan.k},
                        {"n", t.plan.n}, {"flops", t.plan.flops}, {"weight_bytes", t.plan.stored_bytes}});
    }
    nlohmann::json j = {{"model", o.model},
                        {"pattern", po.pattern.to_string()},
                        {"sparsity", po.sparsity},
                        {"achieved_sparsity", report.achieved},
                        {"allocation", o.allocation},
                        {"batch", o.batch},
                        {"threads", num_threads()},
                        {"kernel", o.kernel},
                        {"plan_cache", o.no_plan_cache ? std::string() : o.plan_cache},
                        {"dense", stats_json(st_d, o.batch)},
                        {"sparse", stats_json(st_s, o.batch)},
                        {"speedup", speedup},
                        {"params_dense", dense_graph.param_count()},
                        {"params_pruned", pruned_graph.param_count()},
                        {"weight_bytes_dense", dense.weight_bytes_stored()},
                        {"weight_bytes_stored", sparse.weight_bytes_stored()},
                        {"weight_bytes_ratio", dense.weight_bytes_stored()
                                                   ? static_cast<double>(sparse.weight_bytes_stored()) /
                                                         static_cast<double>(dense.weight_bytes_stored())
                                                   : 0.0},
                        {"arena_bytes", sparse.arena_bytes()},
                        {"peak_rss_bytes", peak_rss},
                        {"layers", layers}};
    if (o.compare_torch)
      j["torch"] = {{"torch_dense", stats_json(tc.torch, o.batch)},
                    {"ours_dense", stats_json(tc.ours, o.batch)},
                    {"ours_over_torch", tc.torch.median_ms > 0 ? tc.ours.median_ms / tc.torch.median_ms : 0.0}};
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  std::cout << fmt::format("{} batch {}, {} threads, pattern {} at {:.2f} (achieved {:.3f} over the prunable layers), kernel {}\n",
                           o.model, o.batch, num_threads(), po.pattern.to_string(), po.sparsity, report.achieved, o.kernel);
  std::cout << fmt::format("{:<8} {:>10} {:>10} {:>10} {:>12} {:>14}\n", "", "median ms", "p90 ms", "p99 ms", "samples/s",
                           "weight bytes");
  auto row = [&](const char* what, const Stats& s, std::size_t bytes) {
    std::cout << fmt::format("{:<8} {:>10.3f} {:>10.3f} {:>10.3f} {:>12.1f} {:>14}{}\n", what, s.median_ms, s.p90_ms,
                             percentile(s.samples_ms, 99), 1e3 * static_cast<double>(o.batch) / s.median_ms, bytes,
                             s.noisy ? "  (noisy)" : "");
  };
  row("dense", st_d, dense.weight_bytes_stored());
  row("pruned", st_s, sparse.weight_bytes_stored());
  if (o.compare_torch) {
    row("torch dense", tc.torch, dense.weight_bytes_dense());
    row("our dense", tc.ours, dense.weight_bytes_stored());
    std::cout << fmt::format("our dense / libtorch dense: {:.3f}\n", tc.ours.median_ms / std::max(tc.torch.median_ms, 1e-9));
  }
  std::cout << fmt::format("speedup {:.2f}x, weight bytes {:.3f}x of dense, peak RSS {:.1f} MiB\n\n", speedup,
                           static_cast<double>(sparse.weight_bytes_stored()) /
                               static_cast<double>(std::max<std::size_t>(dense.weight_bytes_stored(), 1)),
                           static_cast<double>(peak_rss) / (1 << 20));
  std::cout << fmt::format("{:<44} {:<14} {:<30} {:<8} {:>6} {:>9} {:>9}\n", "layer", "op", "kernel", "format",
                           "sparse", "ms", "dense ms");
  for (const auto& t : sparse.profile()) {
    const auto it = dense_ms.find(t.plan.name);
    std::cout << fmt::format("{:<44} {:<14} {:<30} {:<8} {:>6.3f} {:>9.4f} {:>9.4f}\n", t.plan.name, t.plan.op,
                             t.plan.kernel, t.plan.format, t.plan.sparsity, t.mean_ms(),
                             it == dense_ms.end() ? 0.0 : it->second);
  }
  return 0;
}

}  // namespace

Command add_bench(CLI::App& root) {
  auto* app = root.add_subcommand("bench", "whole-model latency: pruned vs dense, same run, per-layer breakdown");
  auto o = std::make_shared<BenchOptions>();
  app->add_option("--model", o->model, "a model of `sparsebench models`")->required();
  app->add_option("--pattern", o->pattern, std::string("pruning pattern: ") + kPatternGrammar)->capture_default_str();
  app->add_option("--sparsity", o->sparsity, "target sparsity over the prunable layers, in [0, 1)")->capture_default_str();
  app->add_option("--allocation", o->allocation, "per-layer allocation")
      ->check(CLI::IsMember({"uniform", "global", "erk"}))
      ->capture_default_str();
  app->add_option("--dense-layers", o->dense_layers, "globs of layers kept dense");
  app->add_option("--prune-layers", o->prune_layers, "globs of layers pruned despite the defaults");
  app->add_option("--batch", o->batch, "batch size")->capture_default_str();
  app->add_option("--seq-len", o->seq_len, "bert_base: tokens per sequence (default 128)");
  app->add_option("--threads", o->threads, "threads (0 = all cores)");
  app->add_option("--kernel", o->kernel, "auto | dense | sparse | an implementation name")->capture_default_str();
  app->add_option("--reps", o->min_reps, "minimum timed runs per model")->capture_default_str();
  app->add_option("--min-time", o->min_time, "minimum timed seconds per model")->capture_default_str();
  app->add_option("--warmup", o->warmup, "untimed runs first")->capture_default_str();
  app->add_option("--seed", o->seed, "weights and input seed")->capture_default_str();
  app->add_option("--plan-cache", o->plan_cache,
                  "JSON file of measured `auto` kernel choices, reused across runs ($SB_PLAN_CACHE, "
                  "$XDG_CACHE_HOME/sparsebench/plans.json or ~/.cache/sparsebench/plans.json)")
      ->capture_default_str();
  app->add_flag("--compare-torch", o->compare_torch,
                "also time the dense graph in libtorch, interleaved with our dense path (libtorch builds)");
  app->add_flag("--no-plan-cache", o->no_plan_cache, "measure every `auto` choice afresh, keep nothing on disk");
  app->add_option("--format", o->format, "output format")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  return {app, [o] { return run_bench(*o); }};
}

}  // namespace sb::cli
