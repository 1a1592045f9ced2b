// sparsebench train --model M --pattern P --sparsity S [--schedule oneshot|gradual|srste] [--epochs E]
// [--data DIR] [--format table|json]: dense pretraining on Fashion-MNIST, pruning, fine-tuning,
// and the accuracy measured by libtorch and by our runtime. Thin: the library trains (and never
// prints); this file shows its progress callback on stderr and the result on stdout.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
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
  double sparsity = 0, lr = 0, finetune_lr = 0, label_smoothing = -1, weight_decay = -1;
  int epochs = 0, finetune_epochs = 0, threads = 0, augment = -1;
  std::int64_t batch = 0, train_subset = 0, test_subset = 0;
  std::uint64_t seed = 1;
  int jobs = 0;
  bool no_cache = false, quiet = false, progress_json = false;
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

// One progress line: "[phase] epoch e/E step s/S loss L ... eta T" or "[phase] message".
std::string progress_line(const ProgressEvent& e) {
  if (e.epochs == 0) return fmt::format("[{}] {}", e.phase, e.message);
  std::string line =
      fmt::format("[{}] epoch {}/{} step {}/{} loss {:.4f}", e.phase, e.epoch, e.epochs, e.step, e.steps, e.loss);
  if (e.sparsity > 0) line += fmt::format(" sparsity {:.3f}", e.sparsity);
  if (e.accuracy >= 0) line += fmt::format(" train acc {:.2f}%", e.accuracy);
  return line + fmt::format(" elapsed {} eta {}", duration(e.elapsed_s), duration(e.eta_s));
}

// Progress on stderr: on a terminal a transient line (mid-epoch) is redrawn in place (\r, then
// erase to the end of the line); a log file gets one line per epoch, not a line per 25 steps.
class ProgressPrinter {
 public:
  void print(const std::string& line, bool transient) {
    if (transient && !tty_) return;
    std::fprintf(stderr, "%s%s%s%s", tty_ ? "\r" : "", line.c_str(), tty_ ? "\x1b[K" : "", transient ? "" : "\n");
    mid_line_ = transient;
    std::fflush(stderr);
  }
  void finish() {
    if (mid_line_) std::fputc('\n', stderr);
    mid_line_ = false;
  }
  bool tty() const { return tty_; }

 private:
  bool tty_ = isatty(fileno(stderr)) != 0;
  bool mid_line_ = false;
};

nlohmann::json event_json(const ProgressEvent& e) {
  return {{"phase", e.phase}, {"epoch", e.epoch},       {"epochs", e.epochs},       {"step", e.step},
          {"steps", e.steps}, {"loss", e.loss},         {"accuracy", e.accuracy},   {"sparsity", e.sparsity},
          {"elapsed_s", e.elapsed_s}, {"eta_s", e.eta_s}, {"message", e.message}};
}

ProgressEvent event_from_json(const nlohmann::json& j) {
  ProgressEvent e;
  e.phase = j.value("phase", "");
  e.epoch = j.value("epoch", 0);
  e.epochs = j.value("epochs", 0);
  e.step = j.value("step", std::int64_t{0});
  e.steps = j.value("steps", std::int64_t{0});
  e.loss = j.value("loss", 0.0);
  e.accuracy = j.value("accuracy", -1.0);
  e.sparsity = j.value("sparsity", 0.0);
  e.elapsed_s = j.value("elapsed_s", 0.0);
  e.eta_s = j.value("eta_s", -1.0);
  e.message = j.value("message", "");
  return e;
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
  c.recipe.weight_decay = o.weight_decay;
  c.recipe.optimizer = o.optimizer;
  c.recipe.train_subset = o.train_subset;
  c.recipe.test_subset = o.test_subset;

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

// --- Several models: each trains in its own process (this executable, `train --model M`), up to
// --jobs at a time with the cores shared out between them. libtorch's training of these small
// models scales poorly past one core per model (measured, one epoch, 2 cores: vit_mini 1.34x,
// mobilenet_mini 1.49x, resnet_mini 1.62x from 1 to 2 threads), while two one-thread trainings side
// by side each keep ~95 % of their speed alone, so N models on N cores finish sooner this way.
// Floating-point results depend on the thread count a model trains with (oneDNN's and ATen's
// reductions split by thread): every result says its `threads`.

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

// Relative cost of one training epoch on one thread (seconds, measured with two trainings side by
// side on the 2-vCPU Zen 4 dev VM), for longest-first scheduling only; never reported.
double epoch_cost(const std::string& model) {
  static const std::map<std::string, double> k = {
      {"mlp", 0.8}, {"lenet5", 4.5}, {"resnet_mini", 41}, {"mobilenet_mini", 46}, {"vit_mini", 34}};
  const auto it = k.find(model);
  return it == k.end() ? 10 : it->second;
}

std::vector<std::string> child_args(const TrainOptions& o, const std::string& model, int threads) {
  std::vector<std::string> a = {"sparsebench", "--threads", std::to_string(threads), "train",
                                "--model", model, "--pattern", o.pattern, "--sparsity", fmt::format("{}", o.sparsity),
                                "--schedule", o.schedule, "--importance", o.importance, "--allocation", o.allocation,
                                "--epochs", std::to_string(o.epochs), "--finetune-epochs", std::to_string(o.finetune_epochs),
                                "--batch", std::to_string(o.batch), "--lr", fmt::format("{}", o.lr),
                                "--finetune-lr", fmt::format("{}", o.finetune_lr),
                                "--train-subset", std::to_string(o.train_subset),
                                "--test-subset", std::to_string(o.test_subset), "--seed", std::to_string(o.seed),
                                "--kernel", o.kernel, "--train-threads", std::to_string(threads),
                                "--format", "json", "--progress-json"};
  if (o.label_smoothing >= 0) a.insert(a.end(), {"--label-smoothing", fmt::format("{}", o.label_smoothing)});
  if (o.weight_decay >= 0) a.insert(a.end(), {"--weight-decay", fmt::format("{}", o.weight_decay)});
  if (o.augment >= 0) a.insert(a.end(), {"--augment", std::to_string(o.augment)});
  if (!o.optimizer.empty()) a.insert(a.end(), {"--optimizer", o.optimizer});
  if (!o.data.empty()) a.insert(a.end(), {"--data", o.data});
  if (!o.cache.empty()) a.insert(a.end(), {"--cache", o.cache});
  if (o.no_cache) a.push_back("--no-cache");
  return a;
}

struct Job {
  std::string model;
  double cost = 0;
  pid_t pid = -1;
  int out_fd = -1, err_fd = -1;
  std::string out, err_partial, error;  // stdout (the JSON result), an unfinished stderr line, non-progress stderr
  ProgressEvent last;
  bool started = false, finished = false;
  int status = 0;
};

void start_job(Job& j, const TrainOptions& o, int threads) {
  int out[2], err[2];
  SB_CHECK(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0, "train {}: cannot create pipes", j.model);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  const auto args = child_args(o, j.model, threads);
  std::vector<char*> argv;
  for (const auto& x : args) argv.push_back(const_cast<char*>(x.c_str()));
  argv.push_back(nullptr);
  const int rc = posix_spawn(&j.pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    fail(fmt::format("train {}: cannot start a training process ({})", j.model, std::strerror(rc)));
  }
  j.out_fd = out[0];
  j.err_fd = err[0];
  j.started = true;
}

// Reads what is there; returns false at end of file.
bool drain(int fd, std::string& into) {
  char buf[65536];
  const ssize_t n = read(fd, buf, sizeof buf);
  if (n > 0) into.append(buf, static_cast<std::size_t>(n));
  return n > 0 || (n < 0 && errno == EINTR);
}

int run_many(const TrainOptions& o, const std::vector<std::string>& models) {
  for (const auto& m : models) (void)default_recipe(m);  // a bad name fails here, with the recipe's message
  const int cores = o.threads > 0 ? o.threads : num_threads();
  const int jobs = std::max(1, std::min<int>(o.jobs > 0 ? o.jobs : cores, static_cast<int>(models.size())));
  const int threads = std::max(1, cores / jobs);
  std::vector<Job> all;
  for (const auto& m : models) {
    TrainRecipe ov;
    ov.epochs = o.epochs;
    ov.finetune_epochs = o.finetune_epochs;
    const TrainRecipe r = default_recipe(m, ov);
    const bool prunes = o.pattern != "dense" && o.sparsity > 0;
    all.push_back(Job{m, epoch_cost(m) * (r.epochs + (prunes ? r.finetune_epochs : 0))});
  }
  std::stable_sort(all.begin(), all.end(), [](const Job& a, const Job& b) { return a.cost > b.cost; });  // longest first

  ProgressPrinter printer;
  if (!o.quiet)
    printer.print(fmt::format("[train] {} models, {} at a time, {} thread{} each", models.size(), jobs, threads,
                              threads == 1 ? "" : "s"),
                  false);
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t next = 0, running = 0, done = 0;
  while (done < all.size()) {
    while (running < static_cast<std::size_t>(jobs) && next < all.size()) {
      start_job(all[next], o, threads);
      ++next;
      ++running;
    }
    std::vector<pollfd> fds;
    std::vector<std::pair<Job*, bool>> who;  // (job, is stderr)
    for (auto& j : all) {
      if (!j.started || j.finished) continue;
      if (j.out_fd >= 0) fds.push_back({j.out_fd, POLLIN, 0}), who.push_back({&j, false});
      if (j.err_fd >= 0) fds.push_back({j.err_fd, POLLIN, 0}), who.push_back({&j, true});
    }
    if (poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) fail("train: poll failed");
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Job& j = *who[i].first;
      if (!who[i].second) {
        if (!drain(j.out_fd, j.out)) close(j.out_fd), j.out_fd = -1;
        continue;
      }
      if (!drain(j.err_fd, j.err_partial)) {
        close(j.err_fd), j.err_fd = -1;
        if (!j.err_partial.empty()) j.err_partial += '\n';
      }
      std::size_t nl;
      while ((nl = j.err_partial.find('\n')) != std::string::npos) {
        const std::string line = j.err_partial.substr(0, nl);
        j.err_partial.erase(0, nl + 1);
        nlohmann::json ev = nlohmann::json::parse(line, nullptr, false);
        if (ev.is_discarded() || !ev.is_object() || !ev.contains("phase")) {
          if (!line.empty()) j.error += (j.error.empty() ? "" : "\n") + line;
          continue;
        }
        j.last = event_from_json(ev);
        const bool transient = j.last.epochs > 0 && j.last.accuracy < 0;
        if (!o.quiet && !transient) printer.print(fmt::format("{:<15}{}", j.model, progress_line(j.last)), false);
      }
    }
    for (auto& j : all) {
      if (!j.started || j.finished || j.out_fd >= 0 || j.err_fd >= 0) continue;
      while (waitpid(j.pid, &j.status, 0) < 0 && errno == EINTR) {
      }
      j.finished = true;
      --running;
      ++done;
      if (!o.quiet) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const bool ok = WIFEXITED(j.status) && WEXITSTATUS(j.status) == 0;
        printer.print(fmt::format("{:<15}[done] {} after {} of wall time", j.model, ok ? "finished" : "FAILED", duration(s)),
                      false);
      }
    }
    if (!o.quiet && printer.tty() && running > 0) {  // one redrawn line: every running model's epoch and ETA
      std::string line;
      for (const auto& j : all)
        if (j.started && !j.finished && j.last.epochs > 0)
          line += fmt::format("{}{} {} {}/{} eta {}", line.empty() ? "" : " | ", j.model, j.last.phase, j.last.epoch,
                              j.last.epochs, duration(j.last.eta_s));
      if (!line.empty()) printer.print(line, true);
    }
  }
  printer.finish();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  nlohmann::json results = nlohmann::json::array();
  std::vector<std::string> failures;
  for (const auto& m : models)  // in the order asked for
    for (const auto& j : all) {
      if (j.model != m) continue;
      nlohmann::json r = nlohmann::json::parse(j.out, nullptr, false);
      if (WIFEXITED(j.status) && WEXITSTATUS(j.status) == 0 && !r.is_discarded() && r.is_object()) {
        results.push_back(r);
        continue;
      }
      std::string why = j.error;
      if (const auto p = why.rfind('\n'); p != std::string::npos) why = why.substr(p + 1);
      if (why.rfind("sparsebench: error: ", 0) == 0) why = why.substr(20);
      if (why.empty())
        why = WIFSIGNALED(j.status) ? fmt::format("killed by signal {}", WTERMSIG(j.status))
                                    : fmt::format("exit status {}", WEXITSTATUS(j.status));
      failures.push_back(fmt::format("{}: {}", m, why));
    }
  if (o.format == "json") {
    std::cout << nlohmann::json{{"jobs", jobs}, {"threads_per_job", threads}, {"wall_seconds", wall}, {"results", results}}
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
    std::cout << fmt::format("wall time {:.1f} s for {} model{}: {} at a time, {} thread{} each\n", wall, models.size(),
                             models.size() == 1 ? "" : "s", jobs, threads, threads == 1 ? "" : "s");
  }
  if (!failures.empty()) {
    std::string msg = fmt::format("{} of {} trainings failed: ", failures.size(), models.size());
    for (std::size_t i = 0; i < failures.size(); ++i) msg += (i ? "; " : "") + failures[i];
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
