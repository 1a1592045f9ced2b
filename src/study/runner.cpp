// The study runner (see include/sparsebench/study/study.h).
#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "sparsebench/bench/gpu_model_bench.h"
#include "sparsebench/bench/kernel_bench.h"
#include "sparsebench/bench/stats.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/kernels/cuda_spmm.h"
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

std::vector<int> resolve_threads(const std::vector<int>& in) {
  std::vector<int> out;
  for (int t : in) {
    const int resolved = t == 0 ? available_cpus() : t;
    if (std::find(out.begin(), out.end(), resolved) == out.end()) out.push_back(resolved);
  }
  return out;
}

// The formats the pruned model's weight layers are stored in ("csr", "bsr+csr"), most bytes first.
std::string sparse_formats(const ModelBenchResult& r) {
  std::map<std::string, std::size_t> bytes;
  for (const ModelBenchLayer& l : r.layers)
    if (l.sparsity > 0 && l.format != "-") bytes[l.format] += l.weight_bytes;
  std::vector<std::pair<std::size_t, std::string>> v;
  for (const auto& [f, b] : bytes) v.emplace_back(b, f);
  std::sort(v.rbegin(), v.rend());
  std::string out;
  for (const auto& [b, f] : v) out += (out.empty() ? "" : "+") + f;
  return out.empty() ? "dense" : out;
}

Cell model_cell(const CellKey& key, const ModelBenchResult& r, const ModelBenchSide& side, bool sparse) {
  Cell c;
  c.key = key;
  c.key.impl = sparse ? "sb_executor:" + r.kernel : "sb_executor:dense";
  c.status = "ok";
  c.role = sparse ? "ours" : "baseline";
  c.format = sparse ? sparse_formats(r) : "dense";
  c.achieved_sparsity = sparse ? r.achieved_sparsity : 0;
  set_timing(c, side.stats);
  c.throughput = side.throughput;
  c.throughput_unit = "samples/s";
  c.speedup = sparse ? r.speedup : 1.0;
  c.baseline = "sb_executor:dense";
  c.weight_bytes = static_cast<std::int64_t>(side.weight_bytes);
  c.weight_value_bytes = static_cast<std::int64_t>(side.weight_split.values);
  c.weight_index_bytes = static_cast<std::int64_t>(side.weight_split.indices + side.weight_split.pointers);
  c.weight_meta_bytes = static_cast<std::int64_t>(side.weight_split.metadata);
  if (r.peak_rss_bytes) c.peak_rss_bytes = static_cast<std::int64_t>(*r.peak_rss_bytes);
  c.energy_j = side.energy_j;
  c.energy_note = side.energy_j ? r.energy_note : r.energy_note.rfind("unavailable", 0) == 0
                                                      ? r.energy_note
                                                      : "unavailable: " + r.energy_note;
  c.extra = {{"arena_bytes", side.arena_bytes},
             {"weight_pointer_bytes", side.weight_split.pointers},
             {"weight_bytes_dense_f32", r.weight_bytes_dense_f32},
             {"params", sparse ? r.params_pruned : r.params_dense},
             {"remeasured", r.remeasured},
             {"peak_rss_scope", r.peak_rss_cell_scope ? "cell (dense and pruned models)" : "process"},
             {"allocation", r.allocation},
             {"model_signature", r.model_signature},
             {"seconds", r.seconds}};
  if (r.parallel.probes > 0) {
    // Measured while the host had moved the CPUs apart: the same-run ratio is untrustworthy
    // without the samples looking noisy (parallel_probe.h). Flagged noisy, with what was seen.
    c.extra["core_to_core_ns"] = {{"probes", r.parallel.probes},
                                  {"median", r.parallel.median_ns},
                                  {"max", r.parallel.max_ns},
                                  {"best_seen", r.parallel.reference_ns},
                                  {"waited_s", r.waited_s},
                                  {"measurements", r.measurements}};
    c.extra["disturbed"] = r.disturbed;
    c.noisy = c.noisy || r.disturbed;
  }
  if (sparse) {
    // The per-layer breakdown, compact: where the time goes and which kernel each layer got.
    nlohmann::json layers = nlohmann::json::array();
    for (const ModelBenchLayer& l : r.layers)
      if (l.op == "conv2d" || l.op == "linear" || l.ms > 0.01)
        layers.push_back({{"name", l.name}, {"op", l.op}, {"kernel", l.kernel}, {"format", l.format},
                          {"sparsity", l.sparsity}, {"ms", l.ms}, {"dense_ms", l.dense_ms},
                          {"dense_kernel", l.dense_kernel}, {"weight_bytes", l.weight_bytes},
                          {"implicit_im2col", l.implicit_im2col}});
    c.extra["layers"] = std::move(layers);
  }
  return c;
}

// A GPU kernel record as a cell: the CPU fields plus dtype (in the variant), the cuSPARSE ratio and
// NVML energy when measured.
Cell gpu_kernel_cell(const gpu::GpuKernelRecord& g, const std::string& cache) {
  Cell c = to_cell(g.base, "cuda");
  c.key.threads = 0;
  c.key.variant = fmt::format("cache={},dtype={}", cache, g.dtype);
  c.extra["dtype"] = g.dtype;
  c.extra["note"] = g.note;
  c.extra["gpu_mem_bytes"] = g.gpu_mem_bytes;
  c.extra["speedup_vs_cusparse"] = g.speedup_vs_cusparse;
  if (g.energy_status == "ok") {
    c.energy_j = g.energy_mj_per_call * 1e-3;
    c.energy_note = "NVML total energy over >= 1 s of back-to-back calls";
    c.extra["avg_power_w"] = g.avg_power_w;
  } else {
    c.energy_note = g.energy_status.rfind("unavailable", 0) == 0 ? g.energy_status : "unavailable: not measured";
  }
  return c;
}

Cell gpu_model_cell(const CellKey& key, const GpuModelBenchResult& r, bool sparse) {
  const GpuModelBenchSide& side = sparse ? r.sparse : r.dense;
  Cell c;
  c.key = key;
  c.key.impl = sparse ? "gpu_layers:auto" : "gpu_layers:cublas";
  c.status = "ok";
  c.role = sparse ? "ours" : "baseline";
  std::map<std::string, std::size_t> fmt_bytes;
  for (const GpuModelBenchLayer& l : r.layers)
    if (sparse && l.sparsity > 0) fmt_bytes[l.format] += l.sparse_bytes;
  std::string formats;
  for (const auto& [f, b] : fmt_bytes) formats += (formats.empty() ? "" : "+") + f;
  c.format = formats.empty() ? "dense" : formats;
  c.achieved_sparsity = sparse ? r.achieved_sparsity : 0;
  set_timing(c, side.stats);
  c.throughput = side.throughput;
  c.throughput_unit = "samples/s";
  c.speedup = sparse ? r.speedup : 1.0;
  c.baseline = "gpu_layers:cublas";
  c.weight_bytes = static_cast<std::int64_t>(side.weight_bytes);
  c.energy_j = side.energy_j;
  c.energy_note = side.energy_j ? r.energy_note
                                : (r.energy_note.rfind("unavailable", 0) == 0 ? r.energy_note
                                                                              : "unavailable: " + r.energy_note);
  c.extra = {{"gpu", r.device},
             {"dtype", r.dtype},
             {"scope", "conv/linear layers as GEMMs (docs/GPU.md)"},
             {"covered_flops", r.covered_flops},
             {"total_flops", r.total_flops},
             {"workspace_bytes", side.workspace_bytes},
             {"excluded", r.excluded},
             {"dense_side", r.dense_baseline},
             {"model_signature", r.model_signature},
             {"seconds", r.seconds},
             // The same pass with the layers back to back in one CUDA graph (no per-call floor).
             {"graph_pass", {{"median_ms", side.graph.median_ms}, {"p10_ms", side.graph.p10_ms},
                             {"p90_ms", side.graph.p90_ms}, {"noisy", side.graph.noisy},
                             {"speedup", sparse ? r.graph_speedup : 1.0}, {"how", r.graph_note}}}};
  if (sparse) {
    nlohmann::json layers = nlohmann::json::array();
    for (const GpuModelBenchLayer& l : r.layers)
      layers.push_back({{"name", l.name}, {"op", l.op}, {"kernel", l.sparse_impl}, {"format", l.format},
                        {"sparsity", l.sparsity}, {"ms", l.sparse_ms}, {"dense_ms", l.dense_ms},
                        {"dense_kernel", l.dense_impl}, {"weight_bytes", l.sparse_bytes}});
    c.extra["layers"] = std::move(layers);
  }
  return c;
}

// The row a unit leaves when it cannot run (a kernel refusing a layer, a GPU error): one failing
// unit must not end the study.
Cell failed_cell(const CellKey& key, const std::string& impl, const std::exception& e) {
  Cell c;
  c.key = key;
  c.key.impl = impl;
  c.status = fmt::format("failed: {}", e.what());
  c.role = "ours";
  c.energy_note = "unavailable: not measured";
  return c;
}

// Accuracy is the model's (our f32 runtime on the test set, libtorch beside it), the same on every
// device: the dense row gets the pretrained model's, the sparse row the pruned checkpoint's.
void attach_accuracy(Cell& dense, Cell& sparse, const std::optional<AccuracyResult>& dense_acc,
                     const std::optional<AccuracyResult>& acc) {
  if (dense_acc) {
    dense.accuracy = dense_acc->accuracy;
    dense.accuracy_metric = "top1";
    dense.extra["checkpoint"] = dense_acc->checkpoint;
  }
  if (acc) {
    sparse.accuracy = acc->accuracy;
    sparse.accuracy_metric = "top1";
    sparse.extra["accuracy_torch"] = acc->accuracy_torch;
    sparse.extra["checkpoint"] = acc->checkpoint;
    sparse.extra["recipe"] = acc->recipe;
    if (!acc->schedule.empty()) sparse.extra["schedule"] = acc->schedule;
    if (!dense.accuracy && acc->dense_accuracy >= 0) {
      dense.accuracy = acc->dense_accuracy;
      dense.accuracy_metric = "top1 (libtorch)";
    }
  }
}

}  // namespace

StudySummary run_study(const StudyConfig& config, ResultStore& store, std::int64_t run_id,
                       const StudyOptions& options, const StudyHooks& hooks) {
  StudySummary summary;
  summary.run_id = run_id;

  std::vector<std::string> sets;
  const std::vector<GemmShape> shapes = study_shapes(config, options.shape_dir, &sets);
  const std::vector<int> threads = resolve_threads(config.threads);
  // The harness measures the dense baselines in every unit: "dense" needs no unit of its own.
  std::vector<Pattern> patterns;
  for (const Pattern& p : config.patterns)
    if (p.kind != Pattern::Kind::dense) patterns.push_back(p);
  // N:M fixes its own sparsity (1 - N/M): one unit, keyed as the harness records it, so that
  // --resume finds it and the sweep does not time the same weights three times.
  auto sparsities_of = [&](const Pattern& p) {
    return p.kind == Pattern::Kind::nm ? std::vector<double>{1.0 - static_cast<double>(p.n) / p.m}
                                       : config.sparsities;
  };
  const bool cpu = std::find(config.devices.begin(), config.devices.end(), "cpu") != config.devices.end();

  struct Unit {
    bool model = false;
    std::size_t shape = 0;  // kernel
    std::string name;       // model
    Pattern pattern;
    double sparsity = 0;
    int batch = 1, threads = 1;
    std::string dtype;  // cuda units
    CellKey key;
  };
  std::vector<Unit> units;
  if (cpu)
    for (std::size_t s = 0; s < shapes.size(); ++s)
      for (const Pattern& p : patterns)
        for (double sp : sparsities_of(p))
          for (int t : threads) {
            Unit u;
            u.shape = s;
            u.pattern = p;
            u.sparsity = sp;
            u.threads = t;
            u.batch = static_cast<int>(shapes[s].n);
            u.key.kind = "kernel";
            u.key.group = sets[s];
            u.key.subject = shapes[s].to_string();
            u.key.pattern = p.to_string();
            u.key.sparsity = sp;
            u.key.batch = u.batch;
            u.key.threads = t;
            u.key.device = "cpu";
            u.key.variant = fmt::format("cache={}", cache_mode_name(CacheMode::hot));  // impl empty: any
            units.push_back(std::move(u));
          }
  std::vector<std::string> models = config.models;
  for (const auto& m : config.accuracy.models)
    if (std::find(models.begin(), models.end(), m) == models.end()) models.push_back(m);
  // [latency] batches / threads apply to the [latency] models (full-size models cannot afford
  // every combination); the small [accuracy]-only models use the [sweep] lists.
  auto is_latency = [&](const std::string& m) {
    return std::find(config.models.begin(), config.models.end(), m) != config.models.end();
  };
  if (cpu)
    for (const std::string& m : models)
      for (const Pattern& p : patterns)
        for (double sp : sparsities_of(p))
          for (int b : is_latency(m) && !config.model_batches.empty() ? config.model_batches : config.batches)
            for (int t : resolve_threads(is_latency(m) && !config.model_threads.empty() ? config.model_threads
                                                                                        : config.threads)) {
              Unit u;
              u.model = true;
              u.name = m;
              u.pattern = p;
              u.sparsity = sp;
              u.batch = b;
              u.threads = t;
              u.key = {"model", "", m, p.to_string(), sp, b, t, "cpu", "", "allocation=uniform"};
              units.push_back(std::move(u));
              ++summary.model_units;
            }
  // Cells on the GPU: the kernel shapes per dtype (every GPU implementation, one unit per shape,
  // pattern, sparsity and dtype) and the models' conv / linear layers per batch and dtype.
  if (std::find(config.devices.begin(), config.devices.end(), "cuda") != config.devices.end()) {
    const std::string why = gpu::gpu_unavailable_reason();
    if (!why.empty()) {
      summary.notes.push_back(fmt::format("cells on cuda: not measured: {} (run the study again with --resume on a "
                                          "machine with an NVIDIA GPU to add them)",
                                          why));
    } else {
      for (const std::string& dt : config.gpu.dtypes) {
        for (std::size_t s = 0; s < shapes.size(); ++s)
          for (const Pattern& p : patterns)
            for (double sp : sparsities_of(p)) {
              Unit u;
              u.shape = s;
              u.pattern = p;
              u.sparsity = sp;
              u.threads = 0;
              u.dtype = dt;
              u.batch = static_cast<int>(shapes[s].n);
              u.key = {"kernel", sets[s], shapes[s].to_string(), p.to_string(), sp, u.batch, 0, "cuda", "",
                       fmt::format("cache={},dtype={}", config.gpu.cache, dt)};
              units.push_back(std::move(u));
            }
        if (dt == "i8") continue;  // whole models run in float types
        for (const std::string& m : models)
          for (const Pattern& p : patterns)
            for (double sp : sparsities_of(p))
              for (int b : is_latency(m) && !config.model_batches.empty() ? config.model_batches : config.batches) {
                Unit u;
                u.model = true;
                u.name = m;
                u.pattern = p;
                u.sparsity = sp;
                u.batch = b;
                u.threads = 0;
                u.dtype = dt;
                u.key = {"model", "", m, p.to_string(), sp, b, 0, "cuda", "",
                         fmt::format("allocation=uniform,cache={},dtype={}", config.gpu.cache, dt)};
                units.push_back(std::move(u));
                ++summary.model_units;
              }
      }
    }
  }
  summary.units = static_cast<int>(units.size());

  // A resumed study must not mix measurements of two definitions of one model (the zoo changes
  // between versions; an ONNX file may be replaced): every stored model cell carries the model's
  // Graph::signature, and a stored signature that differs from this build's model stops the study
  // before it measures anything. Cells written before signatures existed carry none.
  if (options.resume) {
    std::map<std::string, std::set<std::string>> stored;
    for (const Cell& c : store.cells())
      if (c.key.kind == "model" && c.extra.contains("model_signature") && c.extra["model_signature"].is_string())
        stored[c.key.subject].insert(c.extra["model_signature"].get<std::string>());
    std::set<std::string> checked;
    for (const Unit& u : units) {
      if (!u.model || !stored.count(u.name) || !checked.insert(u.name).second) continue;
      const std::string now = build_model(u.name, ModelOptions{}).signature();
      for (const std::string& old : stored[u.name])
        SB_CHECK(old == now,
                 "{}: its results for model '{}' were measured on another definition of that model (signature {}, "
                 "this build's {}): resume into a new --out directory, or remove the old one",
                 store.path(), u.name, old, now);
    }
  }

  auto is_accuracy_model = [&](const std::string& m) {
    return std::find(config.accuracy.models.begin(), config.accuracy.models.end(), m) != config.accuracy.models.end();
  };
  // One accuracy figure per (model, pattern, sparsity); a dense model has no sparsity.
  using AccKey = std::tuple<std::string, std::string, double>;
  auto acc_key = [](const std::string& m, const Pattern& p, double sp) {
    return AccKey{m, p.to_string(), p.kind == Pattern::Kind::dense ? 0.0 : sp};
  };
  if (hooks.accuracy && hooks.prepare_accuracy) {
    std::vector<AccuracyRequest> wanted;
    std::set<AccKey> seen;
    auto want = [&](const std::string& m, const Pattern& p, double sp) {
      const AccKey k = acc_key(m, p, sp);
      if (seen.insert(k).second) wanted.push_back(AccuracyRequest{m, p, std::get<2>(k), config.accuracy});
    };
    for (const Unit& u : units) {
      if (!u.model || !is_accuracy_model(u.name) || (options.resume && store.has_cell(u.key))) continue;
      want(u.name, Pattern{}, 0);
      want(u.name, u.pattern, u.sparsity);
    }
    if (!wanted.empty()) {
      try {
        hooks.prepare_accuracy(wanted);
      } catch (const std::exception& e) {
        summary.notes.push_back(
            fmt::format("accuracy: training the missing checkpoints side by side failed ({}); the units trained "
                        "what they missed one at a time",
                        e.what()));
      }
    }
  }

  // Accuracy: once per (model, pattern, sparsity), shared by that model's cells of every batch and
  // thread count; the dense model's figure goes to the dense rows.
  std::map<AccKey, AccuracyResult> acc_cache;
  int acc_missing = 0, acc_failed = 0;
  std::string acc_first_problem;
  auto accuracy_of = [&](const std::string& m, const Pattern& p, double sp) -> std::optional<AccuracyResult> {
    if (!is_accuracy_model(m) || !hooks.accuracy) return std::nullopt;
    const AccKey k = acc_key(m, p, sp);
    auto it = acc_cache.find(k);
    if (it == acc_cache.end()) {
      AccuracyRequest req{m, p, std::get<2>(k), config.accuracy};
      AccuracyResult r;
      try {
        r = hooks.accuracy(req);
      } catch (const std::exception& e) {
        r.status = fmt::format("failed: {}", e.what());
      }
      if (r.status.rfind("skipped", 0) == 0) ++acc_missing;
      if (r.status.rfind("failed", 0) == 0) ++acc_failed;
      if (r.status != "ok" && acc_first_problem.empty())
        acc_first_problem = fmt::format("{} {} {}: {}", m, p.to_string(), pct(sp), r.status);
      it = acc_cache.emplace(k, r).first;
    }
    if (it->second.status != "ok") return std::nullopt;
    return it->second;
  };

  const double t0 = Timer::now_seconds();
  double seconds[2] = {0, 0};  // measuring time: kernel units, model units
  int measured[2] = {0, 0};
  int remaining[2] = {static_cast<int>(units.size()) - summary.model_units, summary.model_units};
  for (std::size_t i = 0; i < units.size(); ++i) {
    const Unit& u = units[i];
    const int kind = u.model ? 1 : 0;
    StudyProgress p;
    const std::string where = u.key.device == "cuda" ? "cuda " + u.dtype : fmt::format("{} thr", u.threads);
    p.unit = u.model ? fmt::format("model {} {} {} batch {} {}", u.name, u.key.pattern, pct(u.sparsity), u.batch, where)
                     : fmt::format("{} {} {} {} {}", u.key.group, u.key.subject, u.key.pattern, pct(u.sparsity), where);
    p.done = static_cast<int>(i);
    p.total = summary.units;
    p.skipped = summary.skipped;
    p.elapsed_s = Timer::now_seconds() - t0;
    // ETA by kind: a model cell costs seconds, a kernel cell a fraction of one.
    if (measured[0] + measured[1] > 0) {
      const double all = (seconds[0] + seconds[1]) / (measured[0] + measured[1]);
      double eta = 0;
      for (int k = 0; k < 2; ++k) eta += remaining[k] * (measured[k] ? seconds[k] / measured[k] : all);
      p.eta_s = eta;
    }
    --remaining[kind];
    if (options.resume && store.has_cell(u.key)) {
      ++summary.skipped;
      continue;
    }
    if (hooks.progress) hooks.progress(p);
    const double u0 = Timer::now_seconds();

    std::vector<Cell> cells;
    std::string lost_by;  // where an implementation lost the CUDA context: which, and how
    if (u.key.device == "cuda" && !u.model) {
      GemmShape named = shapes[u.shape];
      named.source = sets[u.shape];
      KernelBenchConfig kc;
      kc.shapes = {named};
      kc.patterns = {u.pattern};
      kc.sparsities = {u.sparsity};
      kc.peers = options.peers;
      kc.verify = options.verify;
      kc.cache = parse_cache_mode(config.gpu.cache);
      kc.min_reps = std::max(config.measure.min_reps, 20);
      kc.min_seconds = std::min(config.measure.min_seconds, 0.05);
      kc.warmup = std::max(config.measure.warmup, 3);
      gpu::GpuBenchOptions go;
      go.dtypes = {gpu::parse_gpu_dtype(u.dtype)};
      go.skip = config.gpu.skip_kernels;
      try {
        gpu::GpuContextLoss loss;
        const std::vector<gpu::GpuKernelRecord> records = gpu::run_gpu_kernel_bench(kc, go, &loss);
        lost_by = loss.what;
        for (const gpu::GpuKernelRecord& g : records) {
          Cell c = gpu_kernel_cell(g, config.gpu.cache);
          c.key.group = sets[u.shape];
          c.noisy = g.base.ok() && g.base.stats.cv > config.measure.cv_threshold;
          cells.push_back(std::move(c));
        }
      } catch (const std::exception& e) {
        cells.push_back(failed_cell(u.key, "gpu", e));
        summary.notes.push_back(fmt::format("{}: {}", p.unit, cells.back().status));
      }
    } else if (!u.model) {
      const GemmShape& shape = shapes[u.shape];
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
      std::vector<KernelRecord> records = run_kernel_bench(kc);
      // A cell noisier than the threshold is measured once more (the whole unit, so that the
      // speedups stay same-run ratios); if it is still noisy its flag stays set.
      bool noisy = false;
      for (const KernelRecord& r : records)
        if (r.ok() && r.stats.cv > config.measure.cv_threshold) noisy = true;
      if (noisy) records = run_kernel_bench(kc);
      for (const KernelRecord& r : records) {
        Cell c = to_cell(r, "cpu");
        c.key.group = sets[u.shape];  // the harness names the set after the shape's source
        c.noisy = r.ok() && r.stats.cv > config.measure.cv_threshold;
        c.extra["remeasured"] = noisy;
        cells.push_back(std::move(c));
      }
    } else {
      // Accuracy first (it may train, with its own progress), then the timing.
      const std::optional<AccuracyResult> acc = accuracy_of(u.name, u.pattern, u.sparsity);
      const std::optional<AccuracyResult> dense_acc = accuracy_of(u.name, Pattern{}, 0);
      const bool gpu = u.key.device == "cuda";
      ModelSpec spec;
      spec.model = u.name;
      spec.pattern = u.pattern;
      spec.sparsity = u.sparsity;
      spec.batch = u.batch;
      try {
        std::pair<Cell, Cell> rows;
        if (gpu) {
          GpuModelBenchConfig gc;
          static_cast<ModelSpec&>(gc) = spec;
          gc.dtype = u.dtype;
          gc.skip = config.gpu.skip_kernels;
          // stream: the per-layer calls as in cold; the pass as one CUDA graph is recorded either way.
          gc.flush_l2 = config.gpu.cache != "hot";
          gc.verify = options.verify;
          gc.min_reps = std::max(config.measure.min_reps, 20);
          gc.min_seconds = 0;  // reps only: every call pays an L2 flush the kernel time does not count
          gc.warmup = std::max(config.measure.warmup, 3);
          const GpuModelBenchResult r = run_gpu_model_bench(gc);
          rows = {gpu_model_cell(u.key, r, false), gpu_model_cell(u.key, r, true)};
        } else {
          ModelBenchConfig mc;
          static_cast<ModelSpec&>(mc) = spec;
          mc.threads = u.threads;
          mc.kernel = "auto";
          mc.plan_cache = options.plan_cache;
          mc.min_reps = config.model_min_reps > 0 && is_latency(u.name) ? config.model_min_reps : config.measure.min_reps;
          mc.min_seconds = config.measure.min_seconds;
          mc.warmup = config.measure.warmup;
          mc.rounds = config.model_rounds > 0 && is_latency(u.name) ? config.model_rounds : config.measure.rounds;
          mc.cv_threshold = config.measure.cv_threshold;
          mc.profile_runs = 1;  // the per-layer table is a guide; the latency above is the measurement
          const ModelBenchResult r = hooks.model_bench ? hooks.model_bench(mc) : run_model_bench(mc);
          rows = {model_cell(u.key, r, r.dense, false), model_cell(u.key, r, r.sparse, true)};
        }
        attach_accuracy(rows.first, rows.second, dense_acc, acc);
        cells.push_back(std::move(rows.first));
        cells.push_back(std::move(rows.second));
      } catch (const std::exception& e) {
        cells.push_back(failed_cell(u.key, gpu ? "gpu_layers:auto" : "sb_executor:auto", e));
        if (gpu) lost_by = e.what();
        summary.notes.push_back(fmt::format("{}: {}", p.unit, cells.back().status));
      }
    }
    store.add_cells(run_id, cells);
    summary.cells_written += static_cast<int>(cells.size());
    ++summary.measured;
    seconds[kind] += Timer::now_seconds() - u0;
    ++measured[kind];
    // A kernel that lost the CUDA context (a sticky error) fails every later CUDA call of this
    // process: stop, rather than write every later GPU unit as failed. This unit's cells are stored
    // (they say what failed), so a rerun resumes after it.
    if (u.key.device == "cuda")
      if (const std::string lost = gpu::gpu_context_lost(); !lost.empty())
        fail(fmt::format("study: unit {} lost the CUDA context ({}); its cells and those of the {} units measured before "
                         "it are in the database; run the study again to resume after it, with the kernel in "
                         "--skip-kernels or [gpu] skip_kernels",
                         p.unit, lost_by.empty() ? lost : lost_by, summary.measured - 1));
  }
  summary.kernel_seconds = seconds[0];
  summary.model_seconds = seconds[1];

  if (!config.accuracy.models.empty()) {
    if (!hooks.accuracy)
      summary.notes.push_back(fmt::format(
          "accuracy ({} model{}): not measured: this build has no libtorch (the trainer's checkpoints need it; "
          "cmake -DSB_TORCH=ON)",
          config.accuracy.models.size(), config.accuracy.models.size() == 1 ? "" : "s"));
    if (acc_missing > 0)
      summary.notes.push_back(fmt::format(
          "accuracy: {} (model, pattern, sparsity) checkpoint{} not cached and [accuracy] train_missing = false: "
          "no accuracy for {} (e.g. {}); `sparsebench train` or train_missing = true fills the cache",
          acc_missing, acc_missing == 1 ? "" : "s", acc_missing == 1 ? "it" : "them", acc_first_problem));
    if (acc_failed > 0)
      summary.notes.push_back(fmt::format("accuracy: {} failed (first: {})", acc_failed, acc_first_problem));
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
