// The study config reader (see include/sparsebench/study/config.h).
#include "sparsebench/study/config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "sparsebench/core/error.h"
#include "sparsebench/kernels/cuda_spmm.h"
#include "sparsebench/models/zoo.h"

namespace sb {
namespace {

// Every error names where: the file, the line and column toml++ recorded, and the dotted key.
[[noreturn]] void fail_at(const std::string& source, const toml::source_region& where, const std::string& key,
                          const std::string& what) {
  if (where.begin.line > 0)
    fail(fmt::format("{}:{}:{}: key '{}': {}", source, where.begin.line, where.begin.column, key, what));
  fail(fmt::format("{}: key '{}': {}", source, key, what));
}

class Reader {
 public:
  Reader(const toml::table& root, std::string source) : root_(root), source_(std::move(source)) {}

  // Rejects any key of `table` (at `prefix`) not in `allowed`.
  void only(const toml::table& table, const std::string& prefix, const std::set<std::string>& allowed) {
    for (const auto& [k, v] : table) {
      const std::string name(k.str());
      if (!allowed.count(name)) {
        const std::string full = prefix.empty() ? name : prefix + "." + name;
        fail_at(source_, k.source().begin.line ? k.source() : v.source(), full,
                fmt::format("unknown key (expected one of: {})", fmt::join(allowed, ", ")));
      }
    }
  }

  const toml::table* section(const std::string& name) {
    const toml::node* n = root_.get(name);
    if (!n) return nullptr;
    if (!n->is_table()) fail_at(source_, n->source(), name, "expected a table ([" + name + "])");
    return n->as_table();
  }

  template <class T>
  std::vector<T> list(const toml::table* t, const std::string& sec, const std::string& key) {
    std::vector<T> out;
    if (!t) return out;
    const toml::node* n = t->get(key);
    if (!n) return out;
    const std::string full = sec + "." + key;
    const toml::array* a = n->as_array();
    if (!a) fail_at(source_, n->source(), full, "expected an array");
    for (const toml::node& e : *a) out.push_back(value<T>(e, full));
    return out;
  }

  template <class T>
  T scalar(const toml::table* t, const std::string& sec, const std::string& key, T fallback) {
    if (!t) return fallback;
    const toml::node* n = t->get(key);
    if (!n) return fallback;
    return value<T>(*n, sec + "." + key);
  }

  template <class T>
  T value(const toml::node& n, const std::string& full) {
    if constexpr (std::is_same_v<T, std::string>) {
      if (auto v = n.value_exact<std::string>()) return *v;
      fail_at(source_, n.source(), full, fmt::format("expected a string, got {}", type_name(n)));
    } else if constexpr (std::is_same_v<T, bool>) {
      if (auto v = n.value_exact<bool>()) return *v;
      fail_at(source_, n.source(), full, fmt::format("expected true or false, got {}", type_name(n)));
    } else if constexpr (std::is_integral_v<T>) {
      if (auto v = n.value_exact<std::int64_t>()) return static_cast<T>(*v);
      fail_at(source_, n.source(), full, fmt::format("expected an integer, got {}", type_name(n)));
    } else {
      if (n.is_number()) return static_cast<T>(*n.value<double>());
      fail_at(source_, n.source(), full, fmt::format("expected a number, got {}", type_name(n)));
    }
  }

  // The node of `sec.key[index]` (or `sec.key` when index < 0), for positions of range errors.
  const toml::node& node(const toml::table* t, const std::string& key, int index = -1) {
    const toml::node* n = t->get(key);
    if (index >= 0 && n->is_array()) return *n->as_array()->get(static_cast<std::size_t>(index));
    return *n;
  }

  const std::string& source() const { return source_; }

 private:
  static std::string type_name(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::string: return "a string";
      case toml::node_type::integer: return "an integer";
      case toml::node_type::floating_point: return "a float";
      case toml::node_type::boolean: return "a boolean";
      case toml::node_type::array: return "an array";
      case toml::node_type::table: return "a table";
      default: return "a date/time";
    }
  }
  const toml::table& root_;
  std::string source_;
};

}  // namespace

StudyConfig parse_study_config(const std::string& text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    fail(fmt::format("{}:{}:{}: TOML syntax error: {}", source, e.source().begin.line, e.source().begin.column,
                     e.description()));
  }
  Reader r(root, source);
  r.only(root, "", {"study", "latency", "kernels", "sweep", "measure", "accuracy", "gpu"});

  StudyConfig c;
  c.source = source;

  const toml::table* study = r.section("study");
  if (study) r.only(*study, "study", {"name", "description"});
  c.name = r.scalar<std::string>(study, "study", "name", "study");

  const toml::table* latency = r.section("latency");
  if (latency) r.only(*latency, "latency", {"models", "batches", "threads", "min_reps", "rounds"});
  c.models = r.list<std::string>(latency, "latency", "models");
  c.model_batches = r.list<int>(latency, "latency", "batches");
  for (std::size_t i = 0; i < c.model_batches.size(); ++i)
    if (c.model_batches[i] < 1)
      fail_at(source, r.node(latency, "batches", static_cast<int>(i)).source(), "latency.batches",
              fmt::format("{} is not a batch size (expected an integer >= 1)", c.model_batches[i]));
  c.model_threads = r.list<int>(latency, "latency", "threads");
  for (std::size_t i = 0; i < c.model_threads.size(); ++i)
    if (c.model_threads[i] < 0)
      fail_at(source, r.node(latency, "threads", static_cast<int>(i)).source(), "latency.threads",
              fmt::format("{} is not a thread count (expected an integer >= 0; 0 = all cores)", c.model_threads[i]));
  c.model_min_reps = r.scalar<int>(latency, "latency", "min_reps", 0);
  if (latency && c.model_min_reps < 0)
    fail_at(source, r.node(latency, "min_reps").source(), "latency.min_reps",
            fmt::format("{} (expected an integer >= 1; 0 = [measure] min_reps)", c.model_min_reps));
  c.model_rounds = r.scalar<int>(latency, "latency", "rounds", 0);
  if (latency && c.model_rounds < 0)
    fail_at(source, r.node(latency, "rounds").source(), "latency.rounds",
            fmt::format("{} (expected an integer >= 1; 0 = [measure] rounds)", c.model_rounds));
  const std::vector<std::string> known = model_names();
  for (std::size_t i = 0; i < c.models.size(); ++i) {
    std::string& m = c.models[i];
    if (m.size() > 5 && m.ends_with(".onnx")) {
      // An ONNX file (M6): relative to the config file's directory, else to the working directory.
      namespace fs = std::filesystem;
      std::error_code ec;
      const fs::path beside = fs::path(source).parent_path() / m;
      if (fs::path(m).is_relative() && fs::is_regular_file(beside, ec)) m = beside.string();
      if (!fs::is_regular_file(m, ec))
        fail_at(source, r.node(latency, "models", static_cast<int>(i)).source(), "latency.models",
                fmt::format("ONNX model '{}': no such file (relative paths are taken from the config's directory "
                            "or the working directory)",
                            m));
      continue;
    }
    if (std::find(known.begin(), known.end(), m) == known.end())
      fail_at(source, r.node(latency, "models", static_cast<int>(i)).source(), "latency.models",
              fmt::format("unknown model '{}' (known: {}, or a path ending in .onnx)", m, fmt::join(known, ", ")));
  }

  const toml::table* kernels = r.section("kernels");
  if (kernels) r.only(*kernels, "kernels", {"shape_sets", "shapes"});
  c.shape_sets = r.list<std::string>(kernels, "kernels", "shape_sets");
  for (std::size_t i = 0; i < c.shape_sets.size(); ++i) {
    const std::string& s = c.shape_sets[i];
    if (s.empty() || s.find_first_of("/\\.") != std::string::npos)
      fail_at(source, r.node(kernels, "shape_sets", static_cast<int>(i)).source(), "kernels.shape_sets",
              fmt::format("'{}' is not a shape set name (expected the stem of a bench/shapes/*.txt file)", s));
  }
  const auto shape_texts = r.list<std::string>(kernels, "kernels", "shapes");
  for (std::size_t i = 0; i < shape_texts.size(); ++i) {
    try {
      c.shapes.push_back(parse_shape(shape_texts[i]));
    } catch (const Error& e) {
      fail_at(source, r.node(kernels, "shapes", static_cast<int>(i)).source(), "kernels.shapes", e.what());
    }
  }

  const toml::table* sweep = r.section("sweep");
  if (!sweep) fail(fmt::format("{}: missing section [sweep] (patterns, sparsities, batches, threads, devices)", source));
  r.only(*sweep, "sweep", {"patterns", "sparsities", "batches", "threads", "devices"});
  const auto pattern_texts = r.list<std::string>(sweep, "sweep", "patterns");
  for (std::size_t i = 0; i < pattern_texts.size(); ++i) {
    try {
      c.patterns.push_back(Pattern::parse(pattern_texts[i]));
    } catch (const Error& e) {
      fail_at(source, r.node(sweep, "patterns", static_cast<int>(i)).source(), "sweep.patterns", e.what());
    }
  }
  c.sparsities = r.list<double>(sweep, "sweep", "sparsities");
  for (std::size_t i = 0; i < c.sparsities.size(); ++i)
    if (!(c.sparsities[i] >= 0 && c.sparsities[i] < 1))
      fail_at(source, r.node(sweep, "sparsities", static_cast<int>(i)).source(), "sweep.sparsities",
              fmt::format("{} is outside [0, 1)", c.sparsities[i]));
  c.batches = r.list<int>(sweep, "sweep", "batches");
  for (std::size_t i = 0; i < c.batches.size(); ++i)
    if (c.batches[i] < 1)
      fail_at(source, r.node(sweep, "batches", static_cast<int>(i)).source(), "sweep.batches",
              fmt::format("{} is not a batch size (expected an integer >= 1)", c.batches[i]));
  c.threads = r.list<int>(sweep, "sweep", "threads");
  for (std::size_t i = 0; i < c.threads.size(); ++i)
    if (c.threads[i] < 0)
      fail_at(source, r.node(sweep, "threads", static_cast<int>(i)).source(), "sweep.threads",
              fmt::format("{} is not a thread count (expected an integer >= 0; 0 = all cores)", c.threads[i]));
  c.devices = r.list<std::string>(sweep, "sweep", "devices");
  for (std::size_t i = 0; i < c.devices.size(); ++i)
    if (c.devices[i] != "cpu" && c.devices[i] != "cuda")
      fail_at(source, r.node(sweep, "devices", static_cast<int>(i)).source(), "sweep.devices",
              fmt::format("unknown device '{}' (expected cpu or cuda)", c.devices[i]));
  for (const char* key : {"patterns", "sparsities", "batches", "threads", "devices"})
    if (!sweep->get(key) || sweep->get(key)->as_array() == nullptr || sweep->get(key)->as_array()->empty())
      fail_at(source, sweep->get(key) ? sweep->get(key)->source() : sweep->source(), std::string("sweep.") + key,
              "missing or empty (expected a non-empty array)");
  if (c.models.empty() && c.shape_sets.empty() && c.shapes.empty())
    fail(fmt::format("{}: nothing to measure: give [latency] models or [kernels] shape_sets / shapes", source));

  const toml::table* measure = r.section("measure");
  if (measure) r.only(*measure, "measure", {"min_reps", "min_seconds", "warmup", "cv_threshold", "rounds"});
  MeasureSettings& m = c.measure;
  m.min_reps = r.scalar<int>(measure, "measure", "min_reps", m.min_reps);
  m.min_seconds = r.scalar<double>(measure, "measure", "min_seconds", m.min_seconds);
  m.warmup = r.scalar<int>(measure, "measure", "warmup", m.warmup);
  m.cv_threshold = r.scalar<double>(measure, "measure", "cv_threshold", m.cv_threshold);
  m.rounds = r.scalar<int>(measure, "measure", "rounds", m.rounds);
  auto range = [&](bool ok, const char* key, const std::string& expected) {
    if (!ok) fail_at(source, r.node(measure, key).source(), std::string("measure.") + key, expected);
  };
  if (measure) {
    range(m.min_reps >= 1, "min_reps", fmt::format("{} (expected an integer >= 1)", m.min_reps));
    range(m.min_seconds >= 0, "min_seconds", fmt::format("{} (expected seconds >= 0)", m.min_seconds));
    range(m.warmup >= 0, "warmup", fmt::format("{} (expected an integer >= 0)", m.warmup));
    range(m.cv_threshold > 0, "cv_threshold", fmt::format("{} (expected a fraction > 0, e.g. 0.10)", m.cv_threshold));
    range(m.rounds >= 1, "rounds", fmt::format("{} (expected an integer >= 1)", m.rounds));
  }

  const toml::table* accuracy = r.section("accuracy");
  if (accuracy)
    r.only(*accuracy, "accuracy",
           {"models", "checkpoints", "epochs", "finetune_epochs", "train_subset", "test_subset", "train_missing",
            "schedule"});
  c.accuracy.models = r.list<std::string>(accuracy, "accuracy", "models");
  for (std::size_t i = 0; i < c.accuracy.models.size(); ++i)
    if (std::find(known.begin(), known.end(), c.accuracy.models[i]) == known.end())
      fail_at(source, r.node(accuracy, "models", static_cast<int>(i)).source(), "accuracy.models",
              fmt::format("unknown model '{}' (known: {})", c.accuracy.models[i], fmt::join(known, ", ")));
  c.accuracy.checkpoints = r.scalar<std::string>(accuracy, "accuracy", "checkpoints", "");
  c.accuracy.epochs = r.scalar<int>(accuracy, "accuracy", "epochs", 0);
  if (accuracy && c.accuracy.epochs < 0)
    fail_at(source, r.node(accuracy, "epochs").source(), "accuracy.epochs",
            fmt::format("{} (expected an integer >= 0; 0 = the trainer's default)", c.accuracy.epochs));
  c.accuracy.finetune_epochs = r.scalar<int>(accuracy, "accuracy", "finetune_epochs", 0);
  if (accuracy && c.accuracy.finetune_epochs < 0)
    fail_at(source, r.node(accuracy, "finetune_epochs").source(), "accuracy.finetune_epochs",
            fmt::format("{} (expected an integer >= 0; 0 = the trainer's default)", c.accuracy.finetune_epochs));
  c.accuracy.train_subset = r.scalar<std::int64_t>(accuracy, "accuracy", "train_subset", 0);
  if (accuracy && c.accuracy.train_subset < 0)
    fail_at(source, r.node(accuracy, "train_subset").source(), "accuracy.train_subset",
            fmt::format("{} (expected an integer >= 0; 0 = all 60000 training images)", c.accuracy.train_subset));
  c.accuracy.test_subset = r.scalar<std::int64_t>(accuracy, "accuracy", "test_subset", 0);
  if (accuracy && c.accuracy.test_subset < 0)
    fail_at(source, r.node(accuracy, "test_subset").source(), "accuracy.test_subset",
            fmt::format("{} (expected an integer >= 0; 0 = all 10000 test images)", c.accuracy.test_subset));
  c.accuracy.train_missing = r.scalar<bool>(accuracy, "accuracy", "train_missing", true);
  c.accuracy.schedule = r.scalar<std::string>(accuracy, "accuracy", "schedule", "gradual");
  if (c.accuracy.schedule != "gradual" && c.accuracy.schedule != "oneshot" && c.accuracy.schedule != "srste")
    fail_at(source, r.node(accuracy, "schedule").source(), "accuracy.schedule",
            fmt::format("'{}' (expected \"gradual\", \"oneshot\" or \"srste\")", c.accuracy.schedule));

  const toml::table* gpu = r.section("gpu");
  if (gpu) {
    r.only(*gpu, "gpu", {"dtypes", "cache", "skip_kernels"});
    if (gpu->get("dtypes")) c.gpu.dtypes = r.list<std::string>(gpu, "gpu", "dtypes");
    for (std::size_t i = 0; i < c.gpu.dtypes.size(); ++i) {
      const std::string& d = c.gpu.dtypes[i];
      if (d != "f32" && d != "tf32" && d != "f16" && d != "bf16" && d != "i8")
        fail_at(source, r.node(gpu, "dtypes", static_cast<int>(i)).source(), "gpu.dtypes",
                fmt::format("unknown GPU dtype '{}' (expected f32, tf32, f16, bf16 or i8)", d));
    }
    if (c.gpu.dtypes.empty())
      fail_at(source, r.node(gpu, "dtypes").source(), "gpu.dtypes", "empty (expected e.g. [\"f16\"])");
    c.gpu.cache = r.scalar<std::string>(gpu, "gpu", "cache", c.gpu.cache);
    if (c.gpu.cache != "cold" && c.gpu.cache != "hot" && c.gpu.cache != "stream")
      fail_at(source, r.node(gpu, "cache").source(), "gpu.cache",
              fmt::format("'{}' (expected \"cold\": L2 flushed between calls, \"hot\", or \"stream\": weight copies "
                          "back to back in a CUDA graph)",
                          c.gpu.cache));
    if (gpu->get("skip_kernels")) c.gpu.skip_kernels = r.list<std::string>(gpu, "gpu", "skip_kernels");
    for (std::size_t i = 0; i < c.gpu.skip_kernels.size(); ++i)
      try {
        gpu::check_gpu_impl_names({c.gpu.skip_kernels[i]}, "GPU implementation");
      } catch (const Error& e) {
        fail_at(source, r.node(gpu, "skip_kernels", static_cast<int>(i)).source(), "gpu.skip_kernels", e.what());
      }
  }
  return c;
}

StudyConfig load_study_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(fmt::format("{}: cannot read the study config", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_study_config(ss.str(), path);
}

}  // namespace sb
