// The IR interpreted with ATen ops (autograd-capable).
#include "train/torch_module.h"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "sparsebench/core/error.h"
#include "sparsebench/prune/mask.h"
#include "train/torch_attention.h"
#include "train/torch_linear.h"
#include "train/torch_batchnorm.h"

namespace sb::train_detail {

namespace {

at::ScalarType torch_type(DType t) {
  switch (t) {
    case DType::f32: return at::kFloat;
    case DType::i32: return at::kInt;
    case DType::u8: return at::kByte;
    default: fail(fmt::format("torch bridge: dtype {} is not supported (f32, i32, u8 are)", dtype_name(t)));
  }
}

std::vector<std::int64_t> dims(const std::array<std::int64_t, 2>& a) { return {a[0], a[1]}; }

bool f32_cpu(const at::Tensor& t) { return t.scalar_type() == at::kFloat && t.device().is_cpu(); }

}  // namespace

at::Tensor to_torch(const Tensor& t) {
  const Tensor c = t.contiguous();
  const at::Tensor view = at::from_blob(const_cast<void*>(c.raw_data()), c.shape(),
                                        at::TensorOptions().dtype(torch_type(c.dtype())));
  return view.clone();
}

Tensor from_torch(const at::Tensor& t) {
  const at::Tensor c = t.detach().contiguous();
  DType dt;
  switch (c.scalar_type()) {
    case at::kFloat: dt = DType::f32; break;
    case at::kInt: dt = DType::i32; break;
    case at::kByte: dt = DType::u8; break;
    default: fail(fmt::format("torch bridge: torch dtype {} has no sb equivalent", c10::toString(c.scalar_type())));
  }
  Tensor out = Tensor::empty(Shape(c.sizes().begin(), c.sizes().end()), dt);
  std::memcpy(out.raw_data(), c.data_ptr(), out.nbytes());
  return out;
}

TorchModule::TorchModule(const Graph& graph) : graph_(graph) {
  const auto& nodes = graph_.nodes();
  node_params_.resize(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    for (const auto& [key, t] : n.params) {
      TorchParam p;
      p.node = n.name;
      p.key = key;
      p.value = to_torch(t);
      p.trainable = !(n.op == OpKind::batch_norm && (key == "running_mean" || key == "running_var"));
      p.decay = n.has_weight() && key == "weight";
      if (p.trainable) p.value.requires_grad_(true);
      node_params_[i].push_back(static_cast<int>(params_.size()));
      params_.push_back(std::move(p));
    }
  }
  set_masks_from(graph_);
  apply_masks();
  plan_fusion();
}

int TorchModule::find(int node, const char* key) const {
  for (int idx : node_params_[static_cast<std::size_t>(node)])
    if (params_[static_cast<std::size_t>(idx)].key == key) return idx;
  return -1;
}

void TorchModule::set_masks_from(const Graph& graph) {
  for (auto& p : params_) {
    if (!p.decay) continue;
    const int ni = graph.find_node(p.node);
    SB_CHECK(ni >= 0, "torch bridge: node '{}' not in the graph", p.node);
    const Node& n = graph.nodes()[static_cast<std::size_t>(ni)];
    if (!n.mask.defined()) {
      p.mask = at::Tensor();
      continue;
    }
    SB_CHECK(n.mask.shape() == Shape(p.value.sizes().begin(), p.value.sizes().end()),
             "torch bridge: node '{}': mask {} does not match the weight {}", p.node, shape_to_string(n.mask.shape()),
             shape_to_string(Shape(p.value.sizes().begin(), p.value.sizes().end())));
    p.mask = to_torch(n.mask).to(at::kFloat);
  }
}

void TorchModule::apply_masks() {
  at::NoGradGuard no_grad;
  for (auto& p : params_)
    if (p.mask.defined()) p.value.mul_(p.mask);
}

void TorchModule::mask_grads() {
  for (auto& p : params_)
    if (p.mask.defined() && p.value.grad().defined()) p.value.mutable_grad().mul_(p.mask);
}

void TorchModule::export_to(Graph& graph, const Pattern& pattern) const {
  for (const auto& p : params_) {
    const int ni = graph.find_node(p.node);
    SB_CHECK(ni >= 0, "torch bridge: exporting '{}': the graph has no node '{}'", p.name(), p.node);
    Node& n = graph.nodes()[static_cast<std::size_t>(ni)];
    auto it = n.params.find(p.key);
    SB_CHECK(it != n.params.end(), "torch bridge: exporting '{}': node '{}' has no parameter '{}'", p.name(), p.node,
             p.key);
    Tensor t = from_torch(p.value);
    SB_CHECK(t.shape() == it->second.shape(), "torch bridge: exporting '{}': shape {} differs from the graph's {}",
             p.name(), shape_to_string(t.shape()), shape_to_string(it->second.shape()));
    it->second = t;
    if (p.decay) {
      if (p.mask.defined()) {
        n.mask = from_torch(p.mask.to(at::kByte));
        n.pattern = pattern;
        n.sparsity = mask_sparsity(n.mask);
      } else {
        n.mask = Tensor();
        n.pattern = Pattern{};
        n.sparsity = 0;
      }
    }
  }
}

void TorchModule::plan_fusion() {
  const auto& nodes = graph_.nodes();
  act_after_.assign(nodes.size(), -1);
  std::vector<int> uses(graph_.values().size(), 0), user(graph_.values().size(), -1);
  for (std::size_t i = 0; i < nodes.size(); ++i)
    for (int v : nodes[i].inputs) {
      ++uses[static_cast<std::size_t>(v)];
      user[static_cast<std::size_t>(v)] = static_cast<int>(i);
    }
  for (int o : graph_.outputs()) ++uses[static_cast<std::size_t>(o)];
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].op != OpKind::batch_norm && nodes[i].op != OpKind::add) continue;
    const auto out = static_cast<std::size_t>(nodes[i].output);
    if (uses[out] != 1 || user[out] < 0) continue;
    const Node& next = nodes[static_cast<std::size_t>(user[out])];
    const bool act = next.op == OpKind::relu || (next.op == OpKind::relu6 && nodes[i].op == OpKind::batch_norm);
    if (act && next.inputs.size() == 1) act_after_[i] = user[out];  // add: ReLU only (add_relu)
  }
}

std::vector<at::Tensor> TorchModule::forward(const std::vector<at::Tensor>& inputs, bool training) {
  const auto& g = graph_;
  SB_CHECK(inputs.size() == g.inputs().size(), "torch bridge: the graph takes {} input(s), got {}", g.inputs().size(),
           inputs.size());
  std::vector<at::Tensor> v(g.values().size());
  for (std::size_t i = 0; i < inputs.size(); ++i) v[static_cast<std::size_t>(g.inputs()[i])] = inputs[i];
  const auto& nodes = g.nodes();
  std::vector<bool> fused_done(nodes.size(), false);  // activations already applied by their batch_norm / add
  for (std::size_t ni = 0; ni < nodes.size(); ++ni) {
    const Node& n = nodes[ni];
    if (fused_done[ni]) {
      v[static_cast<std::size_t>(n.output)] = v[static_cast<std::size_t>(n.inputs[0])];
      continue;
    }
    const Attrs& a = n.attrs;
    auto in = [&](std::size_t k) -> const at::Tensor& { return v[static_cast<std::size_t>(n.inputs[k])]; };
    auto param = [&](const char* key) -> at::Tensor {
      const int idx = find(static_cast<int>(ni), key);
      return idx < 0 ? at::Tensor() : params_[static_cast<std::size_t>(idx)].value;
    };
    auto axis = [&](std::int64_t ax, std::int64_t rank) { return ax < 0 ? ax + rank : ax; };
    at::Tensor out;
    switch (n.op) {
      case OpKind::input: fail(fmt::format("torch bridge: node '{}' is an input", n.name));
      case OpKind::constant: out = param("value"); break;
      case OpKind::conv2d:
        out = at::conv2d(in(0), param("weight"), param("bias"), dims(a.stride), dims(a.padding), dims(a.dilation),
                         a.groups);
        // A 1-channel input is both layouts at once, and torch then keeps NCHW: say it.
        if (fast_training_) out = out.contiguous(at::MemoryFormat::ChannelsLast);
        break;
      case OpKind::linear:
        out = fast_training_ && f32_cpu(in(0)) ? train_detail::linear(in(0), param("weight"), param("bias"))  // torch_linear.h
                                               : at::linear(in(0), param("weight"), param("bias"));
        break;
      case OpKind::matmul: out = at::matmul(in(0), in(1)); break;
      case OpKind::batch_norm:
        // The fast path: training mode, or inference without autograd (evaluation; Taylor scoring
        // differentiates through eval mode and keeps ATen's ops).
        if (fast_training_ && (training || !at::GradMode::is_enabled()) && in(0).scalar_type() == at::kFloat &&
            in(0).device().is_cpu() && (in(0).dim() == 2 || in(0).dim() == 4) && param("weight").defined() &&
            param("bias").defined()) {
          const int act = act_after_[ni];
          const BnAct kind = act < 0 ? BnAct::none
                             : nodes[static_cast<std::size_t>(act)].op == OpKind::relu ? BnAct::relu
                                                                                       : BnAct::relu6;
          out = training ? batch_norm_act_train(in(0), param("weight"), param("bias"), param("running_mean"),
                                                param("running_var"), 0.1, a.eps, kind)
                         : batch_norm_act_eval(in(0), param("weight"), param("bias"), param("running_mean"),
                                               param("running_var"), a.eps, kind);
          if (act >= 0) fused_done[static_cast<std::size_t>(act)] = true;  // it passes this value on
          break;
        }
        out = at::batch_norm(in(0), param("weight"), param("bias"), param("running_mean"), param("running_var"),
                             training, 0.1, a.eps, false);
        break;
      case OpKind::relu: out = at::relu(in(0)); break;
      case OpKind::relu6: out = at::hardtanh(in(0), 0.0, 6.0); break;
      case OpKind::gelu: out = fast_training_ && f32_cpu(in(0)) && gelu_available() ? train_detail::gelu(in(0)) : at::gelu(in(0)); break;
      case OpKind::add:
        if (fast_training_ && act_after_[ni] >= 0 && add_relu_fusable(in(0), in(1))) {
          out = add_relu(in(0), in(1));  // torch_batchnorm.h
          fused_done[static_cast<std::size_t>(act_after_[ni])] = true;
          break;
        }
        out = at::add(in(0), in(1));
        break;
      case OpKind::max_pool:
        out = at::max_pool2d(in(0), dims(a.kernel), dims(a.stride), dims(a.padding), {1, 1}, false);
        break;
      case OpKind::avg_pool:
        out = at::avg_pool2d(in(0), dims(a.kernel), dims(a.stride), dims(a.padding), false, true);
        break;
      case OpKind::global_avg_pool: out = in(0).mean({2, 3}, true); break;
      case OpKind::flatten: out = at::flatten(in(0), a.axis); break;
      case OpKind::reshape: {
        // Reshape targets carry the graph's batch in dim 0 (the builders' convention): follow the
        // batch actually given.
        std::vector<std::int64_t> shape(a.shape.begin(), a.shape.end());
        if (!shape.empty() && shape[0] != -1) shape[0] = in(0).size(0);
        out = in(0).reshape(shape);
        break;
      }
      case OpKind::transpose: out = in(0).transpose(a.axis, a.axis2); break;
      case OpKind::layer_norm:
        out = fast_training_ && f32_cpu(in(0)) && param("weight").defined() && param("bias").defined()
                  ? train_detail::layer_norm(in(0), param("weight"), param("bias"), a.eps)  // torch_linear.h
                  : at::layer_norm(in(0), {in(0).size(-1)}, param("weight"), param("bias"), a.eps);
        break;
      case OpKind::softmax: out = at::softmax(in(0), axis(a.axis, in(0).dim())); break;
      case OpKind::attention: {
        out = attention(in(0), in(1), in(2), a.heads);  // one autograd function (torch_attention.h)
        break;
      }
      case OpKind::embedding: out = at::embedding(param("weight"), in(0).to(at::kLong)); break;
      case OpKind::cls_token: {
        const at::Tensor tok = param("token");
        out = at::cat({tok.expand({in(0).size(0), 1, tok.size(2)}), in(0)}, 1);
        break;
      }
      case OpKind::concat: {
        std::vector<at::Tensor> xs;
        for (std::size_t k = 0; k < n.inputs.size(); ++k) xs.push_back(in(k));
        out = at::cat(xs, axis(a.axis, in(0).dim()));
        break;
      }
      case OpKind::select: out = in(0).select(a.axis, a.axis2); break;
      case OpKind::sigmoid: out = at::sigmoid(in(0)); break;
      case OpKind::tanh: out = at::tanh(in(0)); break;
      case OpKind::erf: out = at::erf(in(0)); break;
      case OpKind::sqrt: out = at::sqrt(in(0)); break;
      case OpKind::mul: out = at::mul(in(0), in(1)); break;
      case OpKind::sub: out = at::sub(in(0), in(1)); break;
      case OpKind::div: out = at::div(in(0), in(1)); break;
      case OpKind::pow:
        // A one-element exponent as a scalar: torch then computes x * x, sqrt... as the runtime does.
        if (in(1).numel() == 1 && in(1).dim() <= in(0).dim()) out = at::pow(in(0), in(1).item<double>());
        else out = at::pow(in(0), in(1));
        break;
      case OpKind::reduce_mean: {
        std::vector<std::int64_t> dims;
        for (auto d : a.axes) dims.push_back(axis(d, in(0).dim()));
        if (dims.empty())
          for (std::int64_t d = 0; d < in(0).dim(); ++d) dims.push_back(d);
        out = in(0).mean(dims, a.keepdims);
        break;
      }
    }
    v[static_cast<std::size_t>(n.output)] = std::move(out);
  }
  std::vector<at::Tensor> outs;
  for (int o : g.outputs()) outs.push_back(v[static_cast<std::size_t>(o)]);
  return outs;
}

}  // namespace sb::train_detail
