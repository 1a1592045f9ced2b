// sparsebench compare a.db b.db ... --out DIR: studies run on different machines as one report,
// the hardware side by side. Thin: parses flags, calls src/report, prints where things are.
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "commands.h"
#include "sparsebench/core/error.h"
#include "sparsebench/report/report.h"

namespace sb::cli {

Command add_compare(CLI::App& root) {
  auto* app = root.add_subcommand("compare", "merge results databases from several machines into one report");
  auto dbs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>("sparsebench-compare");
  auto assets = std::make_shared<std::string>(default_web_assets_dir());
  app->add_option("db", *dbs, "results databases (results.db of each machine's study)")->required()->expected(1, -1);
  app->add_option("--out", *out, "output directory")->capture_default_str();
  app->add_option("--web-assets", *assets, "directory with node_modules/{vega,vega-lite,vega-embed}")
      ->capture_default_str();
  return {app, [dbs, out, assets] {
            const auto files = write_compare_report(*dbs, *out, {*assets});
            const ReportData d = build_compare_report(*dbs);
            std::cout << "machines:\n";
            for (const auto& m : d.machines) std::cout << "  " << m << "\n";
            std::cout << "\nbreak-even (lowest sparsity at which a pattern beats dense, same-run ratio)\n\n"
                      << break_even_markdown(d.break_even) << "\n";
            for (const auto& f : files) std::cout << f << "\n";
            return 0;
          }};
}

}  // namespace sb::cli
