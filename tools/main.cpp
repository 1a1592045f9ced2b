// sparsebench: the command line. Thin: parses, calls the library, prints.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "commands.h"
#include "sparsebench/core/cpu_info.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/version.h"

namespace {

// OpenBLAS (libtorch's BLAS, a baseline here) reads OPENBLAS_CORETYPE when it is loaded, before
// main: when the user has not set it, set the one matching this CPU and re-execute once, so that
// every libtorch figure runs OpenBLAS's right kernels (Debian 12's 0.3.21 can misdetect CPUs).
// The value in effect is printed by `sparsebench info` and stored with every study.
void ensure_openblas_coretype(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || std::getenv("SB_NO_REEXEC") != nullptr) return;
  const std::string core = sb::openblas_coretype_for(sb::cpu_info());
  if (core.empty()) return;
  setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  setenv("SB_NO_REEXEC", "1", 1);
  execv("/proc/self/exe", argv);
  // execv failed (no /proc): go on; OpenBLAS keeps its own detection.
}

}  // namespace

int main(int argc, char** argv) {
  ensure_openblas_coretype(argv);
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
