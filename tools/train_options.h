#pragma once
// `sparsebench train`'s options: the flags of tools/cmd_train.cpp, and what a training child
// process (train_jobs.h) gets as flags. No libtorch needed: builds without it still parse them.
#include <cstdint>
#include <string>

namespace sb::cli {

struct TrainOptions {
  std::string model = "resnet_mini", pattern = "dense", schedule = "gradual", importance = "magnitude";
  std::string allocation = "uniform", data, cache, kernel = "sparse", format = "table", optimizer;
  double sparsity = 0, lr = 0, finetune_lr = 0, label_smoothing = -1, weight_decay = -1;
  int epochs = 0, finetune_epochs = 0, threads = 0, augment = -1;
  std::int64_t batch = 0, train_subset = 0, test_subset = 0;
  std::uint64_t seed = 1;
  int jobs = 0;
  bool no_cache = false, quiet = false, progress_json = false;
};

}  // namespace sb::cli
