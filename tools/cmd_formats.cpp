// sparsebench formats: what one pruned weight costs in every storage format.
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "sparsebench/core/rng.h"
#include "sparsebench/formats/compare.h"
#include "sparsebench/formats/smtx.h"
#include "sparsebench/prune/mask.h"

namespace sb::cli {
namespace {

struct FormatsOptions {
  std::string shape = "768x768";
  std::string matrix;
  std::string pattern = "unstructured";
  double sparsity = 0.9;
  std::uint64_t seed = 1;
  std::string value_type = "f32";
  std::string format = "table";
};

// "ROWSxCOLS" with positive integers; anything else names the flag and the expected form.
std::pair<std::int64_t, std::int64_t> parse_shape2(const std::string& text) {
  auto x = text.find('x');
  std::int64_t r = 0, c = 0;
  std::size_t used_r = 0, used_c = 0;
  try {
    if (x != std::string::npos) {
      r = std::stoll(text.substr(0, x), &used_r);
      c = std::stoll(text.substr(x + 1), &used_c);
    }
  } catch (const std::exception&) {
  }
  SB_CHECK(x != std::string::npos && used_r == x && used_c == text.size() - x - 1 && r > 0 && c > 0 &&
               r <= (1 << 20) && c <= (1 << 20),
           "--shape '{}': expected ROWSxCOLS with positive integers up to 1048576, e.g. 768x3072", text);
  return {r, c};
}

int run_formats(const FormatsOptions& o) {
  Pattern pattern = Pattern::parse(o.pattern);
  DType vt = parse_dtype(o.value_type);
  SB_CHECK(vt == DType::f32 || vt == DType::f16 || vt == DType::bf16,
           "--value-type {}: expected f32, f16 or bf16", o.value_type);
  Rng rng(o.seed);
  Tensor weight, mask;
  std::string source;
  double achieved = 0;
  std::string note;
  if (!o.matrix.empty()) {
    Csr csr = load_smtx(o.matrix, rng);
    weight = csr.to_dense();
    mask = Tensor::zeros(weight.shape(), DType::u8);
    auto* m = mask.data<std::uint8_t>();
    for (std::int64_t r = 0; r < csr.rows; ++r)
      for (std::int32_t i = csr.row_ptr[r]; i < csr.row_ptr[r + 1]; ++i) m[r * csr.cols + csr.col(i)] = 1;
    achieved = csr.sparsity();
    source = fmt::format("{} ({}x{}, DLMC pattern, random values)", o.matrix, csr.rows, csr.cols);
  } else {
    auto [rows, cols] = parse_shape2(o.shape);
    weight = Tensor::empty({rows, cols});
    rng.fill_normal(weight, 0.f, 1.f);
    MaskResult mr = make_mask(weight, pattern, o.sparsity);
    apply_mask(weight, mr.mask);
    mask = mr.mask;
    achieved = mr.achieved;
    note = mr.note;
    source = fmt::format("random {}x{} weight, {} at {}", rows, cols, pattern.to_string(), o.sparsity);
  }
  auto costs = compare_formats(weight, mask, pattern, vt);

  if (o.format == "json") {
    nlohmann::json j = {{"source", source}, {"pattern", pattern.to_string()}, {"requested_sparsity", o.sparsity},
                        {"achieved_sparsity", achieved}, {"note", note}, {"value_type", dtype_name(vt)}};
    for (const auto& c : costs)
      j["formats"].push_back({{"format", c.format}, {"detail", c.detail}, {"available", c.available},
                              {"reason", c.reason}, {"values_bytes", c.footprint.values},
                              {"indices_bytes", c.footprint.indices}, {"pointers_bytes", c.footprint.pointers},
                              {"metadata_bytes", c.footprint.metadata}, {"padding_values", c.footprint.padding_values},
                              {"total_bytes", c.footprint.total()}, {"ratio_to_dense", c.ratio_to_dense},
                              {"round_trip_exact", c.round_trip_exact}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{}\nachieved sparsity {:.4f}{}; values stored as {}\n\n", source, achieved,
                           note.empty() ? "" : " (" + note + ")", dtype_name(vt));
  std::cout << fmt::format("{:<20} {:>12} {:>12} {:>10} {:>10} {:>12} {:>8}  {}\n", "format", "values B", "indices B",
                           "ptrs B", "meta B", "total B", "x dense", "detail");
  for (const auto& c : costs) {
    if (!c.available) {
      std::cout << fmt::format("{:<20} {:>12}  {}\n", c.format, "n/a", c.reason);
      continue;
    }
    std::cout << fmt::format("{:<20} {:>12} {:>12} {:>10} {:>10} {:>12} {:>8.3f}  {}{}\n", c.format,
                             c.footprint.values, c.footprint.indices, c.footprint.pointers, c.footprint.metadata,
                             c.footprint.total(), c.ratio_to_dense, c.detail,
                             c.round_trip_exact ? "" : "  [ROUND TRIP FAILED]");
  }
  for (const auto& c : costs)
    SB_CHECK(!c.available || c.round_trip_exact, "format {} did not reproduce the weight exactly", c.format);
  return 0;
}

}  // namespace

Command add_formats(CLI::App& root) {
  auto* app = root.add_subcommand("formats", "prune one weight and show what it costs in every storage format");
  auto o = std::make_shared<FormatsOptions>();
  auto* shape = app->add_option("--shape", o->shape, "weight shape ROWSxCOLS (random values)")->capture_default_str();
  app->add_option("--matrix", o->matrix, "a DLMC .smtx[.gz] pattern instead of a random weight")->excludes(shape);
  app->add_option("--pattern", o->pattern, "dense|unstructured|filter|channel|block:RxC|balanced:bank=B|nm:N:M")
      ->capture_default_str();
  app->add_option("--sparsity", o->sparsity, "fraction pruned, in [0, 1)")->capture_default_str();
  app->add_option("--seed", o->seed, "random seed")->capture_default_str();
  app->add_option("--value-type", o->value_type, "value dtype for footprints: f32|f16|bf16")->capture_default_str();
  app->add_option("--format", o->format, "output format")->check(CLI::IsMember({"table", "json"}));
  return {app, [o] { return run_formats(*o); }};
}

}  // namespace sb::cli
