#pragma once
// Graph passes: BatchNorm folding and model-level pruning.
#include <cstdint>
#include <string>
#include <vector>

#include "sparsebench/prune/allocation.h"
#include "sparsebench/prune/pattern.h"
#include "sparsebench/runtime/graph.h"

namespace sb {

// Folds every batch_norm whose input is produced by a conv2d read by nothing else (and not a graph
// output) into that conv: W'[o] = W[o] * g[o] / sqrt(var[o] + eps), b'[o] = (b[o] - mean[o]) *
// g[o] / sqrt(var[o] + eps) + beta[o]. Masks are unchanged (a pruned weight stays exactly 0).
// Returns the number of folded nodes. BatchNorms that cannot be folded stay and run as nodes.
int fold_batch_norm(Graph& graph);

// Shell-style glob: '*' any run of characters (dots included), '?' one character.
bool glob_match(const std::string& pattern, const std::string& text);

// Model-level pruning.
//
// Which weight layers (conv2d / linear) are prunable, by default (what users of torch pruning
// expect): every one except the first convolution (the one reading a graph input), the classifier
// (a layer whose output is a graph output), depthwise convolutions (too few weights per output
// to gain anything; they run dense) and embeddings (not weight layers here).
// `dense_layers` globs force matching layers dense; `prune_layers` globs make matching layers
// prunable even when a default keeps them dense (except depthwise). dense_layers wins.
//
// Unstructured / block / balanced / N:M: per-layer sparsities from sb::allocate_sparsity over
// the prunable layers, masks from sb::make_mask (magnitude), stored on the node, weights masked.
// A layer whose shape the pattern cannot fit (e.g. a bank wider than the layer) stays dense and
// its report says why.
//
// Filter / channel (structured): the model physically shrinks into a smaller dense model.
// The rule for channels tied across layers: a producer's output channels are removed only when
// every path from its output reaches, through channel-wise ops only (batch_norm, relu, relu6,
// gelu, max_pool, avg_pool, global_avg_pool, flatten of a [N, C, 1, 1], depthwise conv2d, which
// shrink with it), nothing but the inputs of dense-grouped conv2d / linear layers (which lose the
// matching input channels). Channels reaching an add (residual), concat, attention, layer_norm,
// reshape/transpose or a graph output are tied to something else: those layers are LEFT ALONE
// (dense), never pruned inconsistently. `filter` ranks a prunable layer's own filters; `channel`
// ranks a layer's input channels and removes them together with the filters of the single
// producer that feeds only it (so a layer whose producer also feeds others stays dense).
// With `shrink` false, the same decision is applied as masks instead (the producer's rows and the
// consumers' columns zeroed, shapes unchanged): the masked original the shrunk model must equal.
struct PruneOptions {
  Pattern pattern;
  double sparsity = 0;              // target over the prunable layers, in [0, 1)
  Allocation allocation = Allocation::uniform;
  std::vector<std::string> dense_layers;  // globs: kept dense
  std::vector<std::string> prune_layers;  // globs: prunable despite the defaults
  bool shrink = true;               // structured patterns: remove channels (true) or mask them
};

struct LayerPruneReport {
  std::string name;
  bool pruned = false;
  double requested = 0;   // this layer's sparsity from the allocation
  double achieved = 0;    // pruned fraction of its weight (structured: of the original weight)
  std::string note;       // why it stayed dense, or why achieved differs
};

struct PruneReport {
  std::vector<LayerPruneReport> layers;   // every weight layer, in node order
  double achieved = 0;                    // pruned fraction over the prunable layers' weights
  std::int64_t params_before = 0, params_after = 0;  // Graph::param_count (structured shrink)
};

// Throws sb::Error for a sparsity outside [0, 1) or a glob that matches no layer.
PruneReport prune(Graph& graph, const PruneOptions& options);

}  // namespace sb
