#pragma once
// Constants of the ONNX importer: small n-d arrays (f32 or i64) evaluated at import time, and their
// conversion from TensorProto / SparseTensorProto.
#include <cstdint>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "sparsebench/core/tensor.h"

namespace sb::onnx_detail {

// A constant: floats (FLOAT, DOUBLE, FLOAT16 not supported) or integers (INT*, UINT*, BOOL).
struct Const {
  Shape dims;
  bool is_int = false;
  std::vector<float> f;
  std::vector<std::int64_t> i;
  std::int64_t numel() const { return shape_numel(dims); }
  double get(std::int64_t k) const { return is_int ? static_cast<double>(i[k]) : static_cast<double>(f[k]); }
  std::vector<std::int64_t> ints() const;   // every element as an integer
  Tensor to_tensor() const;                  // f32 (integers converted)
};

// `what` names the tensor in errors ("model.onnx: initializer 'w'").
Const from_tensor_proto(const onnx::TensorProto& t, const std::string& what);
Const from_sparse_tensor_proto(const onnx::SparseTensorProto& t, const std::string& what);

}  // namespace sb::onnx_detail
