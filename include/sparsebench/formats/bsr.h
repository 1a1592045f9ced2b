#pragma once
// Block sparse row: dense r x c blocks, kept or dropped whole.
#include "sparsebench/formats/common.h"

namespace sb {

// BSR with block shape block_rows x block_cols (any r, c >= 1: 1x4, 4x1, 4x4, 8x8, 16x16, 32x32...).
// Padding: when rows or cols are not multiples of the block, the matrix is treated as zero-padded
// to rows_padded() x cols_padded(); padded positions inside stored blocks hold 0 and are counted in
// the footprint (values and padding_values). to_dense() returns the unpadded rows x cols.
// A block is stored when any entry in it is kept. Storage: block_row_ptr[block_rows_count + 1]
// (int32), block column indices (u16 when the count of block columns <= 65536, else u32),
// values[nblocks][block_rows][block_cols] row-major inside each block, blocks in row-major order.
struct Bsr {
  std::int64_t rows = 0, cols = 0;
  int block_rows = 1, block_cols = 1;
  IndexWidth index_width = IndexWidth::u32;
  AlignedVector<std::int32_t> block_row_ptr;
  AlignedVector<std::uint16_t> block_col16;
  AlignedVector<std::uint32_t> block_col32;
  AlignedVector<float> values;

  std::int64_t block_row_count() const { return (rows + block_rows - 1) / block_rows; }
  std::int64_t block_col_count() const { return (cols + block_cols - 1) / block_cols; }
  std::int64_t rows_padded() const { return block_row_count() * block_rows; }
  std::int64_t cols_padded() const { return block_col_count() * block_cols; }
  std::int64_t nblocks() const { return block_row_ptr.empty() ? 0 : block_row_ptr.back(); }
  std::uint32_t block_col(std::int64_t i) const { return index_width == IndexWidth::u16 ? block_col16[i] : block_col32[i]; }

  // Throws when a block dimension is < 1.
  static Bsr from_dense(const Tensor& dense, int block_rows, int block_cols, const Tensor& mask = {},
                        std::optional<IndexWidth> width = {});
  Tensor to_dense() const;
  void validate() const;
  Footprint footprint(DType value_type = DType::f32) const;
};

}  // namespace sb
