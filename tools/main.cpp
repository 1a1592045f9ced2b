// sparsebench: the command line. Thin: parses, calls the library, prints.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "commands.h"
#include "sparsebench/core/cpu_info.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/version.h"

namespace {

// Environment read by libraries when they are loaded, before main: when the user has not set it,
// set it and re-execute once.
// - OPENBLAS_CORETYPE: OpenBLAS is libtorch's BLAS (a baseline here, and training's); Debian 12's
//   0.3.21 can misdetect CPUs and fall back to slow kernels. The value in effect is printed by
//   `sparsebench info` and stored with every study.
// - OMP_WAIT_POLICY=passive for `train`: libtorch's autograd runs thousands of tiny parallel
//   regions whose idle OpenMP workers spin; on a 2-CPU machine with anything else running,
//   measured (vit_mini, 3000 images): 83 s with spinning workers, 3.1 s passive, 2.9 s on one
//   thread. Benchmarks keep libgomp's default (spinning helps their latency).
void ensure_environment(int argc, char** argv) {
  if (std::getenv("SB_NO_REEXEC") != nullptr) return;
  bool changed = false;
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    const std::string core = sb::openblas_coretype_for(sb::cpu_info());
    if (!core.empty()) changed = setenv("OPENBLAS_CORETYPE", core.c_str(), 1) == 0;
  }
  bool training = false;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "train") training = true;
  if (training && std::getenv("OMP_WAIT_POLICY") == nullptr) changed |= setenv("OMP_WAIT_POLICY", "passive", 1) == 0;
  if (!changed) return;
  setenv("SB_NO_REEXEC", "1", 1);
  execv("/proc/self/exe", argv);
  // execv failed (no /proc): go on with the libraries' own defaults.
}

}  // namespace

int main(int argc, char** argv) {
  ensure_environment(argc, argv);
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
  commands.push_back(sb::cli::add_prune(app));
  commands.push_back(sb::cli::add_compare(app));

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
