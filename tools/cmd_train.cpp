// sparsebench train --model M --pattern P --sparsity S [--schedule oneshot|gradual|srste] [--epochs E]
// [--data DIR] [--format table|json]: dense pretraining on Fashion-MNIST, pruning, fine-tuning,
// and the accuracy measured by libtorch and by our runtime. Thin: the library trains (and never
// prints); this file shows its progress callback on stderr and the result on stdout.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sparsebench/core/error.h"
#include "sparsebench/prune/allocation.h"
#include "sparsebench/prune/pattern.h"

#ifdef SB_WITH_TRAIN
#include "sparsebench/train/train.h"
#endif

namespace sb::cli {
namespace {

struct TrainOptions {
  std::string model = "resnet_mini", pattern = "dense", schedule = "gradual", importance = "magnitude";
  std::string allocation = "uniform", data, cache, kernel = "sparse", format = "table", optimizer;
  double sparsity = 0, lr = 0, finetune_lr = 0, label_smoothing = -1;
  int epochs = 0, finetune_epochs = 0, threads = 0, augment = -1;
  std::int64_t batch = 0, train_subset = 0, test_subset = 0;
  std::uint64_t seed = 1;
  bool no_cache = false, quiet = false;
};

#ifdef SB_WITH_TRAIN
// $XDG_CACHE_HOME/sparsebench/checkpoints, else ~/.cache/sparsebench/checkpoints.
std::string default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/sparsebench/checkpoints";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/sparsebench/checkpoints";
  return ".sparsebench-cache";
}

std::string duration(double s) {
  if (s < 0) return "?";
  const auto t = static_cast<long>(s + 0.5);
  return t >= 3600 ? fmt::format("{}h{:02}m", t / 3600, t / 60 % 60) : fmt::format("{}m{:02}s", t / 60, t % 60);
}

int run_train(const TrainOptions& o) {
  TrainConfig c;
  c.model = o.model;
  c.pattern = Pattern::parse(o.pattern);
  c.sparsity = o.sparsity;
  c.schedule = parse_schedule(o.schedule);
  c.importance = parse_importance(o.importance);
  c.allocation = parse_allocation(o.allocation);
  c.seed = o.seed;
  c.data_dir = o.data;
  c.cache_dir = o.no_cache ? "" : (o.cache.empty() ? default_cache_dir() : o.cache);
  c.threads = o.threads;
  c.runtime_kernel = o.kernel;
  c.recipe.epochs = o.epochs;
  c.recipe.finetune_epochs = o.finetune_epochs;
  c.recipe.batch = o.batch;
  c.recipe.lr = o.lr;
  c.recipe.finetune_lr = o.finetune_lr;
  c.recipe.augment = o.augment;
  c.recipe.label_smoothing = o.label_smoothing;
  c.recipe.optimizer = o.optimizer;
  c.recipe.train_subset = o.train_subset;
  c.recipe.test_subset = o.test_subset;

  const bool tty = isatty(fileno(stderr));
  bool mid_line = false;
  auto progress = [&](const ProgressEvent& e) {
    if (o.quiet) return;
    std::string line;
    if (e.epochs == 0) {
      line = fmt::format("[{}] {}", e.phase, e.message);
    } else {
      line = fmt::format("[{}] epoch {}/{} step {}/{} loss {:.4f}", e.phase, e.epoch, e.epochs, e.step, e.steps, e.loss);
      if (e.sparsity > 0) line += fmt::format(" sparsity {:.3f}", e.sparsity);
      if (e.accuracy >= 0) line += fmt::format(" test acc {:.2f}%", e.accuracy);
      line += fmt::format(" elapsed {} eta {}", duration(e.elapsed_s), duration(e.eta_s));
    }
    const bool transient = e.epochs > 0 && e.accuracy < 0;
    if (transient && !tty) return;  // a log file gets one line per epoch, not a line per 25 steps
    // On a terminal a transient line is redrawn in place (\r, then erase to the end of the line).
    std::fprintf(stderr, "%s%s%s%s", tty ? "\r" : "", line.c_str(), tty ? "\x1b[K" : "", transient ? "" : "\n");
    mid_line = transient;
    std::fflush(stderr);
  };
  const TrainResult r = train_and_prune(c, progress);
  if (mid_line) std::fputc('\n', stderr);

  if (o.format == "json") {
    nlohmann::json j = {{"model", r.model},
                        {"pattern", r.pattern},
                        {"sparsity", r.sparsity},
                        {"achieved_sparsity", r.achieved_sparsity},
                        {"schedule", o.schedule},
                        {"importance", o.importance},
                        {"allocation", o.allocation},
                        {"seed", o.seed},
                        {"dense_accuracy", r.dense_accuracy},
                        {"accuracy_torch", r.accuracy_torch},
                        {"accuracy_runtime", r.accuracy_runtime},
                        {"runtime_kernel", o.kernel},
                        {"seconds", r.seconds},
                        {"dense_cached", r.dense_cached},
                        {"pruned_cached", r.pruned_cached},
                        {"checkpoint", r.checkpoint},
                        {"recipe", r.recipe.to_string()}};
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  std::cout << fmt::format("model             {}\n", r.model)
            << fmt::format("pattern           {} ({}, {} importance)\n", r.pattern, o.schedule, o.importance)
            << fmt::format("sparsity          {:.3f} requested, {:.3f} achieved over the pruned layers\n", r.sparsity,
                           r.achieved_sparsity)
            << fmt::format("dense accuracy    {:.2f} %\n", r.dense_accuracy)
            << fmt::format("accuracy (torch)  {:.2f} %\n", r.accuracy_torch)
            << fmt::format("accuracy (ours)   {:.2f} %   (runtime, kernel {})\n", r.accuracy_runtime, o.kernel)
            << fmt::format("seconds           {:.1f}{}\n", r.seconds,
                           r.pruned_cached ? " (pruned model from the cache)"
                                           : (r.dense_cached ? " (dense model from the cache)" : ""))
            << fmt::format("checkpoint        {}\n", r.checkpoint.empty() ? "(no cache)" : r.checkpoint)
            << fmt::format("recipe            {}\n", r.recipe.to_string());
  return 0;
}
#endif

}  // namespace

Command add_train(CLI::App& root) {
  auto* app = root.add_subcommand("train", "train a small model on Fashion-MNIST, prune it, fine-tune it, and measure "
                                           "its accuracy with libtorch and with our runtime");
  auto o = std::make_shared<TrainOptions>();
  app->add_option("--model", o->model, "mlp | lenet5 | resnet_mini | mobilenet_mini | vit_mini")->capture_default_str();
  app->add_option("--pattern", o->pattern, kPatternGrammar)->capture_default_str();
  app->add_option("--sparsity", o->sparsity, "target sparsity of the prunable layers, [0, 1)")->capture_default_str();
  app->add_option("--schedule", o->schedule,
                  "oneshot: prune then fine-tune; gradual: cubic ramp (Zhu & Gupta); srste: masks re-derived every "
                  "step, straight-through gradients (Zhou et al.)")
      ->check(CLI::IsMember({"oneshot", "gradual", "srste"}))
      ->capture_default_str();
  app->add_option("--importance", o->importance, "magnitude | taylor (|w * dL/dw| over batches)")
      ->check(CLI::IsMember({"magnitude", "taylor"}))
      ->capture_default_str();
  app->add_option("--allocation", o->allocation, "uniform | global | erk")->capture_default_str();
  app->add_option("--epochs", o->epochs, "dense pretraining epochs (0 = the model's recipe)");
  app->add_option("--finetune-epochs", o->finetune_epochs, "fine-tuning epochs (0 = the model's recipe)");
  app->add_option("--batch", o->batch, "training batch (0 = the recipe's)");
  app->add_option("--lr", o->lr, "peak learning rate (0 = the recipe's)")->check(CLI::Range(0.0, 10.0));
  app->add_option("--finetune-lr", o->finetune_lr, "peak learning rate of the fine-tuning (0 = the recipe's)")
      ->check(CLI::Range(0.0, 10.0));
  app->add_option("--label-smoothing", o->label_smoothing, "cross-entropy label smoothing, [0, 1) (default: the recipe's)")
      ->check(CLI::Range(0.0, 0.999));
  app->add_option("--augment", o->augment, "1: random shifts and flips of the training images, 0: none (default: the recipe's)")
      ->check(CLI::IsMember({0, 1}));
  app->add_option("--optimizer", o->optimizer, "sgd | adamw (empty = the recipe's)");
  app->add_option("--train-subset", o->train_subset, "train on the first N images (0 = all)");
  app->add_option("--test-subset", o->test_subset, "evaluate on the first N test images (0 = all)");
  app->add_option("--seed", o->seed, "seed of the weights, data order and augmentation")->capture_default_str();
  app->add_option("--data", o->data, "directory with the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)");
  app->add_option("--cache", o->cache, "checkpoint directory (default $XDG_CACHE_HOME or ~/.cache /sparsebench/checkpoints)");
  app->add_flag("--no-cache", o->no_cache, "neither read nor write checkpoints");
  app->add_option("--kernel", o->kernel, "runtime kernel for the runtime accuracy (auto | dense | sparse | a name)")
      ->capture_default_str();
  app->add_option("--train-threads", o->threads, "threads for torch and the runtime (0 = --threads)");
  app->add_flag("--quiet", o->quiet, "no progress on stderr");
  app->add_option("--format", o->format, "output format")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  return {app, [o] {
#ifdef SB_WITH_TRAIN
            return run_train(*o);
#else
            fail("`sparsebench train` needs libtorch: install libtorch-dev and rebuild (cmake -DSB_TORCH=ON)");
            return 1;
#endif
          }};
}

}  // namespace sb::cli
