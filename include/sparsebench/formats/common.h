#pragma once
// Shared pieces of every sparse format: footprints and index widths.
//
// Conventions for every format in this folder:
// - A sparse matrix is a 2-D weight W of `rows` x `cols` (M x K in Y = W * X), row-major when dense.
// - `from_dense(dense, mask)`: `dense` is a contiguous 2-D f32 tensor; `mask`, when defined, is a
//   2-D u8 tensor of the same shape (non-zero = keep). Kept entries are stored even when their
//   value is 0 (the pattern is what pruning decided). Without a mask, the non-zero values are kept.
// - `to_dense()` reproduces the dense matrix exactly (values bit for bit, pruned entries 0).
// - `validate()` checks every invariant and throws sb::Error naming the first one broken; a
//   corrupt instance never makes a kernel read out of bounds once it has passed validate().
// - `footprint(value_type)` gives the exact bytes the format occupies when its values are stored
//   as `value_type` (f32 here; f16/bf16 on the GPU), split into values / indices / pointers /
//   metadata. Zero padding a format stores is counted (and reported in `padding_values`).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "sparsebench/core/aligned.h"
#include "sparsebench/core/dtype.h"
#include "sparsebench/core/tensor.h"

namespace sb {

struct Footprint {
  std::size_t values = 0;          // bytes of stored values (padding included)
  std::size_t indices = 0;         // bytes of column / row indices or in-bank offsets
  std::size_t pointers = 0;        // bytes of row / column / block-row pointers
  std::size_t metadata = 0;        // bytes of anything else (2:4 metadata words, headers)
  std::int64_t padding_values = 0; // stored zeros that exist only because of padding
  std::size_t total() const { return values + indices + pointers + metadata; }
};

// Width of stored indices. 16-bit is chosen automatically when every index fits (dimension <= 65536).
enum class IndexWidth : std::uint8_t { u16, u32 };
IndexWidth choose_index_width(std::int64_t dimension);
const char* index_width_name(IndexWidth w);   // "u16" / "u32"

// Checks that `dense` is a contiguous 2-D f32 tensor and `mask` is undefined or a u8 tensor of the
// same shape; throws naming `what` otherwise.
void check_dense_and_mask(const Tensor& dense, const Tensor& mask, const char* what);
// True when entry (i, j) is kept: mask[i, j] != 0, or dense[i, j] != 0 without a mask.
inline bool is_kept(const float* dense, const std::uint8_t* mask, std::int64_t idx) {
  return mask ? mask[idx] != 0 : dense[idx] != 0.f;
}

}  // namespace sb
