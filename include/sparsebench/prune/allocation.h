#pragma once
// Per-layer allocation of a model-level sparsity target.
#include <string>
#include <vector>

#include "sparsebench/core/tensor.h"

namespace sb {

enum class Allocation { uniform, global, erk };
Allocation parse_allocation(const std::string& text);   // "uniform" | "global" | "erk"
const char* allocation_name(Allocation a);

struct LayerInfo {
  std::string name;
  Shape shape;            // weight shape: [out, in] or [out, in, kh, kw]
  bool prunable = true;   // false: kept dense, excluded from the target's denominator
};

// Per-layer sparsities (one per layer, 0 for non-prunable ones) such that the prunable parameters
// as a whole reach `target`:
// - uniform: every prunable layer at `target`;
// - global: one magnitude threshold across the prunable layers (needs `weights`, same order);
// - erk: Erdos-Renyi-Kernel (Evci et al., RigL 2020): density proportional to
//   (sum of dims) / (product of dims), scaled to the target, layers that would exceed density 1
//   kept dense and the rest re-scaled (iterated until none exceeds 1). The prunable parameters
//   keep exactly (1 - target) of their total (before each layer rounds to whole weights).
// Every value is in [0, 1), ready for make_mask. Throws for a target outside [0, 1), a layer shape
// that is not 2-D / 4-D with dimensions >= 1, a target > 0 with no prunable layer, and (global) a
// missing weight or one whose shape differs from its layer's.
std::vector<double> allocate_sparsity(const std::vector<LayerInfo>& layers, double target, Allocation how,
                                      const std::vector<Tensor>& weights = {});

}  // namespace sb
