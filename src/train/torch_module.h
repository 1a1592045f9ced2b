#pragma once
// Internal (sees torch): a runtime Graph interpreted with ATen operations, so that autograd can
// train it. One generic interpreter of the IR's ops: no model is written twice.
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "sparsebench/core/tensor.h"
#include "sparsebench/runtime/graph.h"

namespace sb::train_detail {

// sb::Tensor (f32, i32 or u8, any strides) -> a new contiguous torch tensor owning its data.
at::Tensor to_torch(const Tensor& t);
// Torch tensor (f32, i32 or u8) -> a new contiguous sb::Tensor.
Tensor from_torch(const at::Tensor& t);

struct TorchParam {
  std::string node;     // node name
  std::string key;      // parameter name on the node ("weight", "running_mean", ...)
  at::Tensor value;     // a leaf; requires_grad when trainable
  at::Tensor mask;      // f32 0/1 of value's shape (conv2d / linear weights), undefined = dense
  bool trainable = true;  // false for BatchNorm running statistics
  bool decay = false;     // weight decay applies: conv2d / linear weights only
  std::string name() const { return node + "." + key; }
};

class TorchModule {
 public:
  // Copies every parameter of `graph` into torch leaves, and its masks (pruned weights zeroed).
  explicit TorchModule(const Graph& graph);

  // Runs the graph; `training` selects BatchNorm batch statistics (and updates the running ones).
  // Inputs: one per graph input, any batch size. Returns one tensor per graph output.
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs, bool training);

  // Training speed (the trainer turns it on; TorchGraph's reference execution leaves it off):
  // convolution outputs are made channels-last, so oneDNN runs them without reordering to and from
  // its blocked layout, and in training mode each BatchNorm (with the ReLU/ReLU6 that alone
  // consumes it) runs as one autograd function over channels-last rows (torch_batchnorm.h).
  // Results are the same function up to float rounding.
  void set_fast_training(bool on) { fast_training_ = on; }

  std::vector<TorchParam>& params() { return params_; }
  const std::vector<TorchParam>& params() const { return params_; }
  // Masks taken from the graph's nodes (u8, weight-shaped); nodes without one become dense.
  void set_masks_from(const Graph& graph);
  // w *= mask on every masked weight (no autograd).
  void apply_masks();
  // grad *= mask: a pruned weight gets no gradient.
  void mask_grads();
  // Writes every parameter (new sb::Tensors) and the masks back into `graph`, which must have the
  // structure this module was made from (node names, parameter shapes); throws naming the first
  // mismatch. Pattern and sparsity of masked nodes are updated from `pattern`.
  void export_to(Graph& graph, const Pattern& pattern) const;
  const Graph& graph() const { return graph_; }

 private:
  Graph graph_;                               // structure; its parameters are not used when running
  std::vector<TorchParam> params_;
  std::vector<std::vector<int>> node_params_; // per node: indices into params_, by key order
  int find(int node, const char* key) const;  // index into params_, or -1
  void plan_fusion();
  bool fast_training_ = false;
  // Per node: for a batch_norm, the relu/relu6 node that is the only consumer of its output; for
  // an add, such a relu (fused by add_relu); else -1.
  std::vector<int> act_after_;
};

}  // namespace sb::train_detail
