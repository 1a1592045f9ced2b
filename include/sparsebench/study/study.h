#pragma once
// Runs a study into a results store. The kernel part (the config's shapes x patterns x sparsities
// x threads) goes through the kernel harness (run_kernel_bench), one unit per (shape, pattern,
// sparsity, threads): its sparse kernels, peers and dense baselines are timed interleaved and
// committed together, so every stored speedup is a same-run ratio and `resume` skips whole units.
//
// Model cells come from `StudyHooks::run_model` once the runtime's benchmark API exists; without
// it the study measures no model and says so in `StudySummary::notes` (nothing is estimated).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sparsebench/report/store.h"
#include "sparsebench/study/config.h"

namespace sb {

struct StudyProgress {
  std::string unit;       // what is being measured now ("bert_base 768x768x128 unstructured 70 % 1 thr")
  int done = 0, total = 0;
  int skipped = 0;        // units found in the store (resume)
  double elapsed_s = 0;
  double eta_s = -1;      // -1 until one unit was measured
};

// What one model cell needs: measured by the caller's runtime (M3) / accuracy (M4) code.
struct ModelCellRequest {
  std::string model;
  Pattern pattern;
  double sparsity = 0;
  int batch = 1, threads = 1;
  std::string device;
  MeasureSettings measure;
  bool accuracy = false;  // the model is in [accuracy] models
};

struct StudyHooks {
  // Called before each unit and once at the end (done == total). May be empty.
  std::function<void(const StudyProgress&)> progress;
  // TODO(M3/M4): set by `sparsebench study` once `sparsebench bench` has a library API: measures
  // the dense and the sparse model interleaved and returns both cells (speedup filled in).
  std::function<std::vector<Cell>(const ModelCellRequest&)> run_model;
};

struct StudyOptions {
  std::string shape_dir;   // where the config's shape_sets live (bench/shapes)
  bool resume = false;     // skip units already in the store (any run)
  bool verify = true;      // check every kernel against the reference before timing
  bool peers = true;       // time the peer libraries too
};

struct StudySummary {
  std::int64_t run_id = 0;
  int units = 0, measured = 0, skipped = 0, cells_written = 0;
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
