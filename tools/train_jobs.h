#pragma once
// Trainings as child processes (libtorch builds only): `sparsebench train` with several models and
// `sparsebench study`'s missing accuracy checkpoints run each training in its own process (this
// executable, `train ... --progress-json`), several at a time with the cores shared out.
// libtorch's training of the small models scales poorly past one core per model (measured, one
// epoch, 2 cores: vit_mini 1.34x, mobilenet_mini 1.49x, resnet_mini 1.62x from 1 to 2 threads),
// while two one-thread trainings side by side each keep ~95 % of their speed alone.
// Floating-point results depend on the thread count a model trains with (oneDNN's and ATen's
// reductions split by thread): every result says its `threads`.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparsebench/train/train.h"
#include "train_options.h"

namespace sb::cli {

// $XDG_CACHE_HOME/sparsebench/checkpoints, else ~/.cache/sparsebench/checkpoints.
std::string default_cache_dir();

// The trainer's configuration for these options (the cache directory resolved).
TrainConfig train_config(const TrainOptions& o);

// "1m05s", "2h03m"; "?" for a negative (unknown) time.
std::string train_duration(double s);

// One progress line: "[phase] epoch e/E step s/S loss L ... eta T" or "[phase] message".
std::string progress_line(const ProgressEvent& e);
nlohmann::json event_json(const ProgressEvent& e);

// Progress on stderr: on a terminal a transient line (mid-epoch) is redrawn in place; a log file
// gets one line per epoch, not a line per 25 steps.
class ProgressPrinter {
 public:
  ProgressPrinter();
  void print(const std::string& line, bool transient);
  void finish();
  bool tty() const { return tty_; }

 private:
  bool tty_;
  bool mid_line_ = false;
};

struct TrainJob {
  std::string label;     // what progress lines are prefixed with
  TrainOptions options;  // threads are set per job by run_train_jobs
};

struct TrainJobsOutcome {
  int jobs = 0, threads = 0;  // at a time, threads each
  double wall_seconds = 0;
  std::vector<nlohmann::json> results;  // per job, in the order given: the child's JSON, or null if it failed
  std::vector<std::string> failures;    // "label: why", in the order given
};

// Runs every job, `max_jobs` at a time (0: one per core), `cores` shared out among them, longest
// first (by a table of measured epoch costs); progress on stderr unless `quiet`. Never throws for
// a failed training: it is reported in `failures`.
TrainJobsOutcome run_train_jobs(const std::vector<TrainJob>& jobs, int cores, int max_jobs, bool quiet);

}  // namespace sb::cli
