#pragma once
// The study report: from the cells of a results store, DIR/index.html (one self-contained page,
// Vega-Lite charts with the chart libraries inlined, opens offline), DIR/report.md (the tables)
// and DIR/results.csv. Every number shown is a stored measurement or a ratio of two measured in
// the same run; findings are sentences generated from those numbers, nothing else.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparsebench/report/store.h"

namespace sb {

// One row of the break-even table: the lowest sparsity at which `pattern` beat the dense baseline
// (best of our implementations, same-run speedup > 1) for a subject on a device, batch and threads.
struct BreakEven {
  std::string kind, group, subject, device, pattern;
  int batch = 1, threads = 1;
  std::vector<double> sparsities;   // measured, ascending
  std::vector<double> speedups;     // best speedup at each of them
  std::vector<bool> noisy;          // whether that best cell was flagged noisy (cv over the threshold)
  double break_even = -1;           // lowest measured sparsity with speedup > 1; -1: none
  std::string best_impl_at_break_even;
};

struct ReportData {
  std::vector<RunInfo> runs;
  std::vector<Cell> cells;              // the newest cell of each key
  std::vector<BreakEven> break_even;
  std::vector<std::string> findings;    // plain sentences
  std::vector<nlohmann::json> charts;   // {"id", "title", "caption", "spec"} Vega-Lite specs, data inlined
  // One entry per store: its machine label (compare; "" for a single store) and the environment of
  // its newest run. run_machines: the label of each of `runs`.
  std::vector<std::string> machines;
  std::vector<nlohmann::json> environments;
  std::vector<std::string> run_machines;
};

// Gathers the cells of every run in `store` (a later cell replaces an earlier one of the same key),
// derives the break-even table, the findings and the chart specs.
ReportData build_report(const ResultStore& store);

// Several stores (studies run on different machines) as one report: each store's cells keep their
// machine, named "<dir or file stem> (<CPU model>)", in the device ("laptop (Intel i7) · cpu"), so
// every panel, break-even row and finding tells the machines apart; a chart compares them.
// Throws sb::Error naming a path that is not a results database.
ReportData build_compare_report(const std::vector<std::string>& db_paths);

// The break-even table as Markdown; the same text `sparsebench study` prints at the end.
std::string break_even_markdown(const std::vector<BreakEven>& rows);

// Where this build's scripts/fetch-web-assets.sh put the chart libraries (BUILD/web), unless the
// environment variable SB_WEB_ASSETS names another directory.
std::string default_web_assets_dir();

struct ReportOptions {
  // Directory holding node_modules/{vega,vega-lite,vega-embed}/build/*.min.js (what
  // scripts/fetch-web-assets.sh installs). Throws sb::Error naming the missing file and the script.
  std::string web_assets_dir;
};

// Writes DIR/index.html, DIR/report.md and DIR/results.csv (creating DIR); returns the paths.
std::vector<std::string> write_report(const ResultStore& store, const std::string& out_dir,
                                      const ReportOptions& options);
// The same files for build_compare_report(db_paths), the environments side by side.
std::vector<std::string> write_compare_report(const std::vector<std::string>& db_paths, const std::string& out_dir,
                                              const ReportOptions& options);

}  // namespace sb
