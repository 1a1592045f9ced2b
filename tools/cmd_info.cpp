// sparsebench info [--format table|json]: the machine and the libraries.
#include <iostream>

#include <fmt/ranges.h>

#include "commands.h"
#include "sparsebench/core/system_info.h"

namespace sb::cli {

static std::string human_bytes(std::size_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.1f} GiB", b / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.1f} MiB", b / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.0f} KiB", b / double(1ull << 10));
  return fmt::format("{} B", b);
}

static void print_table(const SystemInfo& s) {
  const CpuInfo& c = s.cpu;
  auto row = [](std::string_view k, const std::string& v) { std::cout << fmt::format("{:<26} {}\n", k, v); };
  row("sparsebench", fmt::format("{} ({})", s.sparsebench_version, s.build_type));
  row("CPU", fmt::format("{} ({}, family {} model {}{})", c.model, c.vendor, c.family, c.model_number,
                         c.hypervisor ? ", virtualised" : ""));
  row("ISA features", fmt::format("{}", fmt::join(c.feature_names(), " ")));
  row("kernel ISA (dispatch)", isa_name(max_isa()));
  row("cores / logical CPUs", fmt::format("{} / {} ({} socket{})", c.physical_cores, c.logical_cpus, c.sockets,
                                          c.sockets == 1 ? "" : "s"));
  row("threads", std::to_string(s.threads));
  for (const auto& k : c.caches)
    row(fmt::format("L{} {}", k.level, k.type), fmt::format("{} x {}", human_bytes(k.size_bytes), k.instances));
  row("memory", fmt::format("{} total, {} available", human_bytes(c.memory_total_bytes),
                            human_bytes(c.memory_available_bytes)));
  row("OS", s.os);
  row("compiler", s.compiler);
  for (const auto& l : s.libraries) row(l.name, l.version);
  if (s.gpus.empty()) row("GPU", s.gpu_status);
  for (const auto& g : s.gpus)
    row(fmt::format("GPU {}", g.index), fmt::format("{} (sm_{}{}, {}, {} SMs)", g.name, g.cc_major, g.cc_minor,
                                                    human_bytes(g.memory_bytes), g.multiprocessors));
}

Command add_info(CLI::App& root) {
  auto* app = root.add_subcommand("info", "the CPU, its features, caches, memory, GPUs and library versions");
  auto format = std::make_shared<std::string>("table");
  app->add_option("--format", *format, "output format")->check(CLI::IsMember({"table", "json"}));
  return {app, [format] {
            SystemInfo s = system_info();
            if (*format == "json") std::cout << to_json(s).dump(2) << "\n";
            else print_table(s);
            return 0;
          }};
}

}  // namespace sb::cli
