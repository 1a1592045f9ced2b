// sparsebench: the command line. Thin: parses, calls the library, prints.
#include <cstdio>
#include <vector>

#include "commands.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/version.h"

int main(int argc, char** argv) {
  CLI::App app{"sparsebench: when does a sparse network run faster, smaller and cheaper than its dense original?"};
  app.set_version_flag("--version", std::string("sparsebench ") + sb::kVersion);
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "threads for kernels (0 = all cores)")->check(CLI::NonNegativeNumber);

  std::vector<sb::cli::Command> commands;
  commands.push_back(sb::cli::add_info(app));
  commands.push_back(sb::cli::add_formats(app));
  commands.push_back(sb::cli::add_kernels(app));
  commands.push_back(sb::cli::add_models(app));
  commands.push_back(sb::cli::add_bench(app));
  commands.push_back(sb::cli::add_infer(app));
  commands.push_back(sb::cli::add_train(app));
  commands.push_back(sb::cli::add_study(app));
  commands.push_back(sb::cli::add_report(app));
  commands.push_back(sb::cli::add_export(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    sb::set_num_threads(threads);
    for (auto& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const sb::Error& e) {
    std::fprintf(stderr, "sparsebench: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparsebench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
