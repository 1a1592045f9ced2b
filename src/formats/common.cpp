#include "sparsebench/formats/common.h"

#include "sparsebench/core/error.h"

namespace sb {

IndexWidth choose_index_width(std::int64_t dimension) {
  SB_CHECK(dimension >= 0, "index width for a negative dimension {}", dimension);
  // Indices run 0 .. dimension - 1, so a dimension of exactly 65536 still fits in 16 bits.
  return dimension <= 65536 ? IndexWidth::u16 : IndexWidth::u32;
}

const char* index_width_name(IndexWidth w) { return w == IndexWidth::u16 ? "u16" : "u32"; }

void check_dense_and_mask(const Tensor& dense, const Tensor& mask, const char* what) {
  SB_CHECK(dense.defined(), "{}: the dense matrix is undefined, expected a 2-D f32 tensor", what);
  SB_CHECK(dense.dim() == 2, "{}: the dense matrix has shape {}, expected 2-D (rows x cols)", what,
           shape_to_string(dense.shape()));
  SB_CHECK(dense.dtype() == DType::f32, "{}: the dense matrix has dtype {}, expected f32", what,
           dtype_name(dense.dtype()));
  // Tensor::is_contiguous() answers false for some empty shapes ([5, 0]); with no elements there
  // is nothing to read, so layout does not matter.
  SB_CHECK(dense.numel() == 0 || dense.is_contiguous(), "{}: the dense matrix {} is not contiguous", what,
           shape_to_string(dense.shape()));
  if (!mask.defined()) return;
  SB_CHECK(mask.dtype() == DType::u8, "{}: the mask has dtype {}, expected u8", what, dtype_name(mask.dtype()));
  SB_CHECK(mask.shape() == dense.shape(), "{}: the mask has shape {}, expected {} (the dense shape)", what,
           shape_to_string(mask.shape()), shape_to_string(dense.shape()));
  SB_CHECK(mask.numel() == 0 || mask.is_contiguous(), "{}: the mask {} is not contiguous", what,
           shape_to_string(mask.shape()));
}

}  // namespace sb
