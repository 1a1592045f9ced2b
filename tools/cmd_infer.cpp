// sparsebench infer --model M --input x.npy --output y.npy [--pattern P --sparsity S]: one
// inference on the user's tensor, so outputs can be checked with NumPy / PyTorch.
#include <iostream>

#include <fmt/format.h>

#include "commands.h"
#include "sparsebench/core/error.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/runtime/executor.h"
#include "sparsebench/runtime/npy.h"
#include "sparsebench/runtime/passes.h"

namespace sb::cli {
namespace {

struct InferOptions {
  std::string model, input, output, pattern = "dense", kernel = "auto", allocation = "uniform";
  double sparsity = 0.9;
  std::uint64_t seed = 0x5eed;
};

int run_infer(const InferOptions& o) {
  const Tensor x = read_npy(o.input);
  SB_CHECK(x.dim() >= 1 && x.size(0) >= 1, "--input {}: needs a batch dimension, got {}", o.input,
           shape_to_string(x.shape()));
  ModelOptions mo;
  mo.batch = x.size(0);
  mo.seed = o.seed;
  if (o.model == "bert_base" && x.dim() == 2) mo.seq_len = x.size(1);
  Graph g = build_model(o.model, mo);
  const Value& in = g.value(g.inputs()[0]);
  SB_CHECK(x.shape() == in.shape && x.dtype() == in.dtype, "--input {}: model {} expects {} {} (batch from the file), got {} {}",
           o.input, o.model, dtype_name(in.dtype), shape_to_string(in.shape), dtype_name(x.dtype()),
           shape_to_string(x.shape()));
  PruneOptions po;
  po.pattern = Pattern::parse(o.pattern);
  po.sparsity = po.pattern.kind == Pattern::Kind::dense ? 0.0 : o.sparsity;
  po.allocation = parse_allocation(o.allocation);
  const PruneReport rep = prune(g, po);
  CompileOptions co;
  co.kernel = o.kernel;
  Executor ex(g, co);
  const Tensor y = ex.run({x})[0];
  write_npy(o.output, y);
  std::cout << fmt::format("{}: {} {} -> {} {} ({} at {:.3f}, kernel {})\n", o.model, dtype_name(x.dtype()),
                           shape_to_string(x.shape()), o.output, shape_to_string(y.shape()), po.pattern.to_string(),
                           rep.achieved, o.kernel);
  return 0;
}

}  // namespace

Command add_infer(CLI::App& root) {
  auto* app = root.add_subcommand("infer", "one inference of a zoo model on a .npy tensor, output to .npy");
  auto o = std::make_shared<InferOptions>();
  app->add_option("--model", o->model, "a model of `sparsebench models`")->required();
  app->add_option("--input", o->input, "input .npy (f32 NCHW images, or i32/i64 token ids [batch, tokens])")->required();
  app->add_option("--output", o->output, "output .npy (f32)")->required();
  app->add_option("--pattern", o->pattern, std::string("pruning pattern: ") + kPatternGrammar)->capture_default_str();
  app->add_option("--sparsity", o->sparsity, "target sparsity, in [0, 1)")->capture_default_str();
  app->add_option("--allocation", o->allocation, "uniform | global | erk")->capture_default_str();
  app->add_option("--kernel", o->kernel, "auto | dense | sparse | an implementation name")->capture_default_str();
  app->add_option("--seed", o->seed, "weight seed")->capture_default_str();
  return {app, [o] { return run_infer(*o); }};
}

}  // namespace sb::cli
