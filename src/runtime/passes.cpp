// Graph passes: BatchNorm folding, model-level pruning (masks, or structured shrinking).
#include "sparsebench/runtime/passes.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "sparsebench/core/error.h"
#include "sparsebench/prune/mask.h"

namespace sb {

int fold_batch_norm(Graph& g) {
  auto& nodes = g.nodes();
  std::vector<bool> dead(nodes.size(), false);
  std::vector<int> repl(nodes.size(), -1);
  int folded = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Node& bn = nodes[i];
    if (bn.op != OpKind::batch_norm) continue;
    const int v = bn.inputs[0];
    const int p = g.value(v).producer;
    if (p < 0 || nodes[p].op != OpKind::conv2d || g.consumers(v).size() != 1) continue;
    if (std::find(g.outputs().begin(), g.outputs().end(), v) != g.outputs().end()) continue;
    Node& conv = nodes[p];
    Tensor w = conv.param("weight").clone();
    const std::int64_t out = w.size(0), per = w.numel() / out;
    Tensor b = conv.params.count("bias") ? conv.param("bias").clone() : Tensor::zeros({out});
    const float *gm = bn.param("weight").data<float>(), *bt = bn.param("bias").data<float>(),
                *mu = bn.param("running_mean").data<float>(), *var = bn.param("running_var").data<float>();
    float* wp = w.data<float>();
    float* bp = b.data<float>();
    for (std::int64_t o = 0; o < out; ++o) {
      // In double: the folded layer is as close to BN(conv(x)) as fp32 storage allows.
      const double scale = static_cast<double>(gm[o]) / std::sqrt(static_cast<double>(var[o]) + bn.attrs.eps);
      for (std::int64_t j = 0; j < per; ++j) wp[o * per + j] = static_cast<float>(wp[o * per + j] * scale);
      bp[o] = static_cast<float>((static_cast<double>(bp[o]) - mu[o]) * scale + bt[o]);
    }
    conv.params["weight"] = w;
    conv.params["bias"] = b;
    dead[i] = true;
    repl[i] = v;
    ++folded;
  }
  if (folded) g.remove_nodes(dead, repl);
  return folded;
}

bool glob_match(const std::string& pattern, const std::string& text) {
  // Iterative wildcard match with single-star backtracking.
  std::size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

bool is_output(const Graph& g, int v) {
  return std::find(g.outputs().begin(), g.outputs().end(), v) != g.outputs().end();
}

// The channel closure of producer `p` (see passes.h): channel-wise nodes that shrink with it and
// the weight layers that lose input channels. False, with the reason, when channels are tied.
bool channel_closure(const Graph& g, int p, std::vector<int>* chan_ops, std::vector<int>* consumers, std::string* why) {
  const auto& nodes = g.nodes();
  std::vector<int> stack{nodes[p].output};
  while (!stack.empty()) {
    const int v = stack.back();
    stack.pop_back();
    if (is_output(g, v)) {
      *why = "its channels reach a graph output";
      return false;
    }
    const std::size_t rank = g.value(v).shape.size();
    for (int c : g.consumers(v)) {
      const Node& n = nodes[c];
      switch (n.op) {
        case OpKind::batch_norm:
        case OpKind::relu:
        case OpKind::relu6:
        case OpKind::gelu:
        case OpKind::max_pool:
        case OpKind::avg_pool:
        case OpKind::global_avg_pool:
          chan_ops->push_back(c);
          stack.push_back(n.output);
          break;
        case OpKind::flatten: {
          const Shape& s = g.value(v).shape;
          if (!(rank == 4 && s[2] == 1 && s[3] == 1 && n.attrs.axis == 1)) {
            *why = fmt::format("its channels reach flatten '{}' of a spatial tensor", n.name);
            return false;
          }
          chan_ops->push_back(c);
          stack.push_back(n.output);
          break;
        }
        case OpKind::conv2d:
          if (n.is_depthwise()) {
            chan_ops->push_back(c);
            stack.push_back(n.output);
          } else if (n.attrs.groups == 1) {
            consumers->push_back(c);
          } else {
            *why = fmt::format("its channels reach grouped conv2d '{}'", n.name);
            return false;
          }
          break;
        case OpKind::linear:
          if (rank > 3) {
            *why = fmt::format("linear '{}' reads it along a spatial dim", n.name);
            return false;
          }
          consumers->push_back(c);
          break;
        default:
          *why = fmt::format("its channels are tied by {} '{}'", op_name(n.op), n.name);
          return false;
      }
    }
  }
  std::sort(chan_ops->begin(), chan_ops->end());
  chan_ops->erase(std::unique(chan_ops->begin(), chan_ops->end()), chan_ops->end());
  std::sort(consumers->begin(), consumers->end());
  consumers->erase(std::unique(consumers->begin(), consumers->end()), consumers->end());
  return true;
}

// The weight layer feeding `l` through channel-wise ops only, each read by one node; -1 if none.
int single_producer(const Graph& g, int l) {
  const auto& nodes = g.nodes();
  int v = nodes[l].inputs[0];
  while (true) {
    const int p = g.value(v).producer;
    if (p < 0) return -1;
    const Node& n = nodes[p];
    if ((n.op == OpKind::conv2d && !n.is_depthwise() && n.attrs.groups == 1) || n.op == OpKind::linear) return p;
    switch (n.op) {
      case OpKind::batch_norm:
      case OpKind::relu:
      case OpKind::relu6:
      case OpKind::gelu:
      case OpKind::max_pool:
      case OpKind::avg_pool:
      case OpKind::global_avg_pool:
      case OpKind::flatten: v = n.inputs[0]; break;
      case OpKind::conv2d:
        if (n.is_depthwise()) {
          v = n.inputs[0];
          break;
        }
        return -1;
      default: return -1;
    }
  }
}

// Keeps the entries `keep` along `dim` of a contiguous tensor (any dtype).
Tensor select(const Tensor& t, int dim, const std::vector<std::int64_t>& keep) {
  const Tensor c = t.contiguous();
  Shape s = c.shape();
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= s[d];
  for (int d = dim + 1; d < c.dim(); ++d) inner *= s[d];
  const std::int64_t len = s[dim];
  s[dim] = static_cast<std::int64_t>(keep.size());
  Tensor out = Tensor::empty(s, c.dtype());
  const std::size_t es = dtype_size(c.dtype());
  const auto* src = static_cast<const char*>(c.raw_data());
  auto* dst = static_cast<char*>(out.raw_data());
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::size_t k = 0; k < keep.size(); ++k)
      std::memcpy(dst + ((o * static_cast<std::int64_t>(keep.size()) + static_cast<std::int64_t>(k)) * inner) * es,
                  src + ((o * len + keep[k]) * inner) * es, static_cast<std::size_t>(inner) * es);
  return out;
}

void select_params(Node& n, int dim, const std::vector<std::int64_t>& keep, bool with_bias) {
  n.params["weight"] = select(n.param("weight"), dim, keep);
  if (n.mask.defined()) n.mask = select(n.mask, dim, keep);
  if (with_bias && n.params.count("bias")) n.params["bias"] = select(n.param("bias"), 0, keep);
}

// Zeroes (mask = 0) the entries not in `keep` along `dim` of a weight layer, and masks its weight.
void mask_out(Node& n, int dim, const std::vector<std::int64_t>& keep, const Pattern& pattern) {
  Tensor& w = n.params["weight"];
  w = w.clone();
  if (!n.mask.defined()) {
    n.mask = Tensor::zeros(w.shape(), DType::u8);
    std::fill(n.mask.data<std::uint8_t>(), n.mask.data<std::uint8_t>() + n.mask.numel(), 1);
    n.pattern = pattern;
  } else {
    n.mask = n.mask.clone();
  }
  const Shape& s = w.shape();
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= s[d];
  for (int d = dim + 1; d < w.dim(); ++d) inner *= s[d];
  std::vector<bool> kept(s[dim], false);
  for (auto k : keep) kept[k] = true;
  std::uint8_t* m = n.mask.data<std::uint8_t>();
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < s[dim]; ++i)
      if (!kept[i]) std::fill(m + (o * s[dim] + i) * inner, m + (o * s[dim] + i + 1) * inner, 0);
  apply_mask(w, n.mask);
  n.sparsity = mask_sparsity(n.mask);
}

std::vector<std::int64_t> kept_along(const Tensor& mask, int dim) {
  const Shape& s = mask.shape();
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= s[d];
  for (int d = dim + 1; d < mask.dim(); ++d) inner *= s[d];
  const std::uint8_t* m = mask.data<std::uint8_t>();
  std::vector<bool> any(s[dim], false);
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < s[dim]; ++i)
      for (std::int64_t j = 0; j < inner && !any[i]; ++j) any[i] = m[(o * s[dim] + i) * inner + j] != 0;
  std::vector<std::int64_t> keep;
  for (std::int64_t i = 0; i < s[dim]; ++i)
    if (any[i]) keep.push_back(i);
  return keep;
}

}  // namespace

PruneReport prune(Graph& g, const PruneOptions& o) {
  SB_CHECK(o.sparsity >= 0 && o.sparsity < 1, "prune: sparsity {} must be in [0, 1)", o.sparsity);
  auto& nodes = g.nodes();
  PruneReport rep;
  rep.params_before = g.param_count();
  std::vector<int> layers;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].has_weight()) layers.push_back(static_cast<int>(i));
  for (const auto* globs : {&o.dense_layers, &o.prune_layers})
    for (const auto& glob : *globs) {
      bool any = false;
      for (int l : layers) any = any || glob_match(glob, nodes[l].name);
      SB_CHECK(any, "prune: layer pattern '{}' matches no conv2d / linear layer", glob);
    }
  const bool structured = o.pattern.structured();
  std::vector<bool> eligible(layers.size(), false);
  std::vector<std::string> notes(layers.size());
  std::vector<int> producer(layers.size(), -1);
  for (std::size_t li = 0; li < layers.size(); ++li) {
    const Node& n = nodes[layers[li]];
    const bool reads_input = std::find(g.inputs().begin(), g.inputs().end(), n.inputs[0]) != g.inputs().end();
    bool ok = true;
    std::string why;
    if (n.is_depthwise()) {
      ok = false;
      why = "depthwise: runs dense";
    } else if (n.op == OpKind::conv2d && reads_input) {
      ok = false;
      why = "first convolution: dense by default";
    } else if (is_output(g, n.output)) {
      ok = false;
      why = "classifier: dense by default";
    }
    for (const auto& glob : o.prune_layers)
      if (glob_match(glob, n.name) && !n.is_depthwise()) {
        ok = true;
        why.clear();
      }
    for (const auto& glob : o.dense_layers)
      if (glob_match(glob, n.name)) {
        ok = false;
        why = fmt::format("dense: matches '{}'", glob);
      }
    if (ok && structured) {
      std::vector<int> chan, cons;
      if (o.pattern.kind == Pattern::Kind::filter) {
        if (!channel_closure(g, layers[li], &chan, &cons, &why)) ok = false;
        else producer[li] = layers[li];
      } else {
        const int p = single_producer(g, layers[li]);
        if (p < 0) {
          ok = false;
          why = "no single producer layer whose filters could go with its input channels";
        } else if (!channel_closure(g, p, &chan, &cons, &why)) {
          ok = false;
          why = fmt::format("producer '{}': {}", nodes[p].name, why);
        } else if (cons != std::vector<int>{layers[li]}) {
          ok = false;
          why = fmt::format("producer '{}' also feeds other layers", nodes[p].name);
        } else {
          producer[li] = p;
        }
      }
      if (!ok) why = "channels tied, left alone: " + why;
    }
    eligible[li] = ok;
    notes[li] = why;
  }

  std::vector<LayerInfo> infos;
  std::vector<Tensor> weights;
  for (std::size_t li = 0; li < layers.size(); ++li) {
    const Node& n = nodes[layers[li]];
    infos.push_back(LayerInfo{n.name, n.param("weight").shape(), static_cast<bool>(eligible[li])});
    weights.push_back(n.param("weight"));
  }
  const bool any_eligible = std::find(eligible.begin(), eligible.end(), true) != eligible.end();
  const bool active = o.pattern.kind != Pattern::Kind::dense && o.sparsity > 0 && any_eligible;
  std::vector<double> alloc(layers.size(), 0.0);
  if (active) alloc = allocate_sparsity(infos, o.sparsity, o.allocation, weights);

  double pruned_w = 0, total_w = 0;
  struct Decision {
    int producer;
    std::vector<std::int64_t> keep;
  };
  std::vector<Decision> decisions;
  for (std::size_t li = 0; li < layers.size(); ++li) {
    Node& n = nodes[layers[li]];
    LayerPruneReport r;
    r.name = n.name;
    r.requested = alloc[li];
    r.note = notes[li];
    if (active && eligible[li]) total_w += static_cast<double>(n.param("weight").numel());
    if (active && eligible[li] && alloc[li] > 0) {
      try {
        MaskResult mr = make_mask(n.param("weight"), o.pattern, alloc[li]);
        r.pruned = true;
        r.achieved = mr.achieved;
        r.note = mr.note;
        pruned_w += mr.achieved * static_cast<double>(n.param("weight").numel());
        if (structured) {
          const int dim = o.pattern.kind == Pattern::Kind::filter ? 0 : 1;
          decisions.push_back(Decision{producer[li], kept_along(mr.mask, dim)});
        } else {
          Tensor w = n.param("weight").clone();
          apply_mask(w, mr.mask);
          n.params["weight"] = w;
          n.mask = mr.mask;
          n.pattern = o.pattern;
          n.sparsity = mr.achieved;
        }
      } catch (const Error& e) {
        r.pruned = false;
        r.note = fmt::format("left dense: {}", e.what());
      }
    }
    rep.layers.push_back(std::move(r));
  }

  for (const Decision& d : decisions) {
    std::vector<int> chan, cons;
    std::string why;
    channel_closure(g, d.producer, &chan, &cons, &why);
    Pattern rows = Pattern::parse("filter"), cols = Pattern::parse("channel");
    if (o.shrink) {
      select_params(nodes[d.producer], 0, d.keep, true);
      for (int c : chan) {
        Node& n = nodes[c];
        if (n.op == OpKind::batch_norm) {
          for (const char* k : {"weight", "bias", "running_mean", "running_var"}) n.params[k] = select(n.param(k), 0, d.keep);
        } else if (n.op == OpKind::conv2d) {
          select_params(n, 0, d.keep, true);
          n.attrs.groups = static_cast<std::int64_t>(d.keep.size());
        }
      }
      for (int c : cons) select_params(nodes[c], 1, d.keep, false);
    } else {
      mask_out(nodes[d.producer], 0, d.keep, rows);
      for (int c : cons) mask_out(nodes[c], 1, d.keep, cols);
    }
  }
  if (o.shrink && !decisions.empty()) {
    // Remaining weights of shrunk layers are whole: drop masks that no longer prune anything.
    for (auto& n : nodes)
      if (n.mask.defined() && mask_sparsity(n.mask) == 0) {
        n.mask = Tensor();
        n.sparsity = 0;
      }
    g.infer_shapes();
  }
  rep.achieved = total_w > 0 ? pruned_w / total_w : 0;
  rep.params_after = g.param_count();
  return rep;
}

}  // namespace sb
