#pragma once
// NumPy .npy files (format versions 1.0 - 3.0, C order, little-endian), so that users can feed a
// model their own tensor and check its output with NumPy / PyTorch.
#include <string>

#include "sparsebench/core/tensor.h"

namespace sb {

// Reads float32 ('<f4'), float64 ('<f8', converted to f32), int32 ('<i4') and int64 ('<i8',
// converted to i32; values must fit) arrays. Throws sb::Error naming the file and what was
// expected (magic, header, dtype, Fortran order, truncated data).
Tensor read_npy(const std::string& path);
// Writes an f32 or i32 tensor (any strides) as a version 1.0 .npy file. Throws naming the path.
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace sb
