// Trainings as child processes (see train_jobs.h).
#include "train_jobs.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include <fmt/format.h>

#include "sparsebench/core/error.h"
#include "sparsebench/prune/allocation.h"

extern char** environ;

namespace sb::cli {

std::string default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/sparsebench/checkpoints";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/sparsebench/checkpoints";
  return ".sparsebench-cache";
}

TrainConfig train_config(const TrainOptions& o) {
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
  return c;
}

std::string train_duration(double s) {
  if (s < 0) return "?";
  const auto t = static_cast<long>(s + 0.5);
  return t >= 3600 ? fmt::format("{}h{:02}m", t / 3600, t / 60 % 60) : fmt::format("{}m{:02}s", t / 60, t % 60);
}

std::string progress_line(const ProgressEvent& e) {
  if (e.epochs == 0) return fmt::format("[{}] {}", e.phase, e.message);
  std::string line =
      fmt::format("[{}] epoch {}/{} step {}/{} loss {:.4f}", e.phase, e.epoch, e.epochs, e.step, e.steps, e.loss);
  if (e.sparsity > 0) line += fmt::format(" sparsity {:.3f}", e.sparsity);
  if (e.accuracy >= 0) line += fmt::format(" train acc {:.2f}%", e.accuracy);
  return line + fmt::format(" elapsed {} eta {}", train_duration(e.elapsed_s), train_duration(e.eta_s));
}

ProgressPrinter::ProgressPrinter() : tty_(isatty(fileno(stderr)) != 0) {}

void ProgressPrinter::print(const std::string& line, bool transient) {
  if (transient && !tty_) return;
  std::fprintf(stderr, "%s%s%s%s", tty_ ? "\r" : "", line.c_str(), tty_ ? "\x1b[K" : "", transient ? "" : "\n");
  mid_line_ = transient;
  std::fflush(stderr);
}

void ProgressPrinter::finish() {
  if (mid_line_) std::fputc('\n', stderr);
  mid_line_ = false;
}

nlohmann::json event_json(const ProgressEvent& e) {
  return {{"phase", e.phase}, {"epoch", e.epoch},       {"epochs", e.epochs},       {"step", e.step},
          {"steps", e.steps}, {"loss", e.loss},         {"accuracy", e.accuracy},   {"sparsity", e.sparsity},
          {"elapsed_s", e.elapsed_s}, {"eta_s", e.eta_s}, {"message", e.message}};
}

namespace {

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

// Relative cost of one training epoch on one thread (seconds, measured with two trainings side by
// side on the 2-vCPU Zen 4 dev VM), for longest-first scheduling only; never reported.
double epoch_cost(const std::string& model) {
  static const std::map<std::string, double> k = {
      {"mlp", 0.8}, {"lenet5", 4.5}, {"resnet_mini", 41}, {"mobilenet_mini", 46}, {"vit_mini", 34}};
  const auto it = k.find(model);
  return it == k.end() ? 10 : it->second;
}

// The job's whole cost in those units: its epochs of dense pretraining and of fine-tuning.
double job_cost(const TrainOptions& o) {
  TrainRecipe ov;
  ov.epochs = o.epochs;
  ov.finetune_epochs = o.finetune_epochs;
  const TrainRecipe r = default_recipe(o.model, ov);
  const bool prunes = o.pattern != "dense" && o.sparsity > 0;
  return epoch_cost(o.model) * (r.epochs + (prunes ? r.finetune_epochs : 0));
}

std::vector<std::string> child_args(const TrainOptions& o, int threads) {
  std::vector<std::string> a = {"sparsebench", "--threads", std::to_string(threads), "train",
                                "--model", o.model, "--pattern", o.pattern, "--sparsity", fmt::format("{}", o.sparsity),
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
  const TrainJob* job = nullptr;
  std::size_t index = 0;  // in the caller's order
  double cost = 0;
  pid_t pid = -1;
  int out_fd = -1, err_fd = -1;
  std::string out, err_partial, error;  // stdout (the JSON result), an unfinished stderr line, non-progress stderr
  ProgressEvent last;
  bool started = false, finished = false;
  int status = 0;
};

void start_job(Job& j, int threads) {
  const std::string& label = j.job->label;
  int out[2], err[2];
  SB_CHECK(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0, "train {}: cannot create pipes", label);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  const auto args = child_args(j.job->options, threads);
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
    fail(fmt::format("train {}: cannot start a training process ({})", label, std::strerror(rc)));
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

}  // namespace

TrainJobsOutcome run_train_jobs(const std::vector<TrainJob>& jobs, int cores, int max_jobs, bool quiet) {
  TrainJobsOutcome res;
  if (jobs.empty()) return res;
  cores = std::max(1, cores);
  res.jobs = std::max(1, std::min<int>(max_jobs > 0 ? max_jobs : cores, static_cast<int>(jobs.size())));
  res.threads = std::max(1, cores / res.jobs);
  std::vector<Job> all;
  std::size_t width = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    all.push_back(Job{&jobs[i], i, job_cost(jobs[i].options)});
    width = std::max(width, jobs[i].label.size());
  }
  std::stable_sort(all.begin(), all.end(), [](const Job& a, const Job& b) { return a.cost > b.cost; });  // longest first
  auto prefix = [&](const Job& j) { return fmt::format("{:<{}}  ", j.job->label, width); };

  ProgressPrinter printer;
  if (!quiet)
    printer.print(fmt::format("[train] {} trainings, {} at a time, {} thread{} each", jobs.size(), res.jobs,
                              res.threads, res.threads == 1 ? "" : "s"),
                  false);
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t next = 0, running = 0, done = 0;
  while (done < all.size()) {
    while (running < static_cast<std::size_t>(res.jobs) && next < all.size()) {
      start_job(all[next], res.threads);
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
        if (!quiet && !transient) printer.print(prefix(j) + progress_line(j.last), false);
      }
    }
    for (auto& j : all) {
      if (!j.started || j.finished || j.out_fd >= 0 || j.err_fd >= 0) continue;
      while (waitpid(j.pid, &j.status, 0) < 0 && errno == EINTR) {
      }
      j.finished = true;
      --running;
      ++done;
      if (!quiet) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const bool ok = WIFEXITED(j.status) && WEXITSTATUS(j.status) == 0;
        printer.print(fmt::format("{}[done] {} after {} of wall time ({} of {})", prefix(j), ok ? "finished" : "FAILED",
                                  train_duration(s), done, all.size()),
                      false);
      }
    }
    if (!quiet && printer.tty() && running > 0) {  // one redrawn line: every running training's epoch and ETA
      std::string line;
      for (const auto& j : all)
        if (j.started && !j.finished && j.last.epochs > 0)
          line += fmt::format("{}{} {} {}/{} eta {}", line.empty() ? "" : " | ", j.job->label, j.last.phase,
                              j.last.epoch, j.last.epochs, train_duration(j.last.eta_s));
      if (!line.empty()) printer.print(line, true);
    }
  }
  printer.finish();
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  res.results.assign(jobs.size(), nlohmann::json());
  std::sort(all.begin(), all.end(), [](const Job& a, const Job& b) { return a.index < b.index; });
  for (const Job& j : all) {
    nlohmann::json r = nlohmann::json::parse(j.out, nullptr, false);
    if (WIFEXITED(j.status) && WEXITSTATUS(j.status) == 0 && !r.is_discarded() && r.is_object()) {
      res.results[j.index] = std::move(r);
      continue;
    }
    std::string why = j.error;
    if (const auto p = why.rfind('\n'); p != std::string::npos) why = why.substr(p + 1);
    if (why.rfind("sparsebench: error: ", 0) == 0) why = why.substr(20);
    if (why.empty())
      why = WIFSIGNALED(j.status) ? fmt::format("killed by signal {}", WTERMSIG(j.status))
                                  : fmt::format("exit status {}", WEXITSTATUS(j.status));
    res.failures.push_back(fmt::format("{}: {}", j.job->label, why));
  }
  return res;
}

}  // namespace sb::cli
