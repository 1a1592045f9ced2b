#pragma once
// The graph IR: a model as an ordered list of nodes over values.
//
// Conventions (chosen so that a second executor written with torch ops is a line per op):
// - Shapes are the logical, PyTorch shapes: images NCHW, sequences [batch, tokens, hidden],
//   features [batch, features]. Batch is dimension 0 of every graph input and is fixed when the
//   graph is built (Graph::with_batch rebuilds shapes for another batch).
// - Parameters live in PyTorch layout and under PyTorch names, per node: Conv2d "weight"
//   [out, in/groups, kh, kw] and "bias" [out]; Linear "weight" [out, in] and "bias" [out];
//   BatchNorm "weight", "bias", "running_mean", "running_var" [C]; LayerNorm "weight", "bias"
//   [hidden]; Embedding "weight" [vocab, hidden]; Constant "value"; ClassToken "token" [1, 1, hidden].
//   named_parameters() lists them as "<node name>.<param name>", torch's state_dict convention.
// - Nodes are stored in a topological order (a node's inputs are produced by earlier nodes); the
//   builder cannot make anything else. Every node has exactly one output value.
// - Pruning state is per node: `mask` (u8, the weight's shape, 1 = kept) and the pattern; the
//   weight itself holds zeros where the mask does.
//
// Each op is one torch call (for the libtorch bridge of M4; x = the input, P = the node's params):
//   conv2d      torch::conv2d(x, P.weight * mask, P.bias, stride, padding, dilation, groups)
//   linear      torch::linear(x, P.weight * mask, P.bias)        matmul   torch::matmul(a, b)
//   batch_norm  torch::batch_norm(x, P.weight, P.bias, P.running_mean, P.running_var, training, 0.1, eps)
//   relu / relu6 / gelu   relu, hardtanh(0, 6), gelu (approximate "none": erf)
//   add         a + b (numpy broadcasting)                       max_pool max_pool2d(x, k, s, p)
//   avg_pool    avg_pool2d(x, k, s, p, ceil_mode false, count_include_pad true)
//   global_avg_pool adaptive_avg_pool2d(x, 1)                    flatten  x.flatten(axis)
//   reshape     x.reshape(shape)     transpose x.transpose(axis, axis2)     select x.select(axis, axis2)
//   layer_norm  torch::layer_norm(x, {C}, P.weight, P.bias, eps) softmax  x.softmax(axis)
//   attention   per head h of d = C / heads: q, k, v viewed [B, T, heads, d] and transposed to
//               [B, heads, T, d]; softmax(q k^T / sqrt(d), -1) v, transposed back, reshaped [B, T, C]
//               (the projections are separate Linear nodes q / k / v, not torch's packed in_proj)
//   embedding   torch::embedding(P.weight, ids)                  constant P.value
//   cls_token   torch::cat({P.token.expand({B, -1, -1}), x}, 1)  concat   torch::cat(xs, axis)
//   sigmoid / tanh / erf / sqrt   the torch function of that name
//   mul / sub / div / pow         a * b, a - b, a / b, torch::pow(a, b) (numpy broadcasting)
//   reduce_mean x.mean(axes (all if empty), keepdims)
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sparsebench/core/rng.h"
#include "sparsebench/core/tensor.h"
#include "sparsebench/prune/pattern.h"

namespace sb {

enum class OpKind {
  input,            // a graph input (f32, or i32 token ids)
  constant,         // a learned tensor "value" (e.g. a position embedding [1, tokens, hidden])
  conv2d,           // x [N, Cin, H, W] -> [N, Cout, Ho, Wo]; groups, stride, padding, dilation
  linear,           // x [..., in] -> [..., out]: weight x activation
  matmul,           // a [..., M, K] x b [..., K, N] -> [..., M, N]: activation x activation
  batch_norm,       // inference BatchNorm over dim 1 (folded into the preceding conv by a pass)
  relu,
  relu6,
  gelu,             // exact: x * 0.5 * (1 + erf(x / sqrt(2)))
  add,              // a + b, numpy broadcasting (the output is the broadcast shape)
  max_pool,         // kernel, stride, padding (padding counts as -inf)
  avg_pool,         // kernel, stride, padding (count_include_pad = true, torch's default)
  global_avg_pool,  // [N, C, H, W] -> [N, C, 1, 1]
  flatten,          // dims from `axis` to the end merged (torch.flatten(x, axis))
  reshape,          // to `shape` (one -1 allowed), row-major semantics
  transpose,        // swaps dims `axis` and `axis2`
  layer_norm,       // over the last dim, eps
  softmax,          // over dim `axis`
  attention,        // fused multi-head self-attention core: q, k, v [B, T, C] -> [B, T, C],
                    // softmax(q_h k_h^T / sqrt(C / heads)) v_h per head (projections are Linear nodes)
  embedding,        // ids i32 [B, T] -> [B, T, hidden]
  cls_token,        // [B, T, C] -> [B, T + 1, C]: the learned "token" prepended (ViT)
  concat,           // along `axis`
  select,           // x.select(axis, axis2): index `axis2` of dim `axis`, that dim removed (ViT's x[:, 0])
  // Elementwise and reductions for imported models (ONNX ops used on their own, outside the
  // patterns the importer maps onto the fused ops above).
  sigmoid,
  tanh,
  erf,
  sqrt,
  mul,              // a * b, numpy broadcasting (either operand; the output is the broadcast shape)
  sub,              // a - b, numpy broadcasting
  div,              // a / b, numpy broadcasting
  pow,              // a ^ b, numpy broadcasting (b is typically a one-element constant)
  reduce_mean,      // mean over `axes` (empty: all dims), the reduced dims kept as 1 if `keepdims`
};
const char* op_name(OpKind op);
// numpy broadcasting of two shapes (aligned at the last dim; a dim of 1 stretches); false if they
// do not broadcast.
bool broadcast_shapes(const Shape& a, const Shape& b, Shape& out);

struct Attrs {
  std::array<std::int64_t, 2> kernel{1, 1};    // conv / pool window (h, w)
  std::array<std::int64_t, 2> stride{1, 1};
  std::array<std::int64_t, 2> padding{0, 0};   // symmetric zero padding (h, w)
  std::array<std::int64_t, 2> dilation{1, 1};
  std::int64_t groups = 1;                     // conv2d; groups == Cin == Cout is depthwise
  std::int64_t axis = 0;                       // flatten start / softmax / concat / transpose dim0
  std::int64_t axis2 = 0;                      // transpose dim1 / select index
  Shape shape;                                 // reshape target
  std::int64_t heads = 1;                      // attention
  double eps = 1e-5;                           // batch_norm / layer_norm
  std::vector<std::int64_t> axes;              // reduce_mean (negative counts from the back; empty: all)
  bool keepdims = true;                        // reduce_mean
};

struct Value {
  std::string name;
  Shape shape;
  DType dtype = DType::f32;
  int producer = -1;   // index of the node that writes it
};

struct Node {
  std::string name;              // e.g. "layer1.0.conv1"; unique in the graph
  OpKind op = OpKind::relu;
  std::vector<int> inputs;       // value ids
  int output = -1;               // value id
  Attrs attrs;
  std::map<std::string, Tensor> params;   // torch layout and names (see the top of this file)
  // Pruning state (conv2d / linear): u8 mask of the weight's shape, or undefined (dense).
  Tensor mask;
  Pattern pattern;               // what made the mask
  double sparsity = 0;           // achieved fraction of pruned weights

  bool has_weight() const { return op == OpKind::conv2d || op == OpKind::linear; }
  bool is_depthwise() const;     // conv2d with groups == Cin == Cout and groups > 1
  const Tensor& param(const std::string& key) const;   // throws naming node and key
};

// Parameters (learned tensors, as torch counts them: BatchNorm running statistics excluded) and
// FLOPs of one node. FLOPs: 2 per multiply-add for conv2d / linear / matmul /
// attention (dense-equivalent, masks ignored), one per output element for the other ops.
struct NodeCost {
  std::int64_t params = 0;
  std::int64_t flops = 0;
};

class Graph {
 public:
  // Adds a graph input of logical `shape` (batch first) and dtype f32 or i32; returns its value id.
  int add_input(const std::string& name, const Shape& shape, DType dtype = DType::f32);
  // Appends `node` (its inputs must be existing values, its name unique), infers its output shape
  // (throws sb::Error naming the node and what was expected), and returns the output value id.
  int add_node(Node node);
  void mark_output(int value);

  const std::vector<Node>& nodes() const { return nodes_; }
  std::vector<Node>& nodes() { return nodes_; }
  const std::vector<Value>& values() const { return values_; }
  const Value& value(int id) const;
  const std::vector<int>& inputs() const { return inputs_; }
  const std::vector<int>& outputs() const { return outputs_; }
  int find_node(const std::string& name) const;   // index, or -1
  // Indices of the nodes reading value `v`, in order.
  std::vector<int> consumers(int v) const;

  // Re-infers every shape from the inputs (after a pass changed parameters); throws like add_node.
  void infer_shapes();
  // A copy for another batch size (inputs' dim 0 replaced), shapes re-inferred. Parameters shared.
  // Reshape targets whose dim 0 is not -1 are taken to be the batch and replaced too (write -1
  // there for a batch-agnostic reshape).
  Graph with_batch(std::int64_t batch) const;
  // A deep copy (parameters and masks cloned), for passes that must not touch the original.
  Graph clone() const;
  // Removes nodes marked by `dead[i]`, rewiring readers of a removed node's output to
  // `replacement[i]` (a value id). Used by passes.
  void remove_nodes(const std::vector<bool>& dead, const std::vector<int>& replacement);

  NodeCost cost(int node) const;
  std::int64_t param_count() const;
  std::int64_t flops() const;
  // What the model IS, as 16 hex digits (FNV-1a 64): every node's op, name, wiring, attributes
  // and parameter names, shapes and dtypes; the inputs' names, dtypes and shapes without the batch
  // dim. Not the weight values, masks or batch: the same architecture at any batch, trained or
  // pruned, has one signature; a changed stride, activation or layer width changes it. Cached
  // checkpoints and resumed studies check it so that results of an older definition of a model
  // are never mixed with the current one.
  std::string signature() const;
  // Every parameter as ("<node>.<param>", tensor), in node order: the torch state_dict view.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;

 private:
  Shape infer(const Node& n) const;
  std::vector<Node> nodes_;
  std::vector<Value> values_;
  std::vector<int> inputs_, outputs_;
};

// Builds a graph with seeded random weights: He (kaiming normal, fan_in) for convolutions and
// linears followed by ReLU-family activations, Xavier/Glorot uniform otherwise (the caller says
// which through `init`), biases zero, BatchNorm at identity statistics with a small seeded
// perturbation (so folding is exercised), LayerNorm at weight 1 / bias 0, embeddings N(0, 0.02).
// Every function takes the input value id(s) and returns the output value id.
class Builder {
 public:
  enum class Init { he, xavier };
  explicit Builder(std::uint64_t seed = 0x5eed) : rng_(seed) {}
  int input(const std::string& name, const Shape& shape, DType dtype = DType::f32);
  int conv2d(const std::string& name, int x, std::int64_t out_channels, std::int64_t kernel,
             std::int64_t stride = 1, std::int64_t padding = 0, std::int64_t groups = 1, bool bias = false,
             std::int64_t dilation = 1, Init init = Init::he);
  int linear(const std::string& name, int x, std::int64_t out_features, bool bias = true, Init init = Init::xavier);
  int batch_norm(const std::string& name, int x, double eps = 1e-5);
  int layer_norm(const std::string& name, int x, double eps = 1e-12);
  int unary(const std::string& name, OpKind op, int x);   // relu, relu6, gelu, sigmoid, tanh, erf, sqrt
  int add(const std::string& name, int a, int b);
  int binary(const std::string& name, OpKind op, int a, int b);   // add, mul, sub, div, pow
  int reduce_mean(const std::string& name, int x, std::vector<std::int64_t> axes, bool keepdims = true);
  int matmul(const std::string& name, int a, int b);
  int max_pool(const std::string& name, int x, std::int64_t kernel, std::int64_t stride, std::int64_t padding = 0);
  int avg_pool(const std::string& name, int x, std::int64_t kernel, std::int64_t stride, std::int64_t padding = 0);
  int global_avg_pool(const std::string& name, int x);
  int flatten(const std::string& name, int x, std::int64_t start_dim = 1);
  int reshape(const std::string& name, int x, const Shape& shape);
  int transpose(const std::string& name, int x, std::int64_t d0, std::int64_t d1);
  int softmax(const std::string& name, int x, std::int64_t axis);
  int attention(const std::string& name, int q, int k, int v, std::int64_t heads);
  int embedding(const std::string& name, int ids, std::int64_t vocab, std::int64_t hidden);
  int constant(const std::string& name, const Shape& shape, float stddev);
  int cls_token(const std::string& name, int x);
  int concat(const std::string& name, const std::vector<int>& xs, std::int64_t axis);
  int select(const std::string& name, int x, std::int64_t axis, std::int64_t index);
  void output(int v) { g_.mark_output(v); }

  Graph& graph() { return g_; }
  Graph finish() { return std::move(g_); }
  Rng& rng() { return rng_; }

 private:
  int simple(const std::string& name, OpKind op, std::vector<int> inputs, Attrs attrs = {});
  Graph g_;
  Rng rng_;
};

}  // namespace sb
