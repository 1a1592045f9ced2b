// The report: files written, tables derived from the cells, and the page rendered by a real
// browser (headless Chromium) with every chart drawn and nothing on the console.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "sparsebench/core/error.h"
#include "sparsebench/core/system_info.h"
#include "sparsebench/report/report.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

sb::Cell cell(const std::string& kind, const std::string& subject, const std::string& pattern, double sparsity,
              const std::string& impl, const std::string& role, const std::string& format, double median,
              double speedup) {
  sb::Cell c;
  c.key = {kind, kind == "kernel" ? "bert_base" : "", subject, pattern, sparsity, kind == "kernel" ? 128 : 1, 1,
           "cpu", impl, ""};
  c.role = role;
  c.format = format;
  c.median_ms = c.p10_ms = c.p90_ms = c.p99_ms = median;
  c.reps = 1;
  c.speedup = speedup;
  c.weight_bytes = format == "dense" ? 4000 : static_cast<std::int64_t>(4000 * (1 - sparsity) * 2);
  c.energy_note = "unavailable: test fixture";
  c.samples_ms = {median};
  return c;
}

// A store of fixture cells (made-up values: this tests the report's plumbing, not a machine).
std::string make_store(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("sb_report_" + std::to_string(::getpid()) + "_" + name);
  fs::remove(p);
  sb::ResultStore store(p.string());
  sb::RunInfo run;
  run.environment = sb::to_json(sb::system_info());
  run.git_revision = "test";
  const auto id = store.begin_run(run);
  store.add_cell(id, cell("kernel", "768x768x128", "dense", 0, "onednn", "baseline", "dense", 1.0, 1.0));
  const double un[] = {0.6, 1.2, 2.5}, nm[] = {1.1, 1.1, 1.1};
  const double sp[] = {0.5, 0.7, 0.9};
  for (int i = 0; i < 3; ++i) {
    store.add_cell(id, cell("kernel", "768x768x128", "unstructured", sp[i], "csr", "kernel", "csr", 1 / un[i], un[i]));
    store.add_cell(id, cell("kernel", "768x768x128", "nm:2:4", sp[i], "bal", "kernel", "balanced", 1 / nm[i], nm[i]));
    sb::Cell m = cell("model", "mlp", "unstructured", sp[i], "sb_executor", "kernel", "csr", 0.1 * (1 - sp[i]), 1.5);
    m.accuracy = 0.98 - 0.05 * i;
    m.accuracy_metric = "top1";
    store.add_cell(id, m);
    // Not monotone: 2.5 points lost at 50 %, within a point at 70 %.
    sb::Cell b = cell("model", "mlp", "block:4x4", sp[i], "sb_executor", "kernel", "bsr", 0.1 * (1 - sp[i]), 1.2);
    const double block_acc[] = {0.96, 0.98, 0.90};
    b.accuracy = block_acc[i];
    b.accuracy_metric = "top1";
    store.add_cell(id, b);
  }
  // Filter pruning shrinks the model to a smaller dense one: 90 % of the prunable channels may
  // leave far more of the whole model (tied channels stay).
  sb::Cell f = cell("model", "mlp", "filter:l1", 0.9, "sb_executor", "kernel", "dense", 0.05, 2.0);
  f.weight_bytes = 2240;
  f.accuracy = 0.98;
  f.accuracy_metric = "top1";
  store.add_cell(id, f);
  // A GPU model cell carries its pass as one CUDA graph beside the per-layer sum.
  sb::Cell g = cell("model", "bert_base", "balanced:bank=32", 0.9, "gpu_layers:auto", "ours", "balanced", 0.5, 0.66);
  g.key.device = "cuda";
  g.extra["graph_pass"] = {{"median_ms", 0.3}, {"speedup", 1.41}, {"noisy", false}, {"how", "fixture"}};
  store.add_cell(id, g);
  sb::Cell dense_mlp = cell("model", "mlp", "dense", 0, "sb_executor", "baseline", "dense", 0.1, 1.0);
  dense_mlp.accuracy = 0.985;
  store.add_cell(id, dense_mlp);
  store.finish_run(id);
  return p.string();
}

}  // namespace

TEST(Report, BreakEvenAndFindingsComeFromTheCells) {
  const std::string db = make_store("data.db");
  sb::ResultStore store(db);
  const sb::ReportData d = sb::build_report(store);
  // kernel unstructured, nm:2:4; model unstructured, block:4x4, filter:l1; bert_base on cuda
  ASSERT_EQ(d.break_even.size(), 6u);
  for (const auto& r : d.break_even) {
    if (r.kind == "kernel" && r.pattern == "unstructured") EXPECT_DOUBLE_EQ(r.break_even, 0.7);
    if (r.kind == "kernel" && r.pattern == "nm:2:4") EXPECT_DOUBLE_EQ(r.break_even, 0.5);
  }
  ASSERT_GE(d.findings.size(), 2u);
  bool found = false;
  for (const auto& f : d.findings)
    if (f.find("unstructured pays from 70 %") != std::string::npos &&
        f.find("at 50 % only nm:2:4 pays") != std::string::npos)
      found = true;
  EXPECT_TRUE(found) << ::testing::PrintToString(d.findings);
  bool accuracy = false;
  for (const auto& f : d.findings)
    if (f.rfind("Accuracy of mlp (dense 98.5 %)", 0) == 0 &&
        f.find("block:4x4 loses more than 1 point already at 50 % (96.0 %)") != std::string::npos &&
        f.find("unstructured stays within 1 point up to 50 %") != std::string::npos &&
        f.find("filter:l1 stays within 1 point up to 90 % (98.0 % at 90 %; the shrunk model keeps 56 % of the dense "
               "weights)") != std::string::npos)
      accuracy = true;
  EXPECT_TRUE(accuracy) << ::testing::PrintToString(d.findings);
  bool graph = false;
  for (const auto& f : d.findings)
    if (f.find("On cuda, bert_base at batch 1 as one CUDA graph per pass") != std::string::npos &&
        f.find("balanced:bank=32 at 90 % 1.41x (per-layer sum 0.66x)") != std::string::npos)
      graph = true;
  EXPECT_TRUE(graph) << ::testing::PrintToString(d.findings);
  EXPECT_EQ(d.charts.size(), 6u);  // model and kernel speedup, model and format memory, accuracy, pareto
  fs::remove(db);
}

TEST(Report, MissingAssetsSayWhatToRun) {
  const std::string db = make_store("assets.db");
  sb::ResultStore store(db);
  try {
    sb::write_report(store, (fs::temp_directory_path() / "sb_report_never").string(), {"/nonexistent/web"});
    FAIL();
  } catch (const sb::Error& e) {
    EXPECT_NE(std::string(e.what()).find("fetch-web-assets.sh"), std::string::npos) << e.what();
  }
  fs::remove(db);
}

TEST(Report, PageRendersEveryChartInChromium) {
  const fs::path assets(SB_WEB_ASSETS_DIR);
  if (!fs::exists(assets / "node_modules/vega-embed/build/vega-embed.min.js"))
    GTEST_SKIP() << "no chart libraries in " << assets << ": run scripts/fetch-web-assets.sh " << assets.string();
  const std::string db = make_store("page.db");
  const fs::path out = fs::temp_directory_path() / ("sb_report_page_" + std::to_string(::getpid()));
  fs::remove_all(out);
  sb::ResultStore store(db);
  const auto files = sb::write_report(store, out.string(), {assets.string()});
  ASSERT_EQ(files.size(), 3u);
  const std::string html = slurp(out / "index.html");
  EXPECT_EQ(html.find("src=\"http"), std::string::npos) << "the page must not load anything from the network";
  EXPECT_NE(slurp(out / "report.md").find("| bert_base 768x768x128 |"), std::string::npos);
  EXPECT_NE(slurp(out / "results.csv").find("run_id,cell_id,kind"), std::string::npos);

  const std::string chromium = SB_CHROMIUM;
  if (chromium.empty()) GTEST_SKIP() << "chromium not installed (apt-get install chromium): page not rendered";
  const fs::path err = out / "chromium.log", dom = out / "dom.html";
  // --virtual-time-budget lets the page's promises settle before the DOM is dumped; the page
  // writes "rendered:N" into body[data-rendered] once every vegaEmbed resolved.
  std::string cmd = chromium + " --headless --disable-gpu --no-sandbox --no-first-run --disable-extensions"
                               " --user-data-dir=" + (out / "profile").string() +
                    " --enable-logging=stderr --v=0 --virtual-time-budget=20000 --dump-dom file://" +
                    (out / "index.html").string() + " >" + dom.string() + " 2>" + err.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << slurp(err);
  const std::string rendered = slurp(dom), log = slurp(err);
  EXPECT_NE(rendered.find("data-rendered=\"rendered:6\""), std::string::npos)
      << "not every chart rendered; console:\n" << log;
  // Each chart is an SVG drawn by vega.
  std::size_t svgs = 0;
  for (std::size_t at = rendered.find("<svg"); at != std::string::npos; at = rendered.find("<svg", at + 1)) ++svgs;
  EXPECT_GE(svgs, 6u);
  // Console messages reach stderr as "CONSOLE(line)" / ":CONSOLE]" lines.
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    if (line.find("CONSOLE") != std::string::npos) ADD_FAILURE() << "console: " << line;
  if (const char* shot = std::getenv("SB_REPORT_SCREENSHOT"); shot && *shot) {
    const std::string s = chromium + " --headless --disable-gpu --no-sandbox --hide-scrollbars --user-data-dir=" +
                          (out / "profile").string() + " --virtual-time-budget=20000 --window-size=1280,2400"
                          " --screenshot=" + shot + " file://" + (out / "index.html").string() + " 2>/dev/null";
    EXPECT_EQ(std::system(s.c_str()), 0);
  } else {
    fs::remove_all(out);
  }
  fs::remove(db);
}
