#pragma once
// A study: models x patterns x sparsities x batch sizes x threads x devices, read from TOML
// (studies/default.toml is the reference and documents every key). Kernel shapes (bench/shapes)
// give the kernel part of a study; models the end-to-end part.
#include <cstdint>
#include <string>
#include <vector>

#include "sparsebench/bench/shapes.h"
#include "sparsebench/prune/pattern.h"

namespace sb {

struct MeasureSettings {
  int min_reps = 10;            // samples per cell, at least
  double min_seconds = 0.2;     // timed seconds per cell, at least
  int warmup = 2;               // untimed calls before the samples
  double cv_threshold = 0.10;   // above it a cell is measured again once, then flagged noisy
  int rounds = 5;               // interleaving slices: dense and sparse alternate within a cell
};

struct AccuracySettings {
  std::vector<std::string> models;  // small models (trained by `sparsebench train`); empty = none
  std::string checkpoints = "";     // checkpoint cache directory; empty = the trainer's default
  int epochs = 0;                   // dense pretraining epochs; 0 = the trainer's default
  int finetune_epochs = 0;          // after pruning; 0 = the trainer's default
  std::int64_t train_subset = 0;    // first N training images; 0 = all 60000
  std::int64_t test_subset = 0;     // first N test images; 0 = all 10000
  bool train_missing = true;        // train a checkpoint that is not cached (else: no accuracy for it)
  std::string schedule = "gradual"; // pruning schedule: "gradual" | "oneshot" | "srste" (sparsebench train)
};

// [gpu]: how the cells on device "cuda" run (sparsebench kernels / bench --device cuda).
struct GpuSettings {
  std::vector<std::string> dtypes{"f16"};  // f32, tf32, f16, bf16 (kernel cells also i8)
  std::string cache = "cold";              // "cold": L2 flushed between timed calls; "hot"; "stream":
                                           // weight copies (> 2x L2) back to back in one CUDA graph
  std::vector<std::string> skip_kernels;   // GPU implementations not run (e.g. one that lost the context)
};

struct StudyConfig {
  std::string name;                      // [study] name
  std::string source;                    // the file it was read from
  std::vector<std::string> models;       // [latency] models (zoo names)
  // [latency] batches / threads / min_reps / rounds: for the [latency] models' cells (empty / 0 = the [sweep]
  // and [measure] values); models only in [accuracy] always use [sweep] and [measure].
  std::vector<int> model_batches;
  std::vector<int> model_threads;
  int model_min_reps = 0;
  int model_rounds = 0;
  std::vector<std::string> shape_sets;   // [kernels] shape_sets: bench/shapes/<name>.txt
  std::vector<GemmShape> shapes;         // [kernels] shapes: "MxKxN"
  std::vector<Pattern> patterns;         // [sweep]; "dense" is the baseline, always measured
  std::vector<double> sparsities;        // [sweep], each in [0, 1)
  std::vector<int> batches;              // [sweep], each >= 1
  std::vector<int> threads;              // [sweep], each >= 0 (0 = all cores)
  std::vector<std::string> devices;      // [sweep], "cpu" | "cuda"
  MeasureSettings measure;
  AccuracySettings accuracy;
  GpuSettings gpu;
};

// Parses a study from TOML text; `source` names it in errors. Throws sb::Error as
// "SOURCE:LINE:COLUMN: key 'section.key': what is wrong (expected ...)" on a TOML syntax error, an
// unknown section or key, a value of the wrong type or range, an unknown pattern (quoting the
// pattern grammar) or an unknown model (listing the known ones).
StudyConfig parse_study_config(const std::string& text, const std::string& source);
// Reads and parses a file; throws sb::Error naming the file when it cannot be read.
StudyConfig load_study_config(const std::string& path);

}  // namespace sb
