#pragma once
// Training with pruning (M4): dense pretraining of a small zoo model on Fashion-MNIST, pruning
// (one-shot, gradual with the cubic schedule of Zhu & Gupta 2017, or SR-STE's dynamic masks of
// Zhou et al. 2021) with fine-tuning, and the
// accuracy of the result measured twice on the test set: by libtorch and by our runtime.
// Torch-free header; the implementation lives in sparsebench_train (built with libtorch).
#include <cstdint>
#include <functional>
#include <string>

#include "sparsebench/core/tensor.h"
#include "sparsebench/data/idx.h"
#include "sparsebench/prune/allocation.h"
#include "sparsebench/prune/pattern.h"
#include "sparsebench/runtime/graph.h"

namespace sb {

enum class Importance { magnitude, taylor };   // |w|, or sum over batches of |w * dL/dw|
// oneshot: prune once, fine-tune with the mask fixed. gradual: the cubic ramp, masks re-derived at
// `prune_steps` points, fixed in between. srste (Zhou et al. 2021, "Learning N:M fine-grained
// structured sparse neural networks from scratch"): the forward pass uses the masked weights, the
// gradient updates dense shadow weights (straight-through estimator) with a decay of
// kSrsteLambda on the pruned ones (sparse-refined), and the mask is re-derived from the shadow
// weights by magnitude after every step; the last mask is applied at the end.
enum class Schedule { oneshot, gradual, srste };
inline constexpr double kSrsteLambda = 2e-4;  // the paper's lambda_W
Importance parse_importance(const std::string& text);  // "magnitude" | "taylor"
Schedule parse_schedule(const std::string& text);      // "oneshot" | "gradual" | "srste"
const char* importance_name(Importance i);
const char* schedule_name(Schedule s);

// Hyper-parameters. Zero / empty fields take the model's default (see default_recipe); the
// resolved recipe is part of the checkpoint key.
struct TrainRecipe {
  int epochs = 0;             // dense pretraining epochs
  int finetune_epochs = 0;    // after pruning (gradual: the pruning ramp runs over its first 2/3)
  std::int64_t batch = 0;     // training batch
  std::string optimizer;      // "sgd" (momentum 0.9, Nesterov) | "adamw"
  double lr = 0;              // peak learning rate (cosine decay to 0 after a short warm-up)
  double finetune_lr = 0;     // peak learning rate of the fine-tuning
  double weight_decay = -1;   // on conv / linear weights only
  int augment = -1;           // 1: random shifts of up to 2 pixels and horizontal flips
  double label_smoothing = -1;  // cross-entropy label smoothing in [0, 1); -1 = the model's default
  std::int64_t train_subset = 0;  // use the first N training images (0 = all 60000); CI uses it
  std::int64_t test_subset = 0;   // evaluate on the first N test images (0 = all 10000)
  int prune_steps = 0;        // gradual: number of mask updates along the cubic ramp
  int taylor_batches = 0;     // Taylor importance: batches accumulated per mask update
  std::string to_string() const;  // canonical text of every field, for the cache key
};
// The recipe for `model` with every unset field of `overrides` filled in.
TrainRecipe default_recipe(const std::string& model, const TrainRecipe& overrides = {});

struct TrainConfig {
  std::string model = "resnet_mini";   // a small zoo model
  Pattern pattern;                     // dense: pretraining only
  double sparsity = 0;                 // target over the prunable layers, [0, 1)
  Schedule schedule = Schedule::gradual;
  Importance importance = Importance::magnitude;
  Allocation allocation = Allocation::uniform;
  std::uint64_t seed = 1;              // data order, augmentation (the weights' init too)
  std::string data_dir;                // Fashion-MNIST directory; empty = kFashionMnistDir
  std::string cache_dir;               // checkpoints; empty = no caching
  int threads = 0;                     // torch and runtime threads; 0 = sb::num_threads()
  std::string runtime_kernel = "sparse";  // executor kernel for the runtime accuracy (executor.h)
  TrainRecipe recipe;
};

struct ProgressEvent {
  std::string phase;        // "load", "pretrain", "finetune", "evaluate", "cache"
  int epoch = 0, epochs = 0;   // 1-based epoch within the phase
  std::int64_t step = 0, steps = 0;  // batches done / in this epoch
  double loss = 0;          // running mean of the training loss this epoch
  // Training accuracy (percent) over the epoch's batches (augmented, as trained), at the end of an
  // epoch; -1 mid-epoch. The test set is evaluated once, at the end (an evaluation of the 10k test
  // images after every epoch cost ~5 % of the training time).
  double accuracy = -1;
  double sparsity = 0;      // current mask sparsity target
  double elapsed_s = 0;     // since train_and_prune started
  double eta_s = -1;        // estimated seconds left (all phases); -1 unknown
  std::string message;      // for "load" / "cache" / "evaluate"
};
using ProgressCallback = std::function<void(const ProgressEvent&)>;

struct TrainResult {
  std::string model, pattern;
  double sparsity = 0;           // requested
  double achieved_sparsity = 0;  // pruned fraction of the pruned layers' weights
  double dense_accuracy = 0;     // percent, torch, the pretrained dense model
  double accuracy_torch = 0;     // percent, the pruned fine-tuned model by libtorch
  double accuracy_runtime = 0;   // percent, the same by our executor (runtime_kernel)
  double seconds = 0;            // wall time of this call
  bool dense_cached = false, pruned_cached = false;
  std::string checkpoint;        // the pruned (or dense) model's checkpoint file; empty without cache
  TrainRecipe recipe;            // as resolved
  Graph graph;                   // the trained model: weights, masks (batch 1)
};

// Trains (or loads from the cache) the dense model, prunes and fine-tunes it, and measures both
// accuracies. Throws sb::Error for an unknown or non-small model, a sparsity outside [0, 1), a
// missing data set (naming the package), etc. The callback (optional) is called from this thread.
TrainResult train_and_prune(const TrainConfig& config, const ProgressCallback& progress = {});

// The file train_and_prune(config) reads from and writes to the cache: the pruned model's
// checkpoint when it prunes, else the pretrained one's; "" without a cache directory.
std::string expected_checkpoint(const TrainConfig& config);

// Test-set accuracy (percent) of `graph` run by our executor with `kernel`, in batches of `batch`.
// Images u8 [N, 28, 28] are normalised as for training (normalize_images).
double runtime_accuracy(const Graph& graph, const ImageSet& data, const std::string& kernel = "sparse",
                        std::int64_t batch = 500, std::int64_t limit = 0);
// f32 [count, 1, 28, 28]: (pixel / 255 - mean) / std with Fashion-MNIST's training statistics.
Tensor normalize_images(const Tensor& images, std::int64_t first, std::int64_t count);

// Checkpoints (one file: parameters, masks, metadata, CRC-32 of everything).
// The file name derives from the key; the key is stored inside and compared on load.
std::string checkpoint_key(const std::string& model, const TrainRecipe& recipe, const Pattern& pattern,
                           double sparsity, std::uint64_t seed, const std::string& extra = "");
std::string checkpoint_path(const std::string& cache_dir, const std::string& key, const std::string& model);
// Writes atomically (temporary file, then rename). `meta` is JSON text stored alongside.
void save_checkpoint(const std::string& path, const std::string& key, const Graph& graph, const std::string& meta);
// Loads into `graph` (same structure). Returns false, with `why` set, when the file is missing,
// corrupt (checksum), of another key, or does not match the graph's parameters; never throws for those.
bool load_checkpoint(const std::string& path, const std::string& key, Graph& graph, std::string& meta,
                     std::string& why);

}  // namespace sb
