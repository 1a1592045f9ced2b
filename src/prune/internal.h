#pragma once
// Pieces shared by the pruning sources, not part of the public API.
#include <string>
#include <vector>

#include "sparsebench/prune/mask.h"

namespace sb::prune_detail {

// make_global_masks with the name each error gives tensor i (`names[i]`, e.g. "layer 'fc1'").
std::vector<MaskResult> global_masks(const std::vector<Tensor>& weights, double sparsity,
                                     const std::vector<Tensor>& scores, const std::vector<std::string>& names);

}  // namespace sb::prune_detail
