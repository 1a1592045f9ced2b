// The study end to end on a tiny config (one small model cell, measured for real in well under a
// second): rows in the store, resume, accuracy plumbing, the report and a two-machine compare, both
// rendered by headless Chromium; and the energy meter on a fake powercap tree.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "sparsebench/bench/energy.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/system_info.h"
#include "sparsebench/kernels/cuda_spmm.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/report/report.h"
#include "sparsebench/study/config.h"
#include "sparsebench/study/study.h"

namespace fs = std::filesystem;

namespace {

constexpr const char* kTiny = R"([study]
name = "tiny"
[latency]
models = ["mlp"]
[sweep]
patterns = ["dense", "unstructured"]
sparsities = [0.7]
batches = [1]
threads = [1]
devices = ["cpu"]
[measure]
min_reps = 3
min_seconds = 0
warmup = 1
rounds = 1
[accuracy]
models = ["mlp"]
train_missing = false
)";

// A model cell's result without measuring: dense 2 ms, sparse 1 ms.
sb::ModelBenchResult fake_model_bench(const sb::ModelBenchConfig& c) {
  sb::ModelBenchResult r;
  r.model = c.model;
  r.pattern = c.pattern.to_string();
  r.kernel = c.kernel;
  r.dense.stats = sb::summarize({2.0, 2.0});
  r.sparse.stats = sb::summarize({1.0, 1.0});
  r.speedup = 2;
  r.energy_note = "unavailable: test";
  return r;
}

fs::path temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("sb_study_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fake accuracy source (the trainer needs libtorch and minutes): dense 90 %, pruned 88 %.
sb::AccuracyResult fake_accuracy(const sb::AccuracyRequest& q) {
  sb::AccuracyResult r;
  r.accuracy = q.pattern.kind == sb::Pattern::Kind::dense ? 0.90 : 0.88;
  r.dense_accuracy = 0.90;
  r.checkpoint = "fake";
  r.schedule = "srste";
  r.recipe = "epochs=2,ft_epochs=1,batch=128,opt=sgd,lr=0.05,ft_lr=0.01,wd=0.0005,augment=0,train=5000,test=0";
  return r;
}

// Runs the tiny study into DIR/results.db; returns the summary.
sb::StudySummary run_tiny(const fs::path& dir, bool resume) {
  const sb::StudyConfig config = sb::parse_study_config(kTiny, "tiny.toml");
  sb::ResultStore store((dir / "results.db").string());
  sb::RunInfo run;
  run.environment = sb::to_json(sb::system_info());
  run.git_revision = "test";
  const auto id = store.begin_run(run);
  sb::StudyOptions opts;
  opts.resume = resume;
  sb::StudyHooks hooks;
  hooks.accuracy = fake_accuracy;
  const sb::StudySummary s = sb::run_study(config, store, id, opts, hooks);
  store.finish_run(id);
  return s;
}

// Renders `html` in headless Chromium; returns the DOM, or "" with a skip reason in `why`.
std::string render(const fs::path& html, const fs::path& work, std::string& log) {
  const std::string chromium = SB_CHROMIUM;
  if (chromium.empty()) return "";
  const fs::path err = work / "chromium.log", dom = work / "dom.html";
  const std::string cmd = chromium + " --headless --disable-gpu --no-sandbox --no-first-run --disable-extensions"
                                     " --user-data-dir=" + (work / "profile").string() +
                          " --enable-logging=stderr --v=0 --virtual-time-budget=20000 --dump-dom file://" +
                          html.string() + " >" + dom.string() + " 2>" + err.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  log = slurp(err);
  return slurp(dom);
}

void expect_rendered(const fs::path& out, std::size_t charts) {
  std::string log;
  const std::string dom = render(out / "index.html", out, log);
  if (dom.empty()) GTEST_SKIP() << "chromium not installed (apt-get install chromium): page not rendered";
  EXPECT_NE(dom.find("data-rendered=\"rendered:" + std::to_string(charts) + "\""), std::string::npos)
      << "not every chart rendered; console:\n" << log;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    if (line.find("CONSOLE") != std::string::npos) ADD_FAILURE() << "console: " << line;
}

bool have_assets() { return fs::exists(fs::path(SB_WEB_ASSETS_DIR) / "node_modules/vega-embed/build/vega-embed.min.js"); }

}  // namespace

TEST(Study, ModelCellIsStoredResumedReportedAndCompared) {
  const fs::path a = temp_dir("a"), b = temp_dir("b");
  const sb::StudySummary s = run_tiny(a, false);
  EXPECT_EQ(s.units, 1);
  EXPECT_EQ(s.model_units, 1);
  EXPECT_EQ(s.measured, 1);
  EXPECT_EQ(s.cells_written, 2);  // dense and pruned, one transaction

  {
    sb::ResultStore store((a / "results.db").string());
    const auto cells = store.cells();
    ASSERT_EQ(cells.size(), 2u);
    const sb::Cell& dense = cells[0];
    const sb::Cell& sparse = cells[1];
    EXPECT_EQ(dense.key.kind, "model");
    EXPECT_EQ(dense.role, "baseline");
    EXPECT_EQ(sparse.role, "ours");
    EXPECT_EQ(sparse.key.subject, "mlp");
    EXPECT_EQ(sparse.key.pattern, "unstructured");
    EXPECT_EQ(sparse.status, "ok");
    EXPECT_GE(sparse.samples_ms.size(), 3u);
    EXPECT_GE(dense.samples_ms.size(), 3u);
    EXPECT_GT(sparse.median_ms, 0);
    EXPECT_NEAR(sparse.speedup, dense.median_ms / sparse.median_ms, 1e-9);  // same-run ratio
    EXPECT_GT(sparse.achieved_sparsity, 0.6);
    // `auto` may keep a layer dense where dense is faster: the stored bytes follow that choice.
    EXPECT_LE(sparse.weight_bytes, dense.weight_bytes);
    ASSERT_TRUE(sparse.weight_value_bytes && sparse.weight_index_bytes && sparse.weight_meta_bytes);
    EXPECT_EQ(*sparse.weight_value_bytes + *sparse.weight_index_bytes + *sparse.weight_meta_bytes,
              sparse.weight_bytes);
    EXPECT_TRUE(sparse.peak_rss_bytes.has_value());
    EXPECT_EQ(sparse.throughput_unit, "samples/s");
    // Energy is a reading or says why not; never a number without a counter.
    if (!sparse.energy_j) EXPECT_EQ(sparse.energy_note.rfind("unavailable: ", 0), 0u) << sparse.energy_note;
    ASSERT_TRUE(sparse.accuracy && dense.accuracy);
    EXPECT_DOUBLE_EQ(*sparse.accuracy, 0.88);
    EXPECT_DOUBLE_EQ(*dense.accuracy, 0.90);
    EXPECT_TRUE(sparse.extra.contains("layers"));
  }

  // --resume: nothing measured again, nothing added.
  const sb::StudySummary r = run_tiny(a, true);
  EXPECT_EQ(r.skipped, 1);
  EXPECT_EQ(r.measured, 0);
  EXPECT_EQ(sb::ResultStore((a / "results.db").string()).cells().size(), 2u);

  {  // Cells of another definition of mlp in the store: a resumed study refuses to mix them.
    const fs::path d = temp_dir("signature");
    fs::copy_file(a / "results.db", d / "results.db");
    {
      sb::ResultStore store((d / "results.db").string());
      sb::Cell old = store.cells()[1];
      EXPECT_EQ(old.extra.value("model_signature", ""), sb::build_model("mlp").signature());
      old.extra["model_signature"] = "0123456789abcdef";
      const auto id = store.begin_run(sb::RunInfo{});
      store.add_cell(id, old);
      store.finish_run(id);
    }
    try {
      run_tiny(d, true);
      ADD_FAILURE() << "resumed over cells of another model definition";
    } catch (const sb::Error& e) {
      EXPECT_NE(std::string(e.what()).find("another definition of that model (signature 0123456789abcdef"),
                std::string::npos)
          << e.what();
    }
    fs::remove_all(d);
  }

  {
    sb::ResultStore store((a / "results.db").string());
    const sb::ReportData d = sb::build_report(store);
    ASSERT_EQ(d.break_even.size(), 1u);
    EXPECT_EQ(d.break_even[0].kind, "model");
    EXPECT_EQ(d.break_even[0].subject, "mlp");
    bool energy = false, accuracy = false;
    for (const auto& f : d.findings) {
      energy = energy || f.rfind("Energy", 0) == 0;
      // The finding names the training behind its figures (a study's recipe is short).
      accuracy = accuracy || (f.rfind("Accuracy of mlp (dense 90.0 %)", 0) == 0 &&
                              f.find("Trained with epochs=2, ft_epochs=1, train=5000, schedule=srste.") !=
                                  std::string::npos);
    }
    EXPECT_TRUE(energy && accuracy) << ::testing::PrintToString(d.findings);
    std::vector<std::string> ids;
    for (const auto& c : d.charts) ids.push_back(c["id"]);
    EXPECT_EQ(ids, (std::vector<std::string>{"speedup-model", "model-memory", "accuracy", "pareto"}));
  }

  // Two machines: the same study under another directory name.
  fs::copy_file(a / "results.db", b / "results.db");
  const sb::ReportData c = sb::build_compare_report({(a / "results.db").string(), (b / "results.db").string()});
  ASSERT_EQ(c.machines.size(), 2u);
  EXPECT_NE(c.machines[0], c.machines[1]);
  EXPECT_EQ(c.environments.size(), 2u);
  EXPECT_EQ(c.break_even.size(), 2u);  // one row per machine
  bool machine_chart = false;
  for (const auto& ch : c.charts) machine_chart = machine_chart || ch["id"] == "machines";
  EXPECT_TRUE(machine_chart);
  EXPECT_THROW(sb::build_compare_report({(a / "nope.db").string()}), sb::Error);

  if (!have_assets()) GTEST_SKIP() << "no chart libraries in " << SB_WEB_ASSETS_DIR;
  const fs::path out = a / "compare";
  sb::write_compare_report({(a / "results.db").string(), (b / "results.db").string()}, out.string(),
                           {SB_WEB_ASSETS_DIR});
  const std::string md = slurp(out / "report.md");
  EXPECT_NE(md.find("| key | " + c.machines[0] + " | " + c.machines[1] + " |"), std::string::npos) << md;
  expect_rendered(out, c.charts.size());
  {
    sb::ResultStore store((a / "results.db").string());
    const fs::path single = a / "report";
    sb::write_report(store, single.string(), {SB_WEB_ASSETS_DIR});
    EXPECT_NE(slurp(single / "report.md").find("| mlp | cpu | 1 | 1 | unstructured |"), std::string::npos);
  }
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(Study, WithoutAccuracyHookTheSummarySaysWhy) {
  const fs::path a = temp_dir("noacc");
  const sb::StudyConfig config = sb::parse_study_config(kTiny, "tiny.toml");
  sb::ResultStore store((a / "results.db").string());
  const auto id = store.begin_run({});
  sb::StudyHooks hooks;
  hooks.model_bench = fake_model_bench;  // no timing needed here
  const sb::StudySummary s = sb::run_study(config, store, id, {}, hooks);
  ASSERT_FALSE(s.notes.empty());
  EXPECT_NE(s.notes.back().find("no libtorch"), std::string::npos) << s.notes.back();
  const auto cells = store.cells();
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_FALSE(cells[1].accuracy.has_value());
  EXPECT_DOUBLE_EQ(cells[1].speedup, 2.0);
  fs::remove_all(a);
}

// prepare_accuracy (the CLI trains missing checkpoints side by side there) gets every request the
// units will make, each once, dense first, before any unit asks; units already stored when
// resuming ask nothing; a failing prepare becomes a note and the units still get their accuracy.
TEST(Study, AccuracyRequestsAreHandedOverOnceBeforeTheUnits) {
  const fs::path a = temp_dir("prepare");
  const sb::StudyConfig config = sb::parse_study_config(kTiny, "tiny.toml");
  sb::ResultStore store((a / "results.db").string());
  int asked = 0, prepared = 0;
  std::vector<sb::AccuracyRequest> got;
  sb::StudyHooks hooks;
  hooks.model_bench = [](const sb::ModelBenchConfig& c) {
    sb::ModelBenchResult r = fake_model_bench(c);
    r.model_signature = sb::build_model(c.model).signature();  // what --resume checks
    return r;
  };
  hooks.accuracy = [&](const sb::AccuracyRequest& q) {
    ++asked;
    return fake_accuracy(q);
  };
  hooks.prepare_accuracy = [&](const std::vector<sb::AccuracyRequest>& reqs) {
    EXPECT_EQ(asked, 0) << "prepare_accuracy must come before the units";
    ++prepared;
    got = reqs;
  };
  {
    const auto id = store.begin_run({});
    sb::run_study(config, store, id, {}, hooks);
  }
  EXPECT_EQ(prepared, 1);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].model, "mlp");
  EXPECT_EQ(got[0].pattern.kind, sb::Pattern::Kind::dense);
  EXPECT_EQ(got[0].sparsity, 0.0);
  EXPECT_EQ(got[1].pattern.to_string(), "unstructured");
  EXPECT_DOUBLE_EQ(got[1].sparsity, 0.7);
  EXPECT_FALSE(got[1].settings.train_missing);  // the study's [accuracy] settings travel with each request
  EXPECT_EQ(asked, 2);

  sb::StudyOptions resume;
  resume.resume = true;
  {
    const auto id = store.begin_run({});
    sb::run_study(config, store, id, resume, hooks);
  }
  EXPECT_EQ(prepared, 1) << "every unit was stored: nothing to prepare";

  const fs::path b = temp_dir("prepare_fails");
  sb::ResultStore store_b((b / "results.db").string());
  hooks.prepare_accuracy = [](const std::vector<sb::AccuracyRequest>&) { throw sb::Error("no processes left"); };
  asked = 0;
  const auto id = store_b.begin_run({});
  const sb::StudySummary s = sb::run_study(config, store_b, id, {}, hooks);
  bool noted = false;
  for (const auto& n : s.notes) noted = noted || n.find("no processes left") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(asked, 2);
  const auto cells = store_b.cells();
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_TRUE(cells[1].accuracy.has_value());
  fs::remove_all(a);
  fs::remove_all(b);
}

// devices = ["cpu", "cuda"]: the CPU cells are measured; without a GPU the summary says why the
// cuda cells are missing (and a later --resume on a GPU machine adds them); with one, the cuda
// model cells carry the GPU's figures.
TEST(Study, CudaCellsOrTheReasonWhyNot) {
  const fs::path a = temp_dir("cuda");
  std::string text = kTiny;
  const std::string devices = "devices = [\"cpu\"]", acc = "models = [\"mlp\"]\ntrain_missing";
  text.replace(text.find(devices), devices.size(), "devices = [\"cpu\", \"cuda\"]");
  text.replace(text.find(acc), acc.size(), "models = []\ntrain_missing");
  const sb::StudyConfig config = sb::parse_study_config(text, "tiny.toml");
  sb::ResultStore store((a / "results.db").string());
  const auto id = store.begin_run({});
  sb::StudyHooks hooks;
  hooks.model_bench = fake_model_bench;
  const sb::StudySummary s = sb::run_study(config, store, id, {}, hooks);
  const std::string why = sb::gpu::gpu_unavailable_reason();
  std::size_t cuda_cells = 0;
  for (const sb::Cell& c : store.cells()) cuda_cells += c.key.device == "cuda";
  if (!why.empty()) {
    bool noted = false;
    for (const std::string& n : s.notes) noted |= n.find("cells on cuda: not measured: " + why) != std::string::npos;
    EXPECT_TRUE(noted) << "no note says why the cuda cells are missing";
    EXPECT_EQ(cuda_cells, 0u);
    EXPECT_EQ(s.units, 1);  // the CPU model unit only
  } else {
    EXPECT_EQ(s.units, 2);
    ASSERT_EQ(cuda_cells, 2u);  // dense and sparse rows of the GPU model cell
    for (const sb::Cell& c : store.cells())
      if (c.key.device == "cuda") {
        EXPECT_EQ(c.status, "ok") << c.status;
        EXPECT_GT(c.median_ms, 0);
      }
  }
  fs::remove_all(a);
}

TEST(Energy, ReadsPackageDomainsAndSaysWhyNot) {
  const fs::path root = temp_dir("powercap");
  sb::EnergyMeter none((root / "missing").string());
  EXPECT_FALSE(none.available());
  EXPECT_EQ(none.note().rfind("unavailable: no ", 0), 0u) << none.note();
  EXPECT_EQ(none.joules(), 0.0);

  sb::EnergyMeter empty(root.string());
  EXPECT_FALSE(empty.available());
  EXPECT_NE(empty.note().find("VM without RAPL"), std::string::npos) << empty.note();

  auto write = [](const fs::path& p, const std::string& v) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << v << "\n";
  };
  write(root / "intel-rapl:0/energy_uj", "999000000");
  write(root / "intel-rapl:0/max_energy_range_uj", "1000000000");
  write(root / "intel-rapl:0:0/energy_uj", "5");  // a sub-domain: inside the package, not added
  sb::EnergyMeter m(root.string());
  ASSERT_TRUE(m.available()) << m.note();
  EXPECT_DOUBLE_EQ(m.joules(), 0.0);
  write(root / "intel-rapl:0/energy_uj", "1000000");  // wrapped: 1 J to the top, 1 J after
  EXPECT_NEAR(m.joules(), 2.0, 1e-9);
  fs::remove_all(root);
}

// A model cell measured while the host had the CPUs apart (bench/parallel_probe.h) is stored
// flagged noisy, with the probes' figures, so that the report marks its speedup as rough.
TEST(Study, ModelCellsTakenWhileTheCpusWereApartAreFlagged) {
  const fs::path a = temp_dir("apart");
  const sb::StudyConfig config = sb::parse_study_config(kTiny, "tiny.toml");
  sb::ResultStore store((a / "results.db").string());
  const auto id = store.begin_run({});
  sb::StudyHooks hooks;
  hooks.model_bench = [](const sb::ModelBenchConfig& c) {
    sb::ModelBenchResult r = fake_model_bench(c);
    r.parallel.probes = 4;
    r.parallel.median_ns = 350;
    r.parallel.max_ns = 400;
    r.parallel.reference_ns = 60;
    r.disturbed = true;
    r.waited_s = 1.5;
    return r;
  };
  sb::run_study(config, store, id, {}, hooks);
  const auto cells = store.cells();
  ASSERT_EQ(cells.size(), 2u);
  for (const sb::Cell& c : cells) {
    EXPECT_TRUE(c.noisy) << c.key.impl;
    EXPECT_TRUE(c.extra.value("disturbed", false)) << c.extra.dump();
    ASSERT_TRUE(c.extra.contains("core_to_core_ns")) << c.extra.dump();
    EXPECT_EQ(c.extra["core_to_core_ns"].value("median", 0.0), 350);
    EXPECT_EQ(c.extra["core_to_core_ns"].value("best_seen", 0.0), 60);
    EXPECT_EQ(c.extra["core_to_core_ns"].value("waited_s", 0.0), 1.5);
  }
  const sb::ReportData d = sb::build_report(store);
  ASSERT_FALSE(d.findings.empty());
  EXPECT_EQ(d.findings[0].rfind("Caution: 2 of 2 measured cells are flagged noisy", 0), 0u) << d.findings[0];
  EXPECT_NE(d.findings[0].find("2 of them multi-threaded cells measured while the CPUs talked over 2x slower"),
            std::string::npos)
      << d.findings[0];
  fs::remove_all(a);
}
