#pragma once
// Mask makers: from a weight tensor and an importance score to a keep-mask (u8, 1 = keep).
//
// Weight layouts: 2-D [out, in] (linear: W is M x K, the reduction runs along `in`) or 4-D
// [out, in, kh, kw] (convolution), seen as the 2-D [out, in*kh*kw] matrix of im2col + GEMM, so
// blocks, banks and N:M groups run along the reduction dimension; `channel` removes one input
// channel (its kh*kw columns) from every filter.
// Score: same shape as the weight; higher = more important. Undefined -> |w| (magnitude).
// Sparsity: the requested fraction of pruned weights, in [0, 1). The mask hits it exactly, or the
// nearest feasible value (a whole number of filters, blocks, or k per bank), reported in
// `achieved` and explained in `note`. Ties are broken by position (lower index kept), so masks are
// deterministic.
#include <string>
#include <vector>

#include "sparsebench/core/tensor.h"
#include "sparsebench/prune/pattern.h"

namespace sb {

struct MaskResult {
  Tensor mask;            // u8, the weight's shape
  double requested = 0;   // the sparsity asked for
  double achieved = 0;    // pruned / total of this tensor
  std::string note;       // why achieved differs from requested, empty when it does not
};

// Throws sb::Error for a sparsity outside [0, 1), a block or bank that does not fit the
// weight, N > M, a score of another shape, or a weight that is not 2-D or 4-D.
// For `nm:N:M` the pattern fixes the sparsity at 1 - N/M: any other request is noted, not an error.
MaskResult make_mask(const Tensor& weight, const Pattern& pattern, double sparsity, const Tensor& score = {});

// Unstructured pruning with one threshold across all `weights` (global magnitude, or `scores`).
std::vector<MaskResult> make_global_masks(const std::vector<Tensor>& weights, double sparsity,
                                          const std::vector<Tensor>& scores = {});

// Applies a mask in place: w[i] = 0 where mask[i] == 0.
void apply_mask(Tensor& weight, const Tensor& mask);
// Fraction of zero entries of a u8 mask (or of an f32 tensor's zeros).
double mask_sparsity(const Tensor& mask);

}  // namespace sb
