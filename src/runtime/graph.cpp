// The graph IR: construction, shape inference, costs.
#include "sparsebench/runtime/graph.h"

#include <cmath>

#include <fmt/format.h>

#include "sparsebench/core/error.h"
#include "sparsebench/core/hash.h"

namespace sb {

const char* op_name(OpKind op) {
  switch (op) {
    case OpKind::input: return "input";
    case OpKind::constant: return "constant";
    case OpKind::conv2d: return "conv2d";
    case OpKind::linear: return "linear";
    case OpKind::matmul: return "matmul";
    case OpKind::batch_norm: return "batch_norm";
    case OpKind::relu: return "relu";
    case OpKind::relu6: return "relu6";
    case OpKind::gelu: return "gelu";
    case OpKind::add: return "add";
    case OpKind::max_pool: return "max_pool";
    case OpKind::avg_pool: return "avg_pool";
    case OpKind::global_avg_pool: return "global_avg_pool";
    case OpKind::flatten: return "flatten";
    case OpKind::reshape: return "reshape";
    case OpKind::transpose: return "transpose";
    case OpKind::layer_norm: return "layer_norm";
    case OpKind::softmax: return "softmax";
    case OpKind::attention: return "attention";
    case OpKind::embedding: return "embedding";
    case OpKind::cls_token: return "cls_token";
    case OpKind::concat: return "concat";
    case OpKind::select: return "select";
    case OpKind::sigmoid: return "sigmoid";
    case OpKind::tanh: return "tanh";
    case OpKind::erf: return "erf";
    case OpKind::sqrt: return "sqrt";
    case OpKind::mul: return "mul";
    case OpKind::sub: return "sub";
    case OpKind::div: return "div";
    case OpKind::pow: return "pow";
    case OpKind::reduce_mean: return "reduce_mean";
  }
  return "?";
}

bool Node::is_depthwise() const {
  if (op != OpKind::conv2d || attrs.groups <= 1) return false;
  auto it = params.find("weight");
  if (it == params.end()) return false;
  const Shape& w = it->second.shape();
  return w[1] == 1 && w[0] == attrs.groups;
}

const Tensor& Node::param(const std::string& key) const {
  auto it = params.find(key);
  SB_CHECK(it != params.end() && it->second.defined(), "node '{}' ({}): parameter '{}' missing", name,
           op_name(op), key);
  return it->second;
}

const Value& Graph::value(int id) const {
  SB_CHECK(id >= 0 && id < static_cast<int>(values_.size()), "value id {} out of range (graph has {})", id,
           values_.size());
  return values_[id];
}

int Graph::add_input(const std::string& name, const Shape& shape, DType dtype) {
  SB_CHECK(dtype == DType::f32 || dtype == DType::i32, "input '{}': dtype must be f32 or i32, got {}", name,
           dtype_name(dtype));
  SB_CHECK(!shape.empty(), "input '{}': needs at least the batch dimension", name);
  for (auto d : shape) SB_CHECK(d >= 1, "input '{}': every dimension must be >= 1, got {}", name, shape_to_string(shape));
  values_.push_back(Value{name, shape, dtype, -1});
  inputs_.push_back(static_cast<int>(values_.size()) - 1);
  return inputs_.back();
}

int Graph::find_node(const std::string& name) const {
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].name == name) return static_cast<int>(i);
  return -1;
}

std::vector<int> Graph::consumers(int v) const {
  std::vector<int> out;
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    for (int in : nodes_[i].inputs)
      if (in == v) {
        out.push_back(static_cast<int>(i));
        break;
      }
  return out;
}

void Graph::mark_output(int v) {
  value(v);
  outputs_.push_back(v);
}

int Graph::add_node(Node node) {
  SB_CHECK(!node.name.empty(), "a {} node needs a name", op_name(node.op));
  SB_CHECK(find_node(node.name) < 0, "node '{}': the name is already used", node.name);
  for (int in : node.inputs)
    SB_CHECK(in >= 0 && in < static_cast<int>(values_.size()), "node '{}': input value id {} does not exist",
             node.name, in);
  Shape out = infer(node);
  DType dt = DType::f32;
  values_.push_back(Value{node.name, out, dt, static_cast<int>(nodes_.size())});
  node.output = static_cast<int>(values_.size()) - 1;
  nodes_.push_back(std::move(node));
  return nodes_.back().output;
}

bool broadcast_shapes(const Shape& a, const Shape& b, Shape& out) {
  const std::size_t r = std::max(a.size(), b.size());
  out.assign(r, 1);
  for (std::size_t k = 0; k < r; ++k) {
    const std::int64_t x = k < r - a.size() ? 1 : a[k - (r - a.size())];
    const std::int64_t y = k < r - b.size() ? 1 : b[k - (r - b.size())];
    if (x != y && x != 1 && y != 1) return false;
    out[k] = x == 1 ? y : x;
  }
  return true;
}

namespace {
std::int64_t norm_axis(const Node& n, std::int64_t axis, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  std::int64_t a = axis < 0 ? axis + r : axis;
  SB_CHECK(a >= 0 && a < r, "node '{}' ({}): axis {} out of range for rank {}", n.name, op_name(n.op), axis, r);
  return a;
}
std::int64_t window_out(const Node& n, std::int64_t in, int d) {
  const auto& a = n.attrs;
  const std::int64_t eff = a.dilation[d] * (a.kernel[d] - 1) + 1;
  const std::int64_t o = (in + 2 * a.padding[d] - eff) / a.stride[d] + 1;
  SB_CHECK(a.stride[d] >= 1 && a.kernel[d] >= 1 && a.padding[d] >= 0 && in + 2 * a.padding[d] >= eff && o >= 1,
           "node '{}' ({}): window {} (dilation {}, stride {}, padding {}) does not fit input size {} along dim {}",
           n.name, op_name(n.op), a.kernel[d], a.dilation[d], a.stride[d], a.padding[d], in, d + 2);
  return o;
}
}  // namespace

Shape Graph::infer(const Node& n) const {
  auto in = [&](std::size_t i) -> const Shape& { return values_[n.inputs[i]].shape; };
  auto want_inputs = [&](std::size_t count) {
    SB_CHECK(n.inputs.size() == count, "node '{}' ({}): expected {} input(s), got {}", n.name, op_name(n.op), count,
             n.inputs.size());
    for (std::size_t i = 0; i < count; ++i) {
      const bool ids_ok = n.op == OpKind::embedding;
      SB_CHECK(ids_ok || values_[n.inputs[i]].dtype == DType::f32,
               "node '{}' ({}): input '{}' must be f32, got {}", n.name, op_name(n.op), values_[n.inputs[i]].name,
               dtype_name(values_[n.inputs[i]].dtype));
    }
  };
  auto want_rank = [&](const Shape& s, std::size_t rank, const char* what) {
    SB_CHECK(s.size() == rank, "node '{}' ({}): {} must have rank {}, got {}", n.name, op_name(n.op), what, rank,
             shape_to_string(s));
  };
  auto want_param = [&](const char* key, const Shape& shape) {
    const Tensor& t = n.param(key);
    SB_CHECK(t.shape() == shape && t.dtype() == DType::f32, "node '{}' ({}): parameter '{}' must be f32 {}, got {} {}",
             n.name, op_name(n.op), key, shape_to_string(shape), dtype_name(t.dtype()), shape_to_string(t.shape()));
  };
  auto check_mask = [&]() {
    if (!n.mask.defined()) return;
    const Tensor& w = n.param("weight");
    SB_CHECK(n.mask.dtype() == DType::u8 && n.mask.shape() == w.shape(),
             "node '{}' ({}): mask must be u8 {}, got {} {}", n.name, op_name(n.op), shape_to_string(w.shape()),
             dtype_name(n.mask.dtype()), shape_to_string(n.mask.shape()));
  };

  switch (n.op) {
    case OpKind::input: fail(fmt::format("node '{}': inputs are added with add_input", n.name));
    case OpKind::constant: {
      want_inputs(0);
      return n.param("value").shape();
    }
    case OpKind::conv2d: {
      want_inputs(1);
      const Shape& x = in(0);
      want_rank(x, 4, "the input (N, C, H, W)");
      const Tensor& w = n.param("weight");
      SB_CHECK(w.dim() == 4, "node '{}' (conv2d): weight must be [out, in/groups, kh, kw], got {}", n.name,
               shape_to_string(w.shape()));
      const std::int64_t g = n.attrs.groups;
      SB_CHECK(g >= 1 && x[1] % g == 0 && w.size(0) % g == 0,
               "node '{}' (conv2d): groups {} must divide the input channels {} and the output channels {}", n.name, g,
               x[1], w.size(0));
      SB_CHECK(w.size(1) * g == x[1], "node '{}' (conv2d): weight expects {} input channels ({} x groups {}), the input has {}",
               n.name, w.size(1) * g, w.size(1), g, x[1]);
      SB_CHECK(w.size(2) == n.attrs.kernel[0] && w.size(3) == n.attrs.kernel[1],
               "node '{}' (conv2d): weight kernel {}x{} differs from the attribute {}x{}", n.name, w.size(2), w.size(3),
               n.attrs.kernel[0], n.attrs.kernel[1]);
      if (n.params.count("bias")) want_param("bias", {w.size(0)});
      check_mask();
      return {x[0], w.size(0), window_out(n, x[2], 0), window_out(n, x[3], 1)};
    }
    case OpKind::linear: {
      want_inputs(1);
      Shape x = in(0);
      SB_CHECK(x.size() >= 2, "node '{}' (linear): input must be [..., in], got {}", n.name, shape_to_string(x));
      const Tensor& w = n.param("weight");
      SB_CHECK(w.dim() == 2 && w.size(1) == x.back(), "node '{}' (linear): weight must be [out, {}], got {}", n.name,
               x.back(), shape_to_string(w.shape()));
      if (n.params.count("bias")) want_param("bias", {w.size(0)});
      check_mask();
      x.back() = w.size(0);
      return x;
    }
    case OpKind::matmul: {
      want_inputs(2);
      const Shape &a = in(0), &b = in(1);
      SB_CHECK(a.size() >= 2 && a.size() == b.size(), "node '{}' (matmul): operands must have the same rank >= 2, got {} and {}",
               n.name, shape_to_string(a), shape_to_string(b));
      for (std::size_t i = 0; i + 2 < a.size(); ++i)
        SB_CHECK(a[i] == b[i], "node '{}' (matmul): batch dims differ: {} and {}", n.name, shape_to_string(a),
                 shape_to_string(b));
      SB_CHECK(a.back() == b[b.size() - 2], "node '{}' (matmul): inner dims differ: {} x {}", n.name,
               shape_to_string(a), shape_to_string(b));
      Shape out = a;
      out.back() = b.back();
      return out;
    }
    case OpKind::batch_norm: {
      want_inputs(1);
      const Shape& x = in(0);
      SB_CHECK(x.size() >= 2, "node '{}' (batch_norm): input must be [N, C, ...], got {}", n.name, shape_to_string(x));
      for (const char* k : {"weight", "bias", "running_mean", "running_var"}) want_param(k, {x[1]});
      return x;
    }
    case OpKind::relu:
    case OpKind::relu6:
    case OpKind::gelu:
    case OpKind::sigmoid:
    case OpKind::tanh:
    case OpKind::erf:
    case OpKind::sqrt:
      want_inputs(1);
      return in(0);
    case OpKind::add:
    case OpKind::mul:
    case OpKind::sub:
    case OpKind::div:
    case OpKind::pow: {
      want_inputs(2);
      const Shape &a = in(0), &b = in(1);
      Shape out;
      SB_CHECK(broadcast_shapes(a, b, out), "node '{}' ({}): shapes {} and {} do not broadcast (numpy rules)", n.name,
               op_name(n.op), shape_to_string(a), shape_to_string(b));
      return out;
    }
    case OpKind::reduce_mean: {
      want_inputs(1);
      const Shape& x = in(0);
      std::vector<bool> red(x.size(), n.attrs.axes.empty());
      for (auto a : n.attrs.axes) red[norm_axis(n, a, x.size())] = true;
      Shape out;
      for (std::size_t d = 0; d < x.size(); ++d)
        if (!red[d]) out.push_back(x[d]);
        else if (n.attrs.keepdims) out.push_back(1);
      return out;
    }
    case OpKind::max_pool:
    case OpKind::avg_pool: {
      want_inputs(1);
      const Shape& x = in(0);
      want_rank(x, 4, "the input (N, C, H, W)");
      SB_CHECK(n.attrs.padding[0] * 2 <= n.attrs.kernel[0] && n.attrs.padding[1] * 2 <= n.attrs.kernel[1],
               "node '{}' ({}): padding must be at most half the window", n.name, op_name(n.op));
      return {x[0], x[1], window_out(n, x[2], 0), window_out(n, x[3], 1)};
    }
    case OpKind::global_avg_pool: {
      want_inputs(1);
      const Shape& x = in(0);
      want_rank(x, 4, "the input (N, C, H, W)");
      return {x[0], x[1], 1, 1};
    }
    case OpKind::flatten: {
      want_inputs(1);
      const Shape& x = in(0);
      const std::int64_t a = norm_axis(n, n.attrs.axis, x.size());
      Shape out(x.begin(), x.begin() + a);
      std::int64_t p = 1;
      for (std::size_t i = a; i < x.size(); ++i) p *= x[i];
      out.push_back(p);
      return out;
    }
    case OpKind::reshape: {
      want_inputs(1);
      const Shape& x = in(0);
      Shape out = n.attrs.shape;
      int infer_at = -1;
      std::int64_t known = 1;
      for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i] == -1) {
          SB_CHECK(infer_at < 0, "node '{}' (reshape): at most one -1 in {}", n.name, shape_to_string(out));
          infer_at = static_cast<int>(i);
        } else {
          SB_CHECK(out[i] >= 1, "node '{}' (reshape): bad target {}", n.name, shape_to_string(out));
          known *= out[i];
        }
      }
      if (infer_at >= 0 && known > 0 && shape_numel(x) % known == 0) out[infer_at] = shape_numel(x) / known;
      SB_CHECK(shape_numel(out) == shape_numel(x), "node '{}' (reshape): cannot reshape {} to {}", n.name,
               shape_to_string(x), shape_to_string(n.attrs.shape));
      return out;
    }
    case OpKind::transpose: {
      want_inputs(1);
      Shape x = in(0);
      const auto a = norm_axis(n, n.attrs.axis, x.size()), b = norm_axis(n, n.attrs.axis2, x.size());
      std::swap(x[a], x[b]);
      return x;
    }
    case OpKind::layer_norm: {
      want_inputs(1);
      const Shape& x = in(0);
      want_param("weight", {x.back()});
      want_param("bias", {x.back()});
      return x;
    }
    case OpKind::softmax: {
      want_inputs(1);
      norm_axis(n, n.attrs.axis, in(0).size());
      return in(0);
    }
    case OpKind::attention: {
      want_inputs(3);
      const Shape& q = in(0);
      want_rank(q, 3, "q (batch, tokens, hidden)");
      SB_CHECK(in(1) == q && in(2) == q, "node '{}' (attention): q, k, v must have the same shape, got {}, {}, {}",
               n.name, shape_to_string(q), shape_to_string(in(1)), shape_to_string(in(2)));
      SB_CHECK(n.attrs.heads >= 1 && q[2] % n.attrs.heads == 0, "node '{}' (attention): heads {} must divide hidden {}",
               n.name, n.attrs.heads, q[2]);
      return q;
    }
    case OpKind::embedding: {
      want_inputs(1);
      const Value& ids = values_[n.inputs[0]];
      SB_CHECK(ids.dtype == DType::i32 && ids.shape.size() == 2,
               "node '{}' (embedding): input must be i32 token ids [batch, tokens], got {} {}", n.name,
               dtype_name(ids.dtype), shape_to_string(ids.shape));
      const Tensor& w = n.param("weight");
      SB_CHECK(w.dim() == 2, "node '{}' (embedding): weight must be [vocab, hidden]", n.name);
      return {ids.shape[0], ids.shape[1], w.size(1)};
    }
    case OpKind::cls_token: {
      want_inputs(1);
      const Shape& x = in(0);
      want_rank(x, 3, "the input (batch, tokens, hidden)");
      want_param("token", {1, 1, x[2]});
      return {x[0], x[1] + 1, x[2]};
    }
    case OpKind::concat: {
      SB_CHECK(!n.inputs.empty(), "node '{}' (concat): needs at least one input", n.name);
      want_inputs(n.inputs.size());
      Shape out = in(0);
      const auto a = norm_axis(n, n.attrs.axis, out.size());
      for (std::size_t i = 1; i < n.inputs.size(); ++i) {
        const Shape& s = in(i);
        bool ok = s.size() == out.size();
        for (std::size_t d = 0; ok && d < s.size(); ++d) ok = static_cast<std::int64_t>(d) == a || s[d] == out[d];
        SB_CHECK(ok, "node '{}' (concat): input {} has shape {}, expected {} except along dim {}", n.name, i,
                 shape_to_string(s), shape_to_string(in(0)), a);
        out[a] += s[a];
      }
      return out;
    }
    case OpKind::select: {
      want_inputs(1);
      Shape x = in(0);
      SB_CHECK(x.size() >= 2, "node '{}' (select): input must have rank >= 2, got {}", n.name, shape_to_string(x));
      const auto a = norm_axis(n, n.attrs.axis, x.size());
      SB_CHECK(n.attrs.axis2 >= 0 && n.attrs.axis2 < x[a], "node '{}' (select): index {} outside [0, {}) of dim {}",
               n.name, n.attrs.axis2, x[a], a);
      x.erase(x.begin() + a);
      return x;
    }
  }
  fail(fmt::format("node '{}': unknown op", n.name));
}

void Graph::infer_shapes() {
  for (auto& n : nodes_) values_[n.output].shape = infer(n);
}

Graph Graph::with_batch(std::int64_t batch) const {
  SB_CHECK(batch >= 1, "batch must be >= 1, got {}", batch);
  Graph g = *this;
  for (int v : g.inputs_) g.values_[v].shape[0] = batch;
  // Reshape targets carry the batch in dim 0 by convention of the builders.
  for (auto& n : g.nodes_)
    if (n.op == OpKind::reshape && !n.attrs.shape.empty() && n.attrs.shape[0] != -1) n.attrs.shape[0] = batch;
  g.infer_shapes();
  return g;
}

Graph Graph::clone() const {
  Graph g = *this;
  for (auto& n : g.nodes_) {
    for (auto& [k, t] : n.params) t = t.clone();
    if (n.mask.defined()) n.mask = n.mask.clone();
  }
  return g;
}

void Graph::remove_nodes(const std::vector<bool>& dead, const std::vector<int>& replacement) {
  SB_CHECK(dead.size() == nodes_.size() && replacement.size() == nodes_.size(), "remove_nodes: one flag per node");
  std::vector<int> remap(values_.size());
  for (std::size_t v = 0; v < values_.size(); ++v) remap[v] = static_cast<int>(v);
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (dead[i]) remap[nodes_[i].output] = replacement[i];
  auto resolve = [&](int v) {
    while (remap[v] != v) v = remap[v];
    return v;
  };
  std::vector<Node> kept;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (dead[i]) continue;
    Node n = std::move(nodes_[i]);
    for (int& in : n.inputs) in = resolve(in);
    kept.push_back(std::move(n));
  }
  for (int& o : outputs_) o = resolve(o);
  nodes_ = std::move(kept);
  for (auto& v : values_) v.producer = -1;
  for (std::size_t i = 0; i < nodes_.size(); ++i) values_[nodes_[i].output].producer = static_cast<int>(i);
}

NodeCost Graph::cost(int index) const {
  const Node& n = nodes_.at(index);
  NodeCost c;
  // torch's parameters(): BatchNorm running statistics are buffers, not parameters.
  for (const auto& [k, t] : n.params)
    if (k != "running_mean" && k != "running_var") c.params += t.numel();
  const Shape& out = values_[n.output].shape;
  const std::int64_t out_numel = shape_numel(out);
  switch (n.op) {
    case OpKind::conv2d: {
      const Shape& w = n.param("weight").shape();
      c.flops = 2 * out_numel * w[1] * w[2] * w[3];
      break;
    }
    case OpKind::linear: c.flops = 2 * out_numel * n.param("weight").size(1); break;
    case OpKind::matmul: c.flops = 2 * out_numel * values_[n.inputs[0]].shape.back(); break;
    case OpKind::attention: c.flops = 4 * out_numel * out[1]; break;
    case OpKind::reduce_mean: c.flops = shape_numel(values_[n.inputs[0]].shape); break;
    case OpKind::input:
    case OpKind::constant:
    case OpKind::flatten:
    case OpKind::reshape: c.flops = 0; break;
    default: c.flops = out_numel;
  }
  return c;
}

std::int64_t Graph::param_count() const {
  std::int64_t p = 0;
  for (std::size_t i = 0; i < nodes_.size(); ++i) p += cost(static_cast<int>(i)).params;
  return p;
}

std::string Graph::signature() const {
  std::string text;
  auto dims = [](const Shape& s, std::size_t from) {
    std::string t;
    for (std::size_t i = from; i < s.size(); ++i) t += fmt::format("{},", s[i]);
    return t;
  };
  for (int id : inputs_) {
    const Value& v = values_[static_cast<std::size_t>(id)];
    text += fmt::format("in {} {} [{}] {};", v.name, dtype_name(v.dtype), dims(v.shape, 1), id);
  }
  for (const Node& n : nodes_) {
    const Attrs& a = n.attrs;
    text += fmt::format("node {} {} in ", op_name(n.op), n.name);
    for (int i : n.inputs) text += fmt::format("{},", i);
    text += fmt::format(" out {} k {}x{} s {}x{} p {}x{} d {}x{} g {} ax {} {} shape [{}] h {} eps {:.9g} axes ",
                        n.output, a.kernel[0], a.kernel[1], a.stride[0], a.stride[1], a.padding[0], a.padding[1],
                        a.dilation[0], a.dilation[1], a.groups, a.axis, a.axis2, dims(a.shape, 0), a.heads, a.eps);
    for (std::int64_t x : a.axes) text += fmt::format("{},", x);
    text += a.keepdims ? " keep" : " drop";
    for (const auto& [k, t] : n.params) text += fmt::format(" {} {} [{}]", k, dtype_name(t.dtype()), dims(t.shape(), 0));
    text += ';';
  }
  text += "out ";
  for (int id : outputs_) text += fmt::format("{},", id);
  return fmt::format("{:016x}", fnv1a64(text));
}

std::int64_t Graph::flops() const {
  std::int64_t f = 0;
  for (std::size_t i = 0; i < nodes_.size(); ++i) f += cost(static_cast<int>(i)).flops;
  return f;
}

std::vector<std::pair<std::string, Tensor>> Graph::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& n : nodes_)
    for (const auto& [k, t] : n.params) out.emplace_back(n.name + "." + k, t);
  return out;
}

// ---- Builder ----------------------------------------------------------------------------------

int Builder::input(const std::string& name, const Shape& shape, DType dtype) { return g_.add_input(name, shape, dtype); }

int Builder::simple(const std::string& name, OpKind op, std::vector<int> inputs, Attrs attrs) {
  Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.attrs = std::move(attrs);
  return g_.add_node(std::move(n));
}

namespace {
void init_weight(Rng& rng, Tensor& w, std::int64_t fan_in, std::int64_t fan_out, Builder::Init init) {
  if (init == Builder::Init::he) {
    rng.fill_normal(w, 0.f, static_cast<float>(std::sqrt(2.0 / static_cast<double>(fan_in))));
  } else {
    const float a = static_cast<float>(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)));
    rng.fill_uniform(w, -a, a);
  }
}
}  // namespace

int Builder::conv2d(const std::string& name, int x, std::int64_t out_channels, std::int64_t kernel, std::int64_t stride,
                    std::int64_t padding, std::int64_t groups, bool bias, std::int64_t dilation, Init init) {
  const Shape& xs = g_.value(x).shape;
  SB_CHECK(xs.size() == 4, "node '{}' (conv2d): input must be (N, C, H, W), got {}", name, shape_to_string(xs));
  SB_CHECK(groups >= 1 && xs[1] % groups == 0, "node '{}' (conv2d): groups {} must divide the input channels {}", name,
           groups, xs[1]);
  Node n;
  n.name = name;
  n.op = OpKind::conv2d;
  n.inputs = {x};
  n.attrs.kernel = {kernel, kernel};
  n.attrs.stride = {stride, stride};
  n.attrs.padding = {padding, padding};
  n.attrs.dilation = {dilation, dilation};
  n.attrs.groups = groups;
  Tensor w = Tensor::empty({out_channels, xs[1] / groups, kernel, kernel});
  init_weight(rng_, w, xs[1] / groups * kernel * kernel, out_channels / groups * kernel * kernel, init);
  n.params["weight"] = w;
  if (bias) n.params["bias"] = Tensor::zeros({out_channels});
  return g_.add_node(std::move(n));
}

int Builder::linear(const std::string& name, int x, std::int64_t out_features, bool bias, Init init) {
  const Shape& xs = g_.value(x).shape;
  Node n;
  n.name = name;
  n.op = OpKind::linear;
  n.inputs = {x};
  Tensor w = Tensor::empty({out_features, xs.back()});
  init_weight(rng_, w, xs.back(), out_features, init);
  n.params["weight"] = w;
  if (bias) n.params["bias"] = Tensor::zeros({out_features});
  return g_.add_node(std::move(n));
}

int Builder::batch_norm(const std::string& name, int x, double eps) {
  const std::int64_t c = g_.value(x).shape.at(1);
  Node n;
  n.name = name;
  n.op = OpKind::batch_norm;
  n.inputs = {x};
  n.attrs.eps = eps;
  Tensor gamma = Tensor::empty({c}), beta = Tensor::empty({c}), mean = Tensor::empty({c}), var = Tensor::empty({c});
  // Near-identity statistics: a random model keeps its activations in range, and folding still
  // has real work to do.
  rng_.fill_uniform(gamma, 0.8f, 1.2f);
  rng_.fill_uniform(beta, -0.1f, 0.1f);
  rng_.fill_uniform(mean, -0.1f, 0.1f);
  rng_.fill_uniform(var, 0.8f, 1.2f);
  n.params = {{"weight", gamma}, {"bias", beta}, {"running_mean", mean}, {"running_var", var}};
  return g_.add_node(std::move(n));
}

int Builder::layer_norm(const std::string& name, int x, double eps) {
  const std::int64_t c = g_.value(x).shape.back();
  Node n;
  n.name = name;
  n.op = OpKind::layer_norm;
  n.inputs = {x};
  n.attrs.eps = eps;
  n.params = {{"weight", Tensor::full({c}, 1.f)}, {"bias", Tensor::zeros({c})}};
  return g_.add_node(std::move(n));
}

int Builder::unary(const std::string& name, OpKind op, int x) {
  SB_CHECK(op == OpKind::relu || op == OpKind::relu6 || op == OpKind::gelu || op == OpKind::sigmoid || op == OpKind::tanh ||
               op == OpKind::erf || op == OpKind::sqrt,
           "node '{}': {} is not a unary elementwise op", name, op_name(op));
  return simple(name, op, {x});
}

int Builder::add(const std::string& name, int a, int b) { return simple(name, OpKind::add, {a, b}); }
int Builder::binary(const std::string& name, OpKind op, int a, int b) {
  SB_CHECK(op == OpKind::add || op == OpKind::mul || op == OpKind::sub || op == OpKind::div || op == OpKind::pow,
           "node '{}': {} is not a binary elementwise op", name, op_name(op));
  return simple(name, op, {a, b});
}
int Builder::reduce_mean(const std::string& name, int x, std::vector<std::int64_t> axes, bool keepdims) {
  Attrs a;
  a.axes = std::move(axes);
  a.keepdims = keepdims;
  return simple(name, OpKind::reduce_mean, {x}, a);
}
int Builder::matmul(const std::string& name, int a, int b) { return simple(name, OpKind::matmul, {a, b}); }

int Builder::max_pool(const std::string& name, int x, std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  Attrs a;
  a.kernel = {kernel, kernel};
  a.stride = {stride, stride};
  a.padding = {padding, padding};
  return simple(name, OpKind::max_pool, {x}, a);
}

int Builder::avg_pool(const std::string& name, int x, std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  Attrs a;
  a.kernel = {kernel, kernel};
  a.stride = {stride, stride};
  a.padding = {padding, padding};
  return simple(name, OpKind::avg_pool, {x}, a);
}

int Builder::global_avg_pool(const std::string& name, int x) { return simple(name, OpKind::global_avg_pool, {x}); }

int Builder::flatten(const std::string& name, int x, std::int64_t start_dim) {
  Attrs a;
  a.axis = start_dim;
  return simple(name, OpKind::flatten, {x}, a);
}

int Builder::reshape(const std::string& name, int x, const Shape& shape) {
  Attrs a;
  a.shape = shape;
  return simple(name, OpKind::reshape, {x}, a);
}

int Builder::transpose(const std::string& name, int x, std::int64_t d0, std::int64_t d1) {
  Attrs a;
  a.axis = d0;
  a.axis2 = d1;
  return simple(name, OpKind::transpose, {x}, a);
}

int Builder::softmax(const std::string& name, int x, std::int64_t axis) {
  Attrs a;
  a.axis = axis;
  return simple(name, OpKind::softmax, {x}, a);
}

int Builder::attention(const std::string& name, int q, int k, int v, std::int64_t heads) {
  Attrs a;
  a.heads = heads;
  return simple(name, OpKind::attention, {q, k, v}, a);
}

int Builder::embedding(const std::string& name, int ids, std::int64_t vocab, std::int64_t hidden) {
  Node n;
  n.name = name;
  n.op = OpKind::embedding;
  n.inputs = {ids};
  Tensor w = Tensor::empty({vocab, hidden});
  rng_.fill_normal(w, 0.f, 0.02f);
  n.params["weight"] = w;
  return g_.add_node(std::move(n));
}

int Builder::constant(const std::string& name, const Shape& shape, float stddev) {
  Node n;
  n.name = name;
  n.op = OpKind::constant;
  Tensor t = Tensor::empty(shape);
  rng_.fill_normal(t, 0.f, stddev);
  n.params["value"] = t;
  return g_.add_node(std::move(n));
}

int Builder::cls_token(const std::string& name, int x) {
  Node n;
  n.name = name;
  n.op = OpKind::cls_token;
  n.inputs = {x};
  Tensor t = Tensor::empty({1, 1, g_.value(x).shape.at(2)});
  rng_.fill_normal(t, 0.f, 0.02f);
  n.params["token"] = t;
  return g_.add_node(std::move(n));
}

int Builder::concat(const std::string& name, const std::vector<int>& xs, std::int64_t axis) {
  Attrs a;
  a.axis = axis;
  return simple(name, OpKind::concat, xs, a);
}

int Builder::select(const std::string& name, int x, std::int64_t axis, std::int64_t index) {
  Attrs a;
  a.axis = axis;
  a.axis2 = index;
  return simple(name, OpKind::select, {x}, a);
}

}  // namespace sb
