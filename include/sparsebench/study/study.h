#pragma once
// Runs a study into a results store. The kernel part (the config's shapes x patterns x sparsities
// x threads) goes through the kernel harness (run_kernel_bench), one unit per (shape, pattern,
// sparsity, threads): its sparse kernels, peers and dense baselines are timed interleaved and
// committed together, so every stored speedup is a same-run ratio and `resume` skips whole units.
//
// Model cells (the config's latency and accuracy models x patterns x sparsities x batches x
// threads) go through run_model_bench: dense and pruned timed interleaved, both rows committed
// together. Accuracy comes from `StudyHooks::accuracy` (the libtorch trainer's checkpoint cache,
// set by the CLI in libtorch builds); without it the rows have no accuracy and the summary says why.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sparsebench/bench/model_bench.h"
#include "sparsebench/report/store.h"
#include "sparsebench/study/config.h"

namespace sb {

struct StudyProgress {
  std::string unit;       // what is being measured now ("bert_base 768x768x128 unstructured 70 % 1 thr"), "done" at the end
  int done = 0, total = 0;
  int skipped = 0;        // units found in the store (resume)
  double elapsed_s = 0;
  double eta_s = -1;      // -1 until one unit was measured
};

// One accuracy figure: a small model pruned to (pattern, sparsity) and fine-tuned by the trainer,
// from its checkpoint cache or trained on demand (settings.train_missing).
struct AccuracyRequest {
  std::string model;
  Pattern pattern;        // dense: the pretrained model
  double sparsity = 0;
  AccuracySettings settings;
};

struct AccuracyResult {
  std::string status = "ok";   // "ok" | "skipped: <why>" (not cached, not trained) | "failed: <why>"
  double accuracy = 0;         // test top-1 by our runtime, fraction in [0, 1]
  double accuracy_torch = -1;  // the same model by libtorch, fraction; -1 unknown
  double dense_accuracy = -1;  // the dense pretrained model, fraction; -1 unknown
  std::string checkpoint;      // the file it came from
  std::string recipe;          // TrainRecipe::to_string()
  std::string schedule;        // "gradual" | "oneshot" | "srste" (empty: unknown)
  bool trained = false;        // trained by this call (else loaded)
  double seconds = 0;
};

struct StudyHooks {
  // Called before each unit and once at the end (unit == "done"). May be empty.
  std::function<void(const StudyProgress&)> progress;
  // Accuracy of a small model (see AccuracyRequest); empty: no accuracy (a build without libtorch).
  std::function<AccuracyResult(const AccuracyRequest&)> accuracy;
  // Called once before the units (with `accuracy` set) with every accuracy request they will make,
  // each once, in unit order (units already stored when resuming left out): a chance to train the
  // missing checkpoints side by side before anything is timed (the CLI: one process per
  // checkpoint). May be empty; an exception becomes a note and the units train what is missing.
  std::function<void(const std::vector<AccuracyRequest>&)> prepare_accuracy;
  // Replaces run_model_bench for model cells (tests); empty: run_model_bench.
  std::function<ModelBenchResult(const ModelBenchConfig&)> model_bench;
};

struct StudyOptions {
  std::string shape_dir;   // where the config's shape_sets live (bench/shapes)
  bool resume = false;     // skip units already in the store (any run)
  bool verify = true;      // check every kernel against the reference before timing
  bool peers = true;       // time the peer libraries too
  std::string plan_cache;  // model cells: CompileOptions::plan_cache_path ("" = measure in memory)
};

struct StudySummary {
  std::int64_t run_id = 0;
  int units = 0, measured = 0, skipped = 0, cells_written = 0;
  int model_units = 0;            // of `units`
  double kernel_seconds = 0, model_seconds = 0;  // measuring time by kind (for time estimates)
  std::vector<std::string> notes;  // what the study did not measure, and why
};

// The kernel shapes of a config: its shape_sets (SHAPE_DIR/<name>.txt, each shape's set = name)
// then its explicit shapes (set "study"). Throws sb::Error naming a missing file.
std::vector<GemmShape> study_shapes(const StudyConfig& config, const std::string& shape_dir,
                                    std::vector<std::string>* sets = nullptr);

// Runs `config` into `store` as run `run_id` (begun by the caller, who also finishes it, so that
// an interruption can be recorded as such).
StudySummary run_study(const StudyConfig& config, ResultStore& store, std::int64_t run_id,
                       const StudyOptions& options, const StudyHooks& hooks = {});

}  // namespace sb
