// sparsebench bench --model M --pattern P --sparsity S --batch B [--threads N] [--format table|json]:
// whole-model latency of the pruned model and of the dense model, measured in the same run
// (interleaved rounds), with the per-layer breakdown and the speedup. Thin: calls run_model_bench
// (src/bench/model_bench.cpp).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "gpu_kernels.h"
#include "sparsebench/bench/model_bench.h"
#include "sparsebench/bench/stats.h"
#include "sparsebench/core/error.h"
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
  std::string model, pattern = "dense", kernel = "auto", allocation = "uniform", format = "table", skip_kernels;
  double sparsity = 0.9;
  std::int64_t batch = 1, seq_len = 0;
  int threads = -1;  // -1: keep the global --threads
  int min_reps = 10, warmup = 2, rounds = 3;
  double min_time = 1.0;
  std::vector<std::string> dense_layers, prune_layers;
  std::uint64_t seed = 0x5eed;
  std::string plan_cache = default_plan_cache_path();
  bool no_plan_cache = false;
  bool compare_torch = false, torch_only = false;
  std::string device = "cpu", dtype = "f16", cache = "cold";
  bool no_verify = false;
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

// libtorch's timing of the dense graph, in this process: the `--torch-only` child of
// --compare-torch (below). NoGradGuard, at::set_num_threads to our thread count.
Stats time_torch(const Graph& dense_graph, const Tensor& x, const BenchOptions& o) {
#ifdef SB_WITH_TRAIN
  set_torch_threads(0);  // = sb::num_threads(), which --threads has set
  TorchGraph tg(dense_graph);
  return measure([&] { (void)tg.run({x}); }, std::max(1, o.min_reps), o.min_time, o.warmup);
#else
  (void)dense_graph, (void)x, (void)o;
  return {};
#endif
}

// --compare-torch: libtorch times the same dense graph (same seed: same weights and input) in a
// child process, after this process's measurement. Two OpenMP runtimes in one process on a small
// machine disturb each other (each switch between their thread teams costs a scheduler tick; on
// the 2-vCPU VM our dense resnet50 went from 52 to 82 ms when interleaved with libtorch), so the
// comparison is between two undisturbed runs rather than an interleaved one.
Stats torch_in_child(const BenchOptions& o) {
  std::error_code ec;
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec || exe.find('\'') != std::string::npos)
    fail(fmt::format("--compare-torch: cannot name this executable for the libtorch process ({})", ec.message()));
  if (o.model.find('\'') != std::string::npos)
    fail(fmt::format("--compare-torch: model path {} contains a single quote; rename the file", o.model));
  std::string cmd = fmt::format("'{}' --threads {} bench --torch-only --model '{}' --batch {} --seq-len {} "
                                "--seed {} --reps {} --min-time {} --warmup {} --format json",
                                exe, num_threads(), o.model, o.batch, o.seq_len, o.seed, o.min_reps, o.min_time, o.warmup);
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) fail(fmt::format("--compare-torch: cannot start the libtorch process ({})", cmd));
  std::string out;
  char buf[4096];
  while (std::size_t got = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, got);
  const int status = pclose(pipe);
  if (status != 0) fail(fmt::format("--compare-torch: the libtorch process failed (status {}): {}", status, cmd));
  try {
    const auto j = nlohmann::json::parse(out);
    return summarize(j.at("samples_ms").get<std::vector<double>>());
  } catch (const std::exception& e) {
    fail(fmt::format("--compare-torch: unreadable output of the libtorch process: {}", e.what()));
  }
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

nlohmann::json parallel_json(const ModelBenchResult& r) {
  if (r.parallel.probes == 0) return nullptr;
  return {{"probes", r.parallel.probes},
          {"core_to_core_round_trip_ns_median", r.parallel.median_ns},
          {"core_to_core_round_trip_ns_max", r.parallel.max_ns},
          {"core_to_core_round_trip_ns_best_seen", r.parallel.reference_ns},
          {"disturbed", r.disturbed}};
}

ModelSpec spec_of(const BenchOptions& o) {
  ModelSpec s;
  s.model = o.model;
  s.pattern = Pattern::parse(o.pattern);
  s.sparsity = o.sparsity;
  s.allocation = parse_allocation(o.allocation);
  s.dense_layers = o.dense_layers;
  s.prune_layers = o.prune_layers;
  s.batch = o.batch;
  s.seq_len = o.seq_len;
  s.seed = o.seed;
  return s;
}

int run_bench(const BenchOptions& o) {
  if (o.device == "cuda") {
    if (o.compare_torch) fail("--compare-torch: CPU only (libtorch's CPU build); drop it with --device cuda");
    if (o.kernel == "dense" || o.kernel == "sparse")
      fail(fmt::format("--kernel {} with --device cuda: expected auto or a GPU implementation name", o.kernel));
    GpuModelBenchConfig g;
    static_cast<ModelSpec&>(g) = spec_of(o);
    g.dtype = o.dtype;
    g.kernel = o.kernel;
    if (!o.skip_kernels.empty()) g.skip = split_list(o.skip_kernels, "--skip-kernels");
    g.flush_l2 = o.cache == "cold";
    g.verify = !o.no_verify;
    g.min_reps = std::max(o.min_reps, 30);
    g.warmup = o.warmup;
    return run_bench_cuda(g, o.format);
  }
  SB_CHECK(o.skip_kernels.empty(), "--skip-kernels: only with --device cuda");
  if (o.torch_only) {
    if (!kHaveTorch) fail("--torch-only needs a libtorch build");
    if (o.threads >= 0) set_num_threads(o.threads);
    ModelOptions mo;
    mo.batch = o.batch;
    mo.seq_len = o.seq_len;
    mo.seed = o.seed;
    const Graph g = build_model(o.model, mo);
    const Stats s = time_torch(g, random_model_input(g, o.seed + 1), o);
    std::cout << nlohmann::json{{"samples_ms", s.samples_ms}, {"median_ms", s.median_ms}}.dump() << "\n";
    return 0;
  }
  // Before minutes of measurement, not after.
  if (o.compare_torch && !kHaveTorch)
    fail("--compare-torch needs a libtorch build (cmake -DSB_TORCH=ON, with SB_WITH_TRAIN defined for cmd_bench.cpp)");
  ModelBenchConfig c;
  static_cast<ModelSpec&>(c) = spec_of(o);
  c.threads = o.threads;
  c.kernel = o.kernel;
  c.plan_cache = o.no_plan_cache ? std::string() : o.plan_cache;
  c.core_to_core_file = core_to_core_file_for(o.plan_cache);  // a fact about the machine, not a plan
  c.min_reps = o.min_reps;
  c.warmup = o.warmup;
  c.rounds = o.rounds;
  c.min_seconds = o.min_time;
  const ModelBenchResult r = run_model_bench(c);
  TorchCompare tc;
  if (o.compare_torch) {
    tc.ours = r.dense.stats;
    tc.torch = torch_in_child(o);
  }
  const std::size_t peak_rss = r.peak_rss_bytes.value_or(0);

  if (o.format == "json") {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : r.layers)
      layers.push_back({{"name", l.name}, {"op", l.op}, {"kernel", l.kernel}, {"format", l.format},
                        {"sparsity", l.sparsity}, {"ms", l.ms}, {"dense_ms", l.dense_ms}, {"m", l.m}, {"k", l.k},
                        {"n", l.n}, {"flops", l.flops}, {"weight_bytes", l.weight_bytes}, {"dense_kernel", l.dense_kernel},
                        {"implicit_im2col", l.implicit_im2col}});
    nlohmann::json j = {{"model", o.model},
                        {"pattern", r.pattern},
                        {"sparsity", r.sparsity},
                        {"achieved_sparsity", r.achieved_sparsity},
                        {"allocation", o.allocation},
                        {"batch", o.batch},
                        {"threads", r.threads},
                        {"kernel", o.kernel},
                        {"plan_cache", c.plan_cache},
                        {"dense", stats_json(r.dense.stats, o.batch)},
                        {"sparse", stats_json(r.sparse.stats, o.batch)},
                        {"speedup", r.speedup},
                        {"params_dense", r.params_dense},
                        {"params_pruned", r.params_pruned},
                        {"weight_bytes_dense", r.dense.weight_bytes},
                        {"weight_bytes_stored", r.sparse.weight_bytes},
                        {"weight_bytes_ratio", r.dense.weight_bytes ? static_cast<double>(r.sparse.weight_bytes) /
                                                                          static_cast<double>(r.dense.weight_bytes)
                                                                    : 0.0},
                        {"weight_bytes_split",
                         {{"values", r.sparse.weight_split.values},
                          {"indices", r.sparse.weight_split.indices},
                          {"pointers", r.sparse.weight_split.pointers},
                          {"metadata", r.sparse.weight_split.metadata}}},
                        {"arena_bytes", r.sparse.arena_bytes},
                        {"peak_rss_bytes", peak_rss},
                        {"noisy", r.noisy},
                        {"parallel", parallel_json(r)},
                        {"energy", r.energy_note},
                        {"layers", layers}};
    if (o.compare_torch)
      j["torch"] = {{"torch_dense", stats_json(tc.torch, o.batch)},
                    {"ours_dense", stats_json(tc.ours, o.batch)},
                    {"ours_over_torch", tc.torch.median_ms > 0 ? tc.ours.median_ms / tc.torch.median_ms : 0.0}};
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  std::cout << fmt::format("{} batch {}, {} threads, pattern {} at {:.2f} (achieved {:.3f} over the prunable layers), kernel {}\n",
                           o.model, o.batch, r.threads, r.pattern, r.sparsity, r.achieved_sparsity, o.kernel);
  std::cout << fmt::format("{:<8} {:>10} {:>10} {:>10} {:>12} {:>14}\n", "", "median ms", "p90 ms", "p99 ms", "samples/s",
                           "weight bytes");
  auto row = [&](const char* what, const Stats& s, std::size_t bytes) {
    std::cout << fmt::format("{:<8} {:>10.3f} {:>10.3f} {:>10.3f} {:>12.1f} {:>14}{}\n", what, s.median_ms, s.p90_ms,
                             percentile(s.samples_ms, 99), 1e3 * static_cast<double>(o.batch) / s.median_ms, bytes,
                             s.noisy ? "  (noisy)" : "");
  };
  row("dense", r.dense.stats, r.dense.weight_bytes);
  row("pruned", r.sparse.stats, r.sparse.weight_bytes);
  if (o.compare_torch) {
    row("torch dense", tc.torch, r.weight_bytes_dense_f32);
    row("our dense", tc.ours, r.dense.weight_bytes);
    std::cout << fmt::format("our dense / libtorch dense: {:.3f}\n", tc.ours.median_ms / std::max(tc.torch.median_ms, 1e-9));
  }
  std::cout << fmt::format("speedup {:.2f}x, weight bytes {:.3f}x of dense, peak RSS {:.1f} MiB\n\n", r.speedup,
                           static_cast<double>(r.sparse.weight_bytes) /
                               static_cast<double>(std::max<std::size_t>(r.dense.weight_bytes, 1)),
                           static_cast<double>(peak_rss) / (1 << 20));
  if (r.parallel.probes > 0) {
    std::cout << fmt::format("core-to-core round trip while measuring: median {:.0f} ns (max {:.0f}, best seen {:.0f})\n",
                             r.parallel.median_ns, r.parallel.max_ns, r.parallel.reference_ns);
    if (r.disturbed)
      std::cout << fmt::format("DISTURBED: the CPUs talked over {:.0f}x slower than at their best (the host moved them "
                               "apart); {}-thread speedups taken now are not trustworthy: run it again\n",
                               kDisturbedFactor, r.threads);
    std::cout << "\n";
  }
  auto kernel_text = [](const ModelBenchLayer& l) { return l.kernel + (l.implicit_im2col ? " (implicit im2col)" : ""); };
  std::size_t kw = 30;
  for (const auto& l : r.layers) kw = std::max(kw, kernel_text(l).size());
  std::cout << fmt::format("{:<44} {:<15} {:<{}} {:<8} {:>6} {:>9} {:>9}  {}\n", "layer", "op", "kernel", kw, "format",
                           "sparse", "ms", "dense ms", "dense kernel");
  for (const auto& l : r.layers)
    std::cout << fmt::format("{:<44} {:<15} {:<{}} {:<8} {:>6.3f} {:>9.4f} {:>9.4f}  {}\n", l.name, l.op,
                             kernel_text(l), kw, l.format, l.sparsity, l.ms, l.dense_ms, l.dense_kernel);
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
                "also time the dense graph in libtorch, in a separate process after ours (libtorch builds)");
  app->add_flag("--torch-only", o->torch_only, "time only libtorch on the dense model (the child of --compare-torch)")
      ->group("");
  app->add_flag("--no-plan-cache", o->no_plan_cache, "measure every `auto` choice afresh, keep no plan on disk (the CPUs' best core-to-core round "
                "trip is still read and kept next to the plan file)");
  app->add_option("--device", o->device, "cpu, or cuda: the conv / linear layers as GEMMs on the GPU (docs/GPU.md)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app->add_option("--dtype", o->dtype, "--device cuda: f32, tf32, f16 or bf16")
      ->check(CLI::IsMember({"f32", "tf32", "f16", "bf16"}))
      ->capture_default_str();
  app->add_option("--cache", o->cache, "--device cuda: cold (L2 flushed between timed calls) or hot")
      ->check(CLI::IsMember({"hot", "cold"}))
      ->capture_default_str();
  app->add_flag("--no-verify", o->no_verify, "--device cuda: skip checking each layer's GPU output against the host");
  app->add_option("--skip-kernels", o->skip_kernels,
                  "--device cuda: comma-separated GPU implementations `auto` leaves out (e.g. one that lost the CUDA context)");
  app->add_option("--format", o->format, "output format")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  return {app, [o] { return run_bench(*o); }};
}

}  // namespace sb::cli
