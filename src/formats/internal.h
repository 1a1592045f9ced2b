#pragma once
// Helpers shared by the format implementations (not public API).
#include <cstdint>
#include <limits>
#include <string>

#include "sparsebench/core/error.h"
#include "sparsebench/formats/common.h"

namespace sb::formats_detail {

// a * b for non-negative sizes, or nullopt-like failure through SB_CHECK naming `what`.
inline std::int64_t checked_mul(std::int64_t a, std::int64_t b, const std::string& what) {
  SB_CHECK(a >= 0 && b >= 0, "{}: negative size in {} x {}", what, a, b);
  SB_CHECK(b == 0 || a <= std::numeric_limits<std::int64_t>::max() / b, "{}: size {} x {} overflows", what, a, b);
  return a * b;
}

inline std::size_t index_bytes(IndexWidth w) { return w == IndexWidth::u16 ? 2 : 4; }

inline std::string dims(std::int64_t rows, std::int64_t cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

inline const std::uint8_t* mask_data(const Tensor& mask) {
  return mask.defined() ? mask.data<std::uint8_t>() : nullptr;
}

}  // namespace sb::formats_detail
