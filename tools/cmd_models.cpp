// sparsebench models [--format table|json]: the model zoo with parameters and FLOPs.
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sparsebench/models/zoo.h"

namespace sb::cli {

Command add_models(CLI::App& root) {
  auto* app = root.add_subcommand("models", "the model zoo: input shape, parameters, FLOPs (batch 1)");
  auto format = std::make_shared<std::string>("table");
  app->add_option("--format", *format, "output format")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  return {app, [format] {
            std::vector<ModelInfo> infos;
            for (const auto& name : model_names()) infos.push_back(model_info(name));
            if (*format == "json") {
              nlohmann::json j = nlohmann::json::array();
              for (const auto& m : infos)
                j.push_back({{"name", m.name}, {"description", m.description}, {"small", m.small},
                             {"input_shape", m.input_shape}, {"input_dtype", std::string(dtype_name(m.input_dtype))},
                             {"params", m.params}, {"flops", m.flops}});
              std::cout << j.dump(1) << "\n";
              return 0;
            }
            std::cout << fmt::format("{:<15} {:<20} {:>12} {:>10}  {}\n", "model", "input (batch 1)", "params", "GFLOPs",
                                     "description");
            for (const auto& m : infos)
              std::cout << fmt::format("{:<15} {:<20} {:>12} {:>10.3f}  {}\n", m.name,
                                       shape_to_string(m.input_shape) +
                                           (m.input_dtype == DType::i32 ? " i32" : ""),
                                       m.params, static_cast<double>(m.flops) / 1e9, m.description);
            std::cout << "\nFLOPs: 2 per multiply-add of conv / linear / matmul / attention, 1 per output element "
                         "of the other ops, dense-equivalent.\n";
            return 0;
          }};
}

}  // namespace sb::cli
