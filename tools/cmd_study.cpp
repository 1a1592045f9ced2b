// sparsebench study: runs a study config into DIR/results.db and writes DIR/report/. Thin: parses
// flags, finds the config and the shapes, calls src/study and src/report, prints progress.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "commands.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/system_info.h"
#include "sparsebench/report/report.h"
#include "sparsebench/runtime/executor.h"
#include "sparsebench/study/study.h"

// SB_WITH_TRAIN (libtorch builds, see tools/CMakeLists.txt): accuracy from the trainer's checkpoint
// cache, training what is missing.
#ifdef SB_WITH_TRAIN
#include "sparsebench/core/threads.h"
#include "sparsebench/train/train.h"
#endif

namespace sb::cli {
namespace {
namespace fs = std::filesystem;

struct StudyCliOptions {
  std::string config, out = "sparsebench-results", shapes;
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
// The trainer's default cache (as `sparsebench train`): $XDG_CACHE_HOME/sparsebench/checkpoints,
// else ~/.cache/sparsebench/checkpoints.
std::string default_checkpoint_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/sparsebench/checkpoints";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/sparsebench/checkpoints";
  return ".sparsebench-cache";
}

// A study's accuracy cell: the checkpoint of this request (the trainer's defaults: magnitude
// importance, uniform allocation, seed 1; the study's schedule and lengths), loaded, or trained
// when missing and the study allows it.
AccuracyResult study_accuracy(const AccuracyRequest& q, bool tty) {
  TrainConfig c;
  c.model = q.model;
  c.pattern = q.pattern;
  c.sparsity = q.sparsity;
  c.schedule = parse_schedule(q.settings.schedule);
  c.cache_dir = q.settings.checkpoints.empty() ? default_checkpoint_dir() : q.settings.checkpoints;
  c.threads = available_cpus();
  c.recipe.epochs = q.settings.epochs;
  c.recipe.finetune_epochs = q.settings.finetune_epochs;
  c.recipe.train_subset = q.settings.train_subset;
  c.recipe.test_subset = q.settings.test_subset;
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
  app->add_option("--web-assets", o->assets, "directory with node_modules/{vega,vega-lite,vega-embed}")
      ->capture_default_str();
  return {app, [o] {
            const std::string config_path =
                !o->config.empty() ? o->config
                                   : find_source_dir(o->quick ? "studies/quick.toml" : "studies/default.toml");
            StudyConfig config = load_study_config(config_path);
            if (o->train_missing) config.accuracy.train_missing = true;
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
