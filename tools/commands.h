#pragma once
// Each subcommand registers its options on the CLI11 app and returns the function that runs it.
#include <functional>

#include <CLI/CLI.hpp>

namespace sb::cli {

using Runner = std::function<int()>;

struct Command {
  CLI::App* app = nullptr;
  Runner run;
};

Command add_info(CLI::App& root);

}  // namespace sb::cli
