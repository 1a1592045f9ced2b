#pragma once
// Whole-model benchmark: a zoo model, dense and pruned, each compiled by its own Executor and
// timed interleaved in the same run (round r: dense slice, then sparse slice), so that drift of
// the machine (clocks, neighbours) hits both alike and the speedup is a same-run ratio. Used by
// `sparsebench bench` and by the study's model cells.
//
// Latency is per call of the whole model on one batch (milliseconds); at batch 1 that is the
// MLPerf SingleStream latency, at a large batch the throughput is the Offline figure.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sparsebench/bench/parallel_probe.h"
#include "sparsebench/bench/stats.h"
#include "sparsebench/core/tensor.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/prune/allocation.h"
#include "sparsebench/prune/pattern.h"
#include "sparsebench/runtime/executor.h"
#include "sparsebench/runtime/graph.h"
#include "sparsebench/runtime/passes.h"

namespace sb {

// Which model, pruned how: what the CPU and the GPU model benchmarks share.
struct ModelSpec {
  std::string model;                     // a zoo name (model_names()) or a model file
  Pattern pattern;                       // dense: both sides run the same weights
  double sparsity = 0.9;                 // target over the prunable layers, [0, 1); ignored for dense
  Allocation allocation = Allocation::uniform;
  std::vector<std::string> dense_layers, prune_layers;  // globs (see PruneOptions)
  std::int64_t batch = 1;
  std::int64_t seq_len = 0;              // bert_base: tokens per sequence (0 = 128)
  std::uint64_t seed = 0x5eed;           // weights; the input uses seed + 1
};

struct ModelBenchConfig : ModelSpec {
  int threads = -1;                      // sets sb::set_num_threads; -1 keeps the current setting
  std::string kernel = "auto";           // the pruned model's CompileOptions::kernel
  std::string plan_cache;                // CompileOptions::plan_cache_path ("" = in memory only)
  // The machine's best core-to-core round trip (parallel_probe.h); "" = core_to_core_file_for(plan_cache).
  // A run without a plan cache should still name it: judged against its own probes only, a process
  // that starts while the CPUs are apart takes the bad window for normal.
  std::string core_to_core_file;
  // Measurement: `rounds` interleaved slices, each of at least ceil(min_reps / rounds) calls and
  // min_seconds / rounds seconds per model; `warmup` untimed calls of each before the first slice.
  int min_reps = 10, warmup = 2, rounds = 3;
  double min_seconds = 1.0;
  // Above this coefficient of variation (either model) the whole cell is measured once more and,
  // if still above, flagged noisy. <= 0: never re-measure (noisy uses kNoisyCv).
  double cv_threshold = 0;
  // threads > 1: the CPUs' core-to-core round trip is probed before each slice (parallel_probe.h).
  // A measurement taken while it was kDisturbedFactor over the process's best is flagged noisy
  // and disturbed; with cv_threshold > 0 it waits (up to disturbed_wait_s) for the CPUs to be
  // close again and is measured again, up to disturbed_retries times; the least disturbed
  // measurement is kept (tests replace the probe with set_core_to_core_probe).
  double disturbed_wait_s = 60;
  int disturbed_retries = 3;
  int profile_runs = -1;                 // profiled runs of each for the per-layer table; -1: 3..20; 0: none
  bool energy = true;                    // read RAPL around each slice when readable
};

struct ModelBenchLayer {
  std::string name, op, kernel, format;  // of the pruned model's step
  double sparsity = 0;
  double ms = 0, dense_ms = 0;           // mean per call while profiling (dense_ms: same-named step)
  std::int64_t m = 0, k = 0, n = 0, flops = 0;
  std::size_t weight_bytes = 0;          // as stored by the chosen implementation
  std::string dense_kernel;              // the dense model's same-named step's kernel
  bool implicit_im2col = false;          // LayerPlan::implicit_im2col of the pruned model's step
};

struct ModelBenchSide {
  Stats stats;                           // per call (one batch), milliseconds; samples raw, in order
  double p99_ms = 0;
  double throughput = 0;                 // samples (batch items) per second at the median
  std::size_t weight_bytes = 0;          // Executor::weight_bytes_stored()
  Footprint weight_split;                // values / indices / pointers / metadata of those bytes
  std::size_t arena_bytes = 0;           // activations + workspaces (Executor::arena_bytes())
  std::optional<double> energy_j;        // per call; nullopt when no counter was read
};

struct ModelBenchResult {
  std::string model, pattern;            // pattern canonical ("balanced:bank=32")
  double sparsity = 0;                   // as applied (0 for dense)
  double achieved_sparsity = 0;          // over the prunable layers (PruneReport::achieved)
  std::string allocation, kernel;
  std::int64_t batch = 1;
  int threads = 1;                       // sb::num_threads() while measuring
  ModelBenchSide dense, sparse;
  double speedup = 0;                    // dense median / sparse median, same run
  std::int64_t params_dense = 0, params_pruned = 0;
  std::string model_signature;           // Graph::signature of the dense model
  std::size_t weight_bytes_dense_f32 = 0;  // sparse executor's weights if all stored dense f32
  std::optional<std::size_t> peak_rss_bytes;  // VmHWM over the cell (both models live)
  bool peak_rss_cell_scope = false;      // true: the mark was reset before the cell; false: process peak
  bool noisy = false, remeasured = false;
  // threads > 1: the core-to-core round trips probed while measuring (the kept measurement's).
  ParallelProbeSummary parallel;
  bool disturbed = false;                // kept measurement taken in a disturbed window
  double waited_s = 0;                   // waiting for close CPUs before re-measurements, in all
  int measurements = 1;                  // taken (the first, re-measurements)
  std::string energy_note;               // "unavailable: <reason>" or what the counter covers
  std::vector<ModelBenchLayer> layers;   // one per executed step of the pruned model
  double seconds = 0;                    // wall time of the call (build, compile, measure, profile)
};

// Hook for callers who want more from the same compiled models (e.g. `bench --compare-torch`):
// called after the measurement with the dense graph, its executor and the input.
using ModelBenchHook = std::function<void(const Graph& dense_graph, Executor& dense, const Tensor& input)>;

// The spec's model built at its batch, and a copy pruned as the spec says (a dense pattern prunes
// nothing: sparsity 0). Throws sb::Error for an unknown model, a bad sparsity or a glob matching no
// layer.
struct PrunedModel {
  Graph dense, pruned;
  PruneOptions options;  // as applied
  PruneReport report;
};
PrunedModel build_pruned_model(const ModelSpec& spec);

// Builds, prunes, compiles and measures. Throws sb::Error for an unknown model, a bad sparsity or
// glob, or a kernel that cannot run a layer (naming it).
ModelBenchResult run_model_bench(const ModelBenchConfig& config, const ModelBenchHook& hook = {});

// A seeded random input for the graph's first input: uniform [-1, 1) floats, or token ids below
// the smallest embedding table for i32 inputs.
Tensor random_model_input(const Graph& graph, std::uint64_t seed);

}  // namespace sb
