#pragma once
// Compressed sparse row (and column) storage.
#include "sparsebench/formats/common.h"

namespace sb {

// CSR: row_ptr[rows + 1] (int32; nnz < 2^31), column indices (u16 when cols <= 65536, else u32;
// exactly one of col16 / col32 is filled), values[nnz]. Columns ascend within each row.
struct Csr {
  std::int64_t rows = 0, cols = 0;
  IndexWidth index_width = IndexWidth::u32;
  AlignedVector<std::int32_t> row_ptr;
  AlignedVector<std::uint16_t> col16;
  AlignedVector<std::uint32_t> col32;
  AlignedVector<float> values;

  std::int64_t nnz() const { return static_cast<std::int64_t>(values.size()); }
  std::uint32_t col(std::int64_t i) const { return index_width == IndexWidth::u16 ? col16[i] : col32[i]; }
  double sparsity() const;   // 1 - nnz / (rows * cols); 0 for an empty matrix

  // `width` forces an index width; by default the narrowest that fits is chosen.
  static Csr from_dense(const Tensor& dense, const Tensor& mask = {}, std::optional<IndexWidth> width = {});
  Tensor to_dense() const;
  void validate() const;
  Footprint footprint(DType value_type = DType::f32) const;
};

// CSC: the same over columns: col_ptr[cols + 1], row indices (u16 when rows <= 65536), values.
struct Csc {
  std::int64_t rows = 0, cols = 0;
  IndexWidth index_width = IndexWidth::u32;
  AlignedVector<std::int32_t> col_ptr;
  AlignedVector<std::uint16_t> row16;
  AlignedVector<std::uint32_t> row32;
  AlignedVector<float> values;

  std::int64_t nnz() const { return static_cast<std::int64_t>(values.size()); }
  std::uint32_t row(std::int64_t i) const { return index_width == IndexWidth::u16 ? row16[i] : row32[i]; }

  static Csc from_dense(const Tensor& dense, const Tensor& mask = {}, std::optional<IndexWidth> width = {});
  Tensor to_dense() const;
  void validate() const;
  Footprint footprint(DType value_type = DType::f32) const;
};

// COO: (row, col, value) triples, u32 indices, sorted by row then column, no duplicates.
struct Coo {
  std::int64_t rows = 0, cols = 0;
  AlignedVector<std::uint32_t> row_idx, col_idx;
  AlignedVector<float> values;

  std::int64_t nnz() const { return static_cast<std::int64_t>(values.size()); }
  static Coo from_dense(const Tensor& dense, const Tensor& mask = {});
  Tensor to_dense() const;
  void validate() const;
  Footprint footprint(DType value_type = DType::f32) const;
};

// Exact conversions between the three (no dense detour). Each validates its input first (throws
// sb::Error when it is corrupt) and gives its result the narrowest index width that fits.
Csr csr_from_coo(const Coo& coo);
Coo coo_from_csr(const Csr& csr);
Csc csc_from_csr(const Csr& csr);
Csr csr_from_csc(const Csc& csc);

}  // namespace sb
