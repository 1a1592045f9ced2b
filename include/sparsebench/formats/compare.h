#pragma once
// What one pruned weight costs in every storage format: the answer to "is it smaller?".
#include <string>
#include <vector>

#include "sparsebench/formats/common.h"
#include "sparsebench/prune/pattern.h"

namespace sb {

struct FormatCost {
  std::string format;       // "dense", "csr", "csc", "coo", "bsr:4x4", "balanced:bank=32,k=4", "nv24"
  std::string detail;       // index width, block shape, k, ...
  bool available = true;    // false when the format cannot hold this mask
  std::string reason;       // why not, when unavailable
  Footprint footprint;      // bytes at `value_type`
  double ratio_to_dense = 0;
  bool round_trip_exact = false;  // to_dense() reproduced the pruned weight bit for bit
};

// Builds every format from the pruned weight `dense` ([rows, cols] f32) and its `mask` (u8),
// checks each round trip, and reports each footprint with values stored as `value_type`.
// `pattern` picks the block shape (block:RxC, else 4x4) and bank (balanced:bank=B / nm:N:M, else 32).
std::vector<FormatCost> compare_formats(const Tensor& dense, const Tensor& mask, const Pattern& pattern,
                                        DType value_type = DType::f32);

}  // namespace sb
