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
// deterministic. A score with a NaN (or a NaN weight under |w|) is rejected: NaN cannot be ranked.
// Counts round half away from zero (round(2.5) = 3). A request below 1 never empties a tensor: at
// least one weight (filter, channel, block, one per bank) is kept, and `note` says when that bit.
//
// Per pattern (R x K is the 2-D view, s the requested sparsity):
// - unstructured: exactly round(s * numel) weights pruned (at most numel - 1).
// - filter: round(s * R) whole rows pruned; channel: round(s * in) whole input channels pruned.
//   Ranked by the L1 or L2 norm of the score over the filter / channel (magnitude: the weight norm).
// - block:RxC: blocks tile the 2-D view from (0, 0). When R or K is not a multiple of the block,
//   the edge blocks are partial and count by their real elements (the BSR format pads them).
//   Blocks are ranked by mean |score| per element, so a small edge block is not pruned merely for
//   being small; the pruned count is the prefix of that ranking nearest s * numel (within one
//   block). A block larger than the 2-D view is rejected.
// - balanced:bank=B: every row is cut into banks of B consecutive columns; a full bank keeps exactly
//   k = round(B * (1 - s)) (at least 1); a narrower last bank of width w keeps round(w * (1 - s))
//   (at least 1), so its sparsity stays near the request. B > K is rejected.
// - nm:N:M: every group of M consecutive columns keeps its top N; a narrower last group of width w
//   keeps min(N, w). M > K is accepted (one partial group per row).
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

// Unstructured pruning with one threshold across all `weights` (global magnitude, or `scores`,
// none or one per weight): exactly round(s * total) weights pruned. Ties at the threshold prune the
// later tensor and the higher index first. Each tensor keeps at least its most important weight (a
// layer is never emptied); `note` says when that lowered the total. Errors name `weights[i]`.
std::vector<MaskResult> make_global_masks(const std::vector<Tensor>& weights, double sparsity,
                                          const std::vector<Tensor>& scores = {});

// Applies a mask in place: w[i] = 0 where mask[i] == 0.
void apply_mask(Tensor& weight, const Tensor& mask);
// Fraction of zero entries of a u8 mask (or of an f32 tensor's zeros).
double mask_sparsity(const Tensor& mask);

}  // namespace sb
