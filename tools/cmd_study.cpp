// sparsebench study: runs a study config into DIR/results.db and writes DIR/report/. Thin: parses
// flags, finds the config and the shapes, calls src/study and src/report, prints progress.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "commands.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/system_info.h"
#include "sparsebench/kernels/cuda_spmm.h"
#include "sparsebench/report/report.h"
#include "sparsebench/runtime/executor.h"
#include "sparsebench/study/study.h"

// SB_WITH_TRAIN (libtorch builds, see tools/CMakeLists.txt): accuracy from the trainer's checkpoint
// cache, training what is missing.
#ifdef SB_WITH_TRAIN
#include "sparsebench/core/threads.h"
#include "sparsebench/train/train.h"
#include "train_jobs.h"
#endif

namespace sb::cli {
namespace {
namespace fs = std::filesystem;

struct StudyCliOptions {
  std::string config, out = "sparsebench-results", shapes, skip_kernels;
  bool quick = false, resume = false, no_peers = false, no_verify = false, train_missing = false;
  std::string assets = default_web_assets_dir();
};

// A directory of the source tree (studies, bench/shapes): from the working directory, else above
// the executable (build dirs live in the source tree).
std::string find_source_dir(const std::string& rel) {
  std::error_code ec;
  if (fs::exists(rel, ec)) return rel;
  for (fs::path d = fs::read_symlink("/proc/self/exe", ec).parent_path(); !d.empty() && d != d.root_path();
       d = d.parent_path())
    if (fs::exists(d / rel, ec)) return (d / rel).string();
  fail(fmt::format("{}: not found (from the working directory or above the executable)", rel));
}

std::string git_revision() {
  std::error_code ec;
  const fs::path exe_dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
  const std::string cmd = fmt::format(
      "git -C '{}' rev-parse --short HEAD 2>/dev/null && git -C '{}' status --porcelain --untracked-files=no "
      "2>/dev/null | head -1",
      exe_dir.string(), exe_dir.string());
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "unknown";
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  std::istringstream lines(out);
  std::string rev, dirty;
  std::getline(lines, rev);
  std::getline(lines, dirty);
  if (rev.empty()) return "unknown";
  return dirty.empty() ? rev : rev + "-dirty";
}

std::string duration(double s) {
  if (s < 0) return "?";
  const int t = static_cast<int>(s + 0.5);
  return t >= 60 ? fmt::format("{}m{:02d}s", t / 60, t % 60) : fmt::format("{}s", t);
}

#ifdef SB_WITH_TRAIN
// The trainer's options for a study's accuracy request: the trainer's defaults (magnitude
// importance, uniform allocation, seed 1) with the study's schedule and lengths. One function for
// the units' own training and the side-by-side training before them, so both make the same
// checkpoint.
TrainOptions study_train_options(const AccuracyRequest& q) {
  TrainOptions o;
  o.model = q.model;
  o.pattern = q.pattern.to_string();
  o.sparsity = q.sparsity;
  o.schedule = q.settings.schedule;
  o.cache = q.settings.checkpoints;  // empty: the trainer's default cache
  o.threads = available_cpus();
  o.epochs = q.settings.epochs;
  o.finetune_epochs = q.settings.finetune_epochs;
  o.train_subset = q.settings.train_subset;
  o.test_subset = q.settings.test_subset;
  return o;
}

// A study's accuracy cell: the checkpoint of this request, loaded, or trained when missing and
// the study allows it.
AccuracyResult study_accuracy(const AccuracyRequest& q, bool tty) {
  const TrainConfig c = train_config(study_train_options(q));
  AccuracyResult out;
  const std::string expected = expected_checkpoint(c);
  if (!q.settings.train_missing && !fs::exists(expected)) {
    out.status = fmt::format("skipped: not cached ({})", expected);
    return out;
  }
  const std::string what = fmt::format("{} {} {:.0f} %", q.model, q.pattern.to_string(), q.sparsity * 100);
  bool mid_line = false;
  auto progress = [&](const ProgressEvent& e) {
    if (e.phase == "cache" || e.phase == "load") return;
    std::string line = fmt::format("  [accuracy {}] {}", what, e.phase);
    if (e.epochs > 0) {
      line += fmt::format(" epoch {}/{} step {}/{} loss {:.3f}", e.epoch, e.epochs, e.step, e.steps, e.loss);
      if (e.accuracy >= 0) line += fmt::format(" test acc {:.2f} %", e.accuracy);
      line += fmt::format(" eta {}", duration(e.eta_s));
    } else {
      line += ": " + e.message;
    }
    const bool transient = e.epochs > 0 && e.accuracy < 0;
    if (transient && !tty) return;
    std::cerr << (tty ? "\r\033[K" : "") << line << (transient ? "" : "\n") << std::flush;
    mid_line = transient;
  };
  const bool cached = fs::exists(expected);
  const TrainResult r = train_and_prune(c, progress);
  if (mid_line) std::cerr << "\n";
  out.accuracy = r.accuracy_runtime / 100;
  out.accuracy_torch = r.accuracy_torch / 100;
  out.dense_accuracy = r.dense_accuracy / 100;
  out.checkpoint = r.checkpoint;
  out.schedule = schedule_name(c.schedule);
  out.recipe = r.recipe.to_string();
  out.trained = !cached;
  out.seconds = r.seconds;
  return out;
}

// Before the units: the study's missing checkpoints trained side by side, one process per
// checkpoint with the cores shared out (train_jobs.h), the dense models first (a pruned model
// starts from its model's dense checkpoint, which two trainings must not both make), then the
// pruned ones, longest first. With one core, or fewer than two trainings to do, nothing happens
// here and the units train what they miss one at a time. A failed training is left to its unit,
// which tries again and records the failure in the results.
void study_prepare(const std::vector<AccuracyRequest>& reqs) {
  const int cores = available_cpus();
  if (reqs.empty() || !reqs.front().settings.train_missing || cores < 2) return;
  std::vector<TrainJob> dense, pruned;
  std::set<std::string> dense_queued;
  auto missing = [](const TrainOptions& o) { return !fs::exists(expected_checkpoint(train_config(o))); };
  auto label = [](const AccuracyRequest& q) {
    return q.pattern.kind == Pattern::Kind::dense ? q.model
                                                  : fmt::format("{} {} {:.0f} %", q.model, q.pattern.to_string(),
                                                                q.sparsity * 100);
  };
  for (const AccuracyRequest& q : reqs) {
    AccuracyRequest dq = q;
    dq.pattern = Pattern{};
    dq.sparsity = 0;
    const TrainOptions d = study_train_options(dq);
    if (!dense_queued.count(q.model) && missing(d)) {
      dense.push_back({label(dq), d});
      dense_queued.insert(q.model);
    }
    if (q.pattern.kind == Pattern::Kind::dense) continue;
    const TrainOptions o = study_train_options(q);
    if (missing(o)) pruned.push_back({label(q), o});
  }
  if (dense.size() + pruned.size() < 2) return;
  std::cerr << fmt::format("accuracy: {} checkpoint{} to train ({} dense, {} pruned), side by side first\n",
                           dense.size() + pruned.size(), dense.size() + pruned.size() == 1 ? "" : "s", dense.size(),
                           pruned.size());
  for (const auto* stage : {&dense, &pruned}) {
    const TrainJobsOutcome out = run_train_jobs(*stage, cores, 0, false);
    for (const std::string& f : out.failures) std::cerr << "accuracy: training failed (its unit will try again): " << f << "\n";
  }
}
#endif

}  // namespace

Command add_study(CLI::App& root) {
  auto* app = root.add_subcommand("study", "run a study (TOML) into DIR/results.db and write DIR/report/");
  auto o = std::make_shared<StudyCliOptions>();
  app->add_option("config", o->config, "study config (default: studies/default.toml, with --quick studies/quick.toml)");
  app->add_flag("--quick", o->quick, "the quick study (at most a few minutes)");
  app->add_option("--out", o->out, "output directory")->capture_default_str();
  app->add_flag("--resume", o->resume, "skip cells already in DIR/results.db");
  app->add_flag("--train-missing", o->train_missing,
                "train accuracy checkpoints that are not cached (overrides [accuracy] train_missing)");
  app->add_option("--shape-dir", o->shapes, "directory of shape sets (default: bench/shapes)");
  app->add_flag("--no-peers", o->no_peers, "do not time the peer libraries");
  app->add_flag("--no-verify", o->no_verify, "skip the check against the reference kernel");
  app->add_option("--skip-kernels", o->skip_kernels,
                  "comma-separated GPU implementations not to run, besides [gpu] skip_kernels (e.g. one that lost "
                  "the CUDA context)");
  app->add_option("--web-assets", o->assets, "directory with node_modules/{vega,vega-lite,vega-embed}")
      ->capture_default_str();
  return {app, [o] {
            const std::string config_path =
                !o->config.empty() ? o->config
                                   : find_source_dir(o->quick ? "studies/quick.toml" : "studies/default.toml");
            StudyConfig config = load_study_config(config_path);
            if (o->train_missing) config.accuracy.train_missing = true;
            if (!o->skip_kernels.empty()) {
              const std::vector<std::string> names = split_list(o->skip_kernels, "--skip-kernels");
              gpu::check_gpu_impl_names(names, "--skip-kernels");
              config.gpu.skip_kernels.insert(config.gpu.skip_kernels.end(), names.begin(), names.end());
            }
            std::string config_text;
            {
              std::ifstream in(config_path);
              std::stringstream ss;
              ss << in.rdbuf();
              config_text = ss.str();
            }
            std::error_code ec;
            fs::create_directories(o->out, ec);
            if (ec) fail(fmt::format("{}: cannot create the output directory: {}", o->out, ec.message()));
            const std::string db_path = (fs::path(o->out) / "results.db").string();
            if (!o->resume && fs::exists(db_path))
              fail(fmt::format("{} exists: pass --resume to continue it, or another --out", db_path));
            ResultStore store(db_path);

            RunInfo run;
            run.config = fmt::format("# {}\n{}", config_path, config_text);
            run.environment = to_json(system_info());
            run.git_revision = git_revision();
            const std::int64_t run_id = store.begin_run(run);
            std::cerr << fmt::format("study '{}' ({}) -> {} (run {})\n", config.name, config_path, db_path, run_id);

            StudyOptions opts;
            opts.shape_dir = o->shapes.empty() ? find_source_dir("bench/shapes") : o->shapes;
            opts.resume = o->resume;
            opts.peers = !o->no_peers;
            opts.verify = !o->no_verify;
            StudyHooks hooks;
            const bool tty = isatty(STDERR_FILENO);
            hooks.progress = [tty](const StudyProgress& p) {
              const int width = 24;
              const int filled = p.total ? p.done * width / p.total : width;
              const std::string line =
                  fmt::format("[{}{}] {}/{} ({} resumed) elapsed {} eta {}  {}", std::string(filled, '#'),
                              std::string(width - filled, '.'), p.done, p.total, p.skipped, duration(p.elapsed_s),
                              duration(p.eta_s), p.unit);
              if (tty)
                std::cerr << "\r\033[K" << line << (p.unit == "done" ? "\n" : "") << std::flush;
              else
                std::cerr << line << "\n";
            };
            opts.plan_cache = default_plan_cache_path();
#ifdef SB_WITH_TRAIN
            hooks.accuracy = [tty](const AccuracyRequest& q) { return study_accuracy(q, tty); };
            hooks.prepare_accuracy = study_prepare;
#endif

            StudySummary summary;
            try {
              summary = run_study(config, store, run_id, opts, hooks);
            } catch (const std::exception& e) {
              store.finish_run(run_id, fmt::format("failed: {}", e.what()));
              throw;
            }
            store.finish_run(run_id, "finished");
            for (const auto& n : summary.notes) std::cerr << "note: " << n << "\n";
            std::cerr << fmt::format("measured {} of {} units ({} resumed): kernel units {}, model units {}\n",
                                     summary.measured, summary.units, summary.skipped, duration(summary.kernel_seconds),
                                     duration(summary.model_seconds));

            const std::string report_dir = (fs::path(o->out) / "report").string();
            const auto files = write_report(store, report_dir, {o->assets});
            const ReportData data = build_report(store);
            std::cout << "\nbreak-even (lowest sparsity at which a pattern beats dense, same-run ratio)\n\n"
                      << break_even_markdown(data.break_even) << "\n";
            for (const auto& f : data.findings) std::cout << "- " << f << "\n";
            std::cout << fmt::format("\nresults: {}\nreport:  {}\n", db_path, files.front());
            return 0;
          }};
}

}  // namespace sb::cli
