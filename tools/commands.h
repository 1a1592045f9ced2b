#pragma once
// Each subcommand registers its options on the CLI11 app and returns the function that runs it.
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace sb::cli {

using Runner = std::function<int()>;

// "a, b,c" -> {"a", "b", "c"} (blanks around items trimmed); throws sb::Error naming `flag` for an
// empty item or an empty list.
std::vector<std::string> split_list(const std::string& text, const char* flag);

struct Command {
  CLI::App* app = nullptr;
  Runner run;
};

Command add_info(CLI::App& root);
Command add_formats(CLI::App& root);
Command add_kernels(CLI::App& root);
Command add_models(CLI::App& root);
Command add_bench(CLI::App& root);
Command add_infer(CLI::App& root);
Command add_train(CLI::App& root);  // needs libtorch (SB_HAVE_TORCH); says so otherwise
Command add_study(CLI::App& root);   // M5: tools/cmd_study.cpp
Command add_report(CLI::App& root);  // M5: tools/cmd_report.cpp
Command add_export(CLI::App& root);  // M5: tools/cmd_report.cpp
Command add_prune(CLI::App& root);   // M6: tools/cmd_prune.cpp (ONNX)
Command add_compare(CLI::App& root); // M5: tools/cmd_compare.cpp

}  // namespace sb::cli
