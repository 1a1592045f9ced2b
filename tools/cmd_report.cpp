// sparsebench report / export: a results database as a page, tables and CSV, or as CSV/JSON on
// stdout. Thin: parses flags, calls src/report, prints where things are.
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "commands.h"
#include "sparsebench/core/error.h"
#include "sparsebench/report/report.h"
#include "sparsebench/report/store.h"

namespace sb::cli {
namespace {

// Reading must not create an empty database where a typo'd path was given.
void require_file(const std::string& db) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db, ec)) fail(fmt::format("{}: no such results database", db));
}

}  // namespace

Command add_report(CLI::App& root) {
  auto* app = root.add_subcommand("report", "write DIR/index.html (charts), DIR/report.md and DIR/results.csv");
  auto db = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto assets = std::make_shared<std::string>(default_web_assets_dir());
  app->add_option("db", *db, "results database (results.db)")->required();
  app->add_option("--out", *out, "output directory (default: report/ beside the database)");
  app->add_option("--web-assets", *assets, "directory with node_modules/{vega,vega-lite,vega-embed}")
      ->capture_default_str();
  return {app, [db, out, assets] {
            require_file(*db);
            const std::string dir =
                out->empty() ? (std::filesystem::path(*db).parent_path() / "report").string() : *out;
            ResultStore store(*db);
            const auto files = write_report(store, dir, {*assets});
            for (const auto& f : files) std::cout << f << "\n";
            return 0;
          }};
}

Command add_export(CLI::App& root) {
  auto* app = root.add_subcommand("export", "print every cell of a results database as CSV or JSON");
  auto db = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("csv");
  app->add_option("db", *db, "results database (results.db)")->required();
  app->add_option("--format", *format, "csv (one row per cell) or json (runs, cells, raw samples)")
      ->check(CLI::IsMember({"csv", "json"}))
      ->capture_default_str();
  return {app, [db, format] {
            require_file(*db);
            ResultStore store(*db);
            if (*format == "json")
              std::cout << export_json(store).dump(1) << "\n";
            else
              std::cout << export_csv(store.cells());
            return 0;
          }};
}

}  // namespace sb::cli
