// sparsebench prune MODEL --pattern P --sparsity S -o out.onnx: prunes an ONNX file (or a zoo model,
// exported as it is with --pattern dense) and writes it with pruned weights as sparse initializers.
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "commands.h"
#include "sparsebench/core/error.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/runtime/passes.h"
#ifdef SB_WITH_ONNX
#include "sparsebench/onnx/onnx.h"
#endif

namespace sb::cli {
namespace {

struct PruneCliOptions {
  std::string model, output, pattern = "unstructured", allocation = "uniform";
  double sparsity = 0.9;
  std::int64_t batch = 1, seq_len = 0;
  std::uint64_t seed = 0x5eed;
  std::vector<std::string> dense_layers, prune_layers;
  bool dense_initializers = false;
};

int run_prune(const PruneCliOptions& o) {
#ifndef SB_WITH_ONNX
  fail("prune: ONNX support is not built in (install libonnx-dev and rebuild)");
#else
  ModelOptions mo;
  mo.batch = o.batch;
  mo.seq_len = o.seq_len;
  mo.seed = o.seed;
  Graph g = build_model(o.model, mo);   // a zoo name, or a .onnx file (the loader hook)
  PruneOptions po;
  po.pattern = Pattern::parse(o.pattern);
  po.sparsity = po.pattern.kind == Pattern::Kind::dense ? 0.0 : o.sparsity;
  po.allocation = parse_allocation(o.allocation);
  po.dense_layers = o.dense_layers;
  po.prune_layers = o.prune_layers;
  const PruneReport rep = prune(g, po);
  OnnxExportOptions eo;
  eo.sparse_initializers = !o.dense_initializers;
  const OnnxExportReport er = export_onnx(g, o.output, eo);
  std::size_t in_bytes = 0;
  std::error_code ec;
  if (o.model.ends_with(".onnx")) in_bytes = std::filesystem::file_size(o.model, ec);
  std::cout << fmt::format("{}: {} at {:.3f} (achieved {:.3f} over the prunable layers), params {} -> {}\n", o.model,
                           po.pattern.to_string(), po.sparsity, rep.achieved, rep.params_before, rep.params_after);
  std::cout << fmt::format("{}: {} bytes ({} sparse + {} dense initializers; weights {:.2f} MB stored, {:.2f} MB dense){}\n",
                           o.output, er.file_bytes, er.sparse_initializers, er.dense_initializers,
                           static_cast<double>(er.weight_bytes_stored) / 1e6, static_cast<double>(er.weight_bytes_dense) / 1e6,
                           in_bytes ? fmt::format(", input file {} bytes", in_bytes) : std::string());
  return 0;
#endif
}

}  // namespace

Command add_prune(CLI::App& root) {
#ifdef SB_WITH_ONNX
  register_onnx_model_loader();   // build_model() accepts .onnx paths for every command
#endif
  auto* app = root.add_subcommand("prune", "prune an ONNX model (or export a zoo model) to ONNX with sparse initializers");
  auto o = std::make_shared<PruneCliOptions>();
  app->add_option("model", o->model, "a .onnx file, or a model of `sparsebench models`")->required();
  app->add_option("-o,--output", o->output, "output .onnx")->required();
  app->add_option("--pattern", o->pattern, std::string("pruning pattern (dense: export as is): ") + kPatternGrammar)->capture_default_str();
  app->add_option("--sparsity", o->sparsity, "target sparsity, in [0, 1)")->capture_default_str();
  app->add_option("--allocation", o->allocation, "uniform | global | erk")->capture_default_str();
  app->add_option("--dense-layers", o->dense_layers, "globs of layers kept dense");
  app->add_option("--prune-layers", o->prune_layers, "globs of layers pruned despite the defaults");
  app->add_option("--batch", o->batch, "batch for symbolic batch dims (the exported file keeps a symbolic batch)")->capture_default_str();
  app->add_option("--seq-len", o->seq_len, "size of other symbolic input dims (tokens)");
  app->add_option("--seed", o->seed, "weight seed (zoo models)")->capture_default_str();
  app->add_flag("--dense-initializers", o->dense_initializers, "store every weight dense (no sparse_initializer)");
  return {app, [o] { return run_prune(*o); }};
}

}  // namespace sb::cli
