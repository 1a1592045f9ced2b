#include "sparsebench/prune/allocation.h"

#include <cmath>

#include "sparsebench/core/error.h"
#include "sparsebench/prune/mask.h"
#include "prune/internal.h"

namespace sb {

Allocation parse_allocation(const std::string& text) {
  if (text == "uniform") return Allocation::uniform;
  if (text == "global") return Allocation::global;
  if (text == "erk") return Allocation::erk;
  fail(fmt::format("unknown allocation '{}': expected uniform | global | erk", text));
}

const char* allocation_name(Allocation a) {
  switch (a) {
    case Allocation::uniform: return "uniform";
    case Allocation::global: return "global";
    case Allocation::erk: return "erk";
  }
  return "?";
}

namespace {

void check_layer(const LayerInfo& l, std::size_t i) {
  SB_CHECK(l.shape.size() == 2 || l.shape.size() == 4,
           "layer {} '{}' has shape {} ({}-D): expected a 2-D [out, in] or 4-D [out, in, kh, kw] weight", i, l.name,
           shape_to_string(l.shape), l.shape.size());
  for (auto d : l.shape)
    SB_CHECK(d >= 1, "layer {} '{}' has shape {}: expected every dimension >= 1", i, l.name, shape_to_string(l.shape));
}

// Erdos-Renyi-Kernel: density_l = eps * raw_l with raw_l = sum(dims) / prod(dims), eps chosen so
// the kept parameters total (1 - target) * N. A layer with eps * raw_l > 1 is kept dense and eps
// re-solved over the others. Marking every such layer at once is exact: making a layer dense frees
// budget, so eps only grows and a layer over 1 stays over 1.
std::vector<double> erk(const std::vector<LayerInfo>& layers, double target) {
  const std::size_t nl = layers.size();
  std::vector<double> raw(nl, 0.0), params(nl, 0.0);
  std::vector<bool> dense(nl, false);
  double total = 0;
  for (std::size_t i = 0; i < nl; ++i) {
    if (!layers[i].prunable) continue;
    double sum = 0, prod = 1;
    for (auto d : layers[i].shape) sum += double(d), prod *= double(d);
    raw[i] = sum / prod;
    params[i] = prod;
    total += prod;
  }
  const double keep = (1.0 - target) * total;
  double eps = 0;
  for (;;) {
    double dense_params = 0, scaled = 0;
    for (std::size_t i = 0; i < nl; ++i) {
      if (!layers[i].prunable) continue;
      if (dense[i]) dense_params += params[i];
      else scaled += raw[i] * params[i];
    }
    eps = (keep - dense_params) / scaled;
    bool changed = false;
    for (std::size_t i = 0; i < nl; ++i)
      if (layers[i].prunable && !dense[i] && eps * raw[i] > 1.0) dense[i] = true, changed = true;
    if (!changed) break;
  }
  std::vector<double> out(nl, 0.0);
  for (std::size_t i = 0; i < nl; ++i)
    if (layers[i].prunable && !dense[i]) out[i] = std::max(0.0, 1.0 - eps * raw[i]);
  return out;
}

}  // namespace

std::vector<double> allocate_sparsity(const std::vector<LayerInfo>& layers, double target, Allocation how,
                                      const std::vector<Tensor>& weights) {
  SB_CHECK(target >= 0 && target < 1, "target sparsity {} is out of range: expected a value in [0, 1)", target);
  bool any = false;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    check_layer(layers[i], i);
    any = any || layers[i].prunable;
  }
  SB_CHECK(any || target == 0, "target sparsity {}: none of the {} layers is prunable: expected at least one", target,
           layers.size());
  std::vector<double> out(layers.size(), 0.0);
  if (target == 0) return out;
  switch (how) {
    case Allocation::uniform:
      for (std::size_t i = 0; i < layers.size(); ++i)
        if (layers[i].prunable) out[i] = target;
      return out;
    case Allocation::erk: return erk(layers, target);
    case Allocation::global: {
      SB_CHECK(weights.size() == layers.size(),
               "global allocation: {} weights for {} layers: expected one weight per layer, in the same order",
               weights.size(), layers.size());
      std::vector<Tensor> prunable;
      std::vector<std::string> names;
      std::vector<std::size_t> where;
      for (std::size_t i = 0; i < layers.size(); ++i) {
        if (!layers[i].prunable) continue;
        SB_CHECK(weights[i].defined() && weights[i].shape() == layers[i].shape,
                 "global allocation: weight {} for layer '{}' has shape {}: expected the layer's shape {}", i,
                 layers[i].name, weights[i].defined() ? shape_to_string(weights[i].shape()) : "(undefined)",
                 shape_to_string(layers[i].shape));
        prunable.push_back(weights[i]);
        names.push_back(fmt::format("layer {} '{}'", i, layers[i].name));
        where.push_back(i);
      }
      // The per-layer counts of one magnitude threshold; make_mask(unstructured, out[i]) reproduces
      // them exactly (round(achieved * n) is the count again).
      const auto masks = prune_detail::global_masks(prunable, target, {}, names);
      for (std::size_t j = 0; j < where.size(); ++j) out[where[j]] = masks[j].achieved;
      return out;
    }
  }
  return out;
}

}  // namespace sb
