#pragma once
// A runtime Graph executed with libtorch operations: the reference execution of M3 (runtime output
// vs torch on the same graph and weights) and the engine under training (M4). No torch header
// here: the torch side stays in src/train (library sparsebench_train, built with libtorch only).
#include <memory>
#include <vector>

#include "sparsebench/core/tensor.h"
#include "sparsebench/prune/pattern.h"
#include "sparsebench/runtime/graph.h"

namespace sb {

// Threads of libtorch's intra-op pool (0 = sb::num_threads()).
void set_torch_threads(int n);

class TorchGraph {
 public:
  // Copies the graph's structure and parameters into torch tensors (masks applied: a pruned weight
  // is exactly zero). BatchNorm runs as a node (nothing folded), as torch's eval mode does.
  explicit TorchGraph(const Graph& graph);
  ~TorchGraph();
  TorchGraph(TorchGraph&&) noexcept;
  TorchGraph& operator=(TorchGraph&&) noexcept;

  // Inference (BatchNorm on running statistics, no autograd). inputs: one per graph input, logical
  // shape (any batch size; dim 0 is the batch), f32 or i32 token ids. Returns one f32 tensor per
  // graph output, contiguous.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);

  // Writes the (possibly trained) parameters and masks back into `graph` (same structure as the
  // one this was made from; throws naming the first parameter that differs).
  void export_to(Graph& graph, const Pattern& pattern = {}) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sb
