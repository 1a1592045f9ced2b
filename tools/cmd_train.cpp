// sparsebench train --model M --pattern P --sparsity S [--schedule oneshot|gradual|srste] [--epochs E]
// [--data DIR] [--format table|json]: dense pretraining on Fashion-MNIST, pruning, fine-tuning,
// and the accuracy measured by libtorch and by our runtime. Thin: the library trains (and never
// prints); this file shows its progress callback on stderr and the result on stdout.
#include <algorithm>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/prune/pattern.h"
#include "train_options.h"

#ifdef SB_WITH_TRAIN
#include "sparsebench/train/train.h"
#include "train_jobs.h"
#endif

namespace sb::cli {
namespace {

#ifdef SB_WITH_TRAIN
int run_train(const TrainOptions& o) {
  const TrainConfig c = train_config(o);

  ProgressPrinter printer;
  auto progress = [&](const ProgressEvent& e) {
    if (o.progress_json) {  // for a parent `train` running several models (run_many)
      std::fprintf(stderr, "%s\n", event_json(e).dump().c_str());
      std::fflush(stderr);
      return;
    }
    if (!o.quiet) printer.print(progress_line(e), e.epochs > 0 && e.accuracy < 0);
  };
  const TrainResult r = train_and_prune(c, progress);
  printer.finish();

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
                        {"threads", o.threads > 0 ? o.threads : num_threads()},
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

// --- Several models: each in its own process, --jobs at a time (train_jobs.h).

// The zoo's small (28x28) models: what `train` can train, in the zoo's order.
std::vector<std::string> small_zoo() {
  std::vector<std::string> out;
  for (const auto& m : model_names())
    if (model_info(m).small) out.push_back(m);
  return out;
}

std::vector<std::string> parse_models(const std::string& spec) {
  const std::vector<std::string> zoo = small_zoo();
  std::vector<std::string> out;
  std::stringstream ss(spec);
  std::string m;
  while (std::getline(ss, m, ',')) {
    if (m == "all") {
      for (const auto& z : zoo)
        if (std::find(out.begin(), out.end(), z) == out.end()) out.push_back(z);
      continue;
    }
    if (std::find(zoo.begin(), zoo.end(), m) == zoo.end()) {
      try {
        (void)default_recipe(m);  // the library's word on what it trains
      } catch (const Error& e) {
        fail(fmt::format("--model: {} (or all, or a comma-separated list of them)", e.what()));
      }
      fail(fmt::format("--model '{}': expected one of mlp, lenet5, resnet_mini, mobilenet_mini, vit_mini, all", m));
    }
    SB_CHECK(std::find(out.begin(), out.end(), m) == out.end(), "--model '{}': the model is listed twice", spec);
    out.push_back(m);
  }
  SB_CHECK(!out.empty(), "--model '{}': expected a model name, a comma-separated list, or all", spec);
  return out;
}

int run_many(const TrainOptions& o, const std::vector<std::string>& models) {
  for (const auto& m : models) (void)default_recipe(m);  // a bad name fails here, with the recipe's message
  std::vector<TrainJob> jobs;
  for (const auto& m : models) {
    TrainJob j{m, o};
    j.options.model = m;
    jobs.push_back(std::move(j));
  }
  const TrainJobsOutcome out = run_train_jobs(jobs, o.threads > 0 ? o.threads : num_threads(), o.jobs, o.quiet);
  nlohmann::json results = nlohmann::json::array();
  for (const auto& r : out.results)
    if (!r.is_null()) results.push_back(r);
  if (o.format == "json") {
    std::cout << nlohmann::json{{"jobs", out.jobs},
                                {"threads_per_job", out.threads},
                                {"wall_seconds", out.wall_seconds},
                                {"results", results}}
                     .dump(1)
              << "\n";
  } else {
    std::cout << fmt::format("{:<15} {:<20} {:>8} {:>9} {:>9} {:>9} {:>8} {:>7}\n", "model", "pattern", "sparsity",
                             "dense %", "torch %", "ours %", "seconds", "threads");
    for (const auto& r : results)
      std::cout << fmt::format("{:<15} {:<20} {:>8.3f} {:>9.2f} {:>9.2f} {:>9.2f} {:>8.1f} {:>7}\n",
                               r.value("model", ""), r.value("pattern", ""), r.value("achieved_sparsity", 0.0),
                               r.value("dense_accuracy", 0.0), r.value("accuracy_torch", 0.0),
                               r.value("accuracy_runtime", 0.0), r.value("seconds", 0.0), r.value("threads", 0));
    std::cout << fmt::format("wall time {:.1f} s for {} model{}: {} at a time, {} thread{} each\n", out.wall_seconds,
                             models.size(), models.size() == 1 ? "" : "s", out.jobs, out.threads,
                             out.threads == 1 ? "" : "s");
  }
  if (!out.failures.empty()) {
    std::string msg = fmt::format("{} of {} trainings failed: ", out.failures.size(), models.size());
    for (std::size_t i = 0; i < out.failures.size(); ++i) msg += (i ? "; " : "") + out.failures[i];
    fail(msg);
  }
  return 0;
}
#endif

}  // namespace

Command add_train(CLI::App& root) {
  auto* app = root.add_subcommand("train", "train a small model on Fashion-MNIST, prune it, fine-tune it, and measure "
                                           "its accuracy with libtorch and with our runtime");
  auto o = std::make_shared<TrainOptions>();
  app->add_option("--model", o->model,
                  "mlp | lenet5 | resnet_mini | mobilenet_mini | vit_mini, a comma-separated list of them, or all "
                  "(several: one process each, --jobs at a time)")
      ->capture_default_str();
  app->add_option("--jobs", o->jobs, "with several models: how many train at once (0 = one per core)")
      ->check(CLI::NonNegativeNumber);
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
  app->add_option("--weight-decay", o->weight_decay,
                  "weight decay of the conv / linear weights, >= 0 (default: the recipe's)")
      ->check(CLI::Range(0.0, 1.0));
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
  app->add_flag("--progress-json", o->progress_json, "progress as JSON lines on stderr (for a parent process)")
      ->group("");
  app->add_option("--format", o->format, "output format")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  return {app, [o] {
#ifdef SB_WITH_TRAIN
            const std::vector<std::string> models = parse_models(o->model);
            if (models.size() > 1) return run_many(*o, models);
            o->model = models[0];
            return run_train(*o);
#else
            fail("`sparsebench train` needs libtorch: install libtorch-dev and rebuild (cmake -DSB_TORCH=ON)");
            return 1;
#endif
          }};
}

}  // namespace sb::cli
