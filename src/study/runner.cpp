// The study runner (see include/sparsebench/study/study.h).
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "sparsebench/bench/kernel_bench.h"
#include "sparsebench/bench/stats.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/study/study.h"

namespace sb {
namespace fs = std::filesystem;

std::vector<GemmShape> study_shapes(const StudyConfig& config, const std::string& shape_dir,
                                    std::vector<std::string>* sets) {
  std::vector<GemmShape> shapes;
  std::vector<std::string> names;
  for (const std::string& set : config.shape_sets) {
    const fs::path file = fs::path(shape_dir) / (set + ".txt");
    std::error_code ec;
    if (!fs::is_regular_file(file, ec))
      fail(fmt::format("{}: key 'kernels.shape_sets': no shape file {} for set '{}'", config.source, file.string(),
                       set));
    for (GemmShape& s : load_shape_file(file.string())) {
      shapes.push_back(std::move(s));
      names.push_back(set);
    }
  }
  for (const GemmShape& s : config.shapes) {
    shapes.push_back(s);
    names.push_back("study");
  }
  if (sets) *sets = std::move(names);
  return shapes;
}

namespace {

std::string pct(double s) { return fmt::format("{:.0f} %", s * 100); }

}  // namespace

StudySummary run_study(const StudyConfig& config, ResultStore& store, std::int64_t run_id,
                       const StudyOptions& options, const StudyHooks& hooks) {
  StudySummary summary;
  summary.run_id = run_id;

  std::vector<std::string> sets;
  const std::vector<GemmShape> shapes = study_shapes(config, options.shape_dir, &sets);
  std::vector<int> threads;
  for (int t : config.threads) {
    const int resolved = t == 0 ? available_cpus() : t;
    if (std::find(threads.begin(), threads.end(), resolved) == threads.end()) threads.push_back(resolved);
  }
  // The harness measures the dense baselines in every unit: "dense" needs no unit of its own.
  std::vector<Pattern> patterns;
  for (const Pattern& p : config.patterns)
    if (p.kind != Pattern::Kind::dense) patterns.push_back(p);

  struct Unit {
    std::size_t shape;
    Pattern pattern;
    double sparsity;
    int threads;
  };
  std::vector<Unit> units;
  if (std::find(config.devices.begin(), config.devices.end(), "cpu") != config.devices.end())
    for (std::size_t s = 0; s < shapes.size(); ++s)
      for (const Pattern& p : patterns) {
        // N:M fixes its own sparsity (1 - N/M): one unit, keyed as the harness records it, so
        // that --resume finds it and the sweep does not time the same weights three times.
        std::vector<double> sps = config.sparsities;
        if (p.kind == Pattern::Kind::nm) sps = {1.0 - static_cast<double>(p.n) / p.m};
        for (double sp : sps)
          for (int t : threads) units.push_back({s, p, sp, t});
      }
  if (std::find(config.devices.begin(), config.devices.end(), "cuda") != config.devices.end())
    summary.notes.push_back("kernel cells on cuda: not run by the study yet (use `sparsebench kernels --device "
                            "cuda`)");
  summary.units = static_cast<int>(units.size());

  const double t0 = Timer::now_seconds();
  double measured_seconds = 0;
  for (std::size_t i = 0; i < units.size(); ++i) {
    const Unit& u = units[i];
    const GemmShape& shape = shapes[u.shape];
    CellKey key;
    key.kind = "kernel";
    key.group = sets[u.shape];
    key.subject = shape.to_string();
    key.pattern = u.pattern.to_string();
    key.sparsity = u.sparsity;
    key.batch = static_cast<int>(shape.n);
    key.threads = u.threads;
    key.device = "cpu";
    key.variant = fmt::format("cache={}", cache_mode_name(CacheMode::hot));  // impl empty: any
    StudyProgress p;
    p.unit = fmt::format("{} {} {} {} {} thr", key.group, key.subject, key.pattern, pct(u.sparsity), u.threads);
    p.done = static_cast<int>(i);
    p.total = summary.units;
    p.skipped = summary.skipped;
    p.elapsed_s = Timer::now_seconds() - t0;
    if (summary.measured > 0)
      p.eta_s = measured_seconds / summary.measured * static_cast<double>(units.size() - i);
    if (options.resume && store.has_cell(key)) {
      ++summary.skipped;
      continue;
    }
    if (hooks.progress) hooks.progress(p);

    KernelBenchConfig kc;
    GemmShape named = shape;
    named.source = sets[u.shape];
    kc.shapes = {named};
    kc.patterns = {u.pattern};
    kc.sparsities = {u.sparsity};
    kc.threads = {u.threads};
    kc.peers = options.peers;
    kc.verify = options.verify;
    kc.min_reps = config.measure.min_reps;
    kc.min_seconds = config.measure.min_seconds;
    kc.warmup = config.measure.warmup;
    kc.rounds = config.measure.rounds;
    const double u0 = Timer::now_seconds();
    std::vector<KernelRecord> records = run_kernel_bench(kc);
    // A cell noisier than the threshold is measured once more (the whole unit, so that the
    // speedups stay same-run ratios); if it is still noisy its flag stays set.
    bool noisy = false;
    for (const KernelRecord& r : records)
      if (r.ok() && r.stats.cv > config.measure.cv_threshold) noisy = true;
    if (noisy) records = run_kernel_bench(kc);
    measured_seconds += Timer::now_seconds() - u0;

    std::vector<Cell> cells;
    for (const KernelRecord& r : records) {
      Cell c = to_cell(r, "cpu");
      c.key.group = sets[u.shape];  // the harness names the set after the shape's source
      c.noisy = r.ok() && r.stats.cv > config.measure.cv_threshold;
      c.extra["remeasured"] = noisy;
      cells.push_back(std::move(c));
    }
    store.add_cells(run_id, cells);
    summary.cells_written += static_cast<int>(cells.size());
    ++summary.measured;
  }

  // Model cells: only through the hook; never estimated.
  if (!config.models.empty() || !config.accuracy.models.empty()) {
    if (!hooks.run_model) {
      summary.notes.push_back(fmt::format(
          "model cells ({} latency model{}, {} accuracy model{}): not measured; they need the runtime's benchmark "
          "API (M3) and trained checkpoints (M4)",
          config.models.size(), config.models.size() == 1 ? "" : "s", config.accuracy.models.size(),
          config.accuracy.models.size() == 1 ? "" : "s"));
    } else {
      std::vector<std::string> models = config.models;
      for (const auto& m : config.accuracy.models)
        if (std::find(models.begin(), models.end(), m) == models.end()) models.push_back(m);
      for (const std::string& m : models)
        for (const Pattern& pat : patterns)
          for (double sp : config.sparsities)
            for (int b : config.batches)
              for (int t : threads)
                for (const std::string& dev : config.devices) {
                  CellKey key{"model", "", m, pat.to_string(), sp, b, t, dev, "", ""};
                  if (options.resume && store.has_cell(key)) continue;
                  ModelCellRequest req{m, pat, sp, b, t, dev, config.measure,
                                       std::find(config.accuracy.models.begin(), config.accuracy.models.end(),
                                                 m) != config.accuracy.models.end()};
                  if (hooks.progress) {
                    StudyProgress p;
                    p.unit = fmt::format("{} {} {} batch {} {} thr {}", m, key.pattern, pct(sp), b, t, dev);
                    p.done = summary.units;
                    p.total = summary.units;
                    hooks.progress(p);
                  }
                  const std::vector<Cell> cells = hooks.run_model(req);
                  store.add_cells(run_id, cells);
                  summary.cells_written += static_cast<int>(cells.size());
                }
    }
  }
  if (hooks.progress) {
    StudyProgress p;
    p.unit = "done";
    p.done = p.total = summary.units;
    p.skipped = summary.skipped;
    p.elapsed_s = Timer::now_seconds() - t0;
    p.eta_s = 0;
    hooks.progress(p);
  }
  return summary;
}

}  // namespace sb
