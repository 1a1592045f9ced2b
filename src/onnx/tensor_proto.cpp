// TensorProto / SparseTensorProto -> importer constants, validating sizes against dims.
#include "tensor_proto.h"

#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sparsebench/core/error.h"

namespace sb::onnx_detail {

std::vector<std::int64_t> Const::ints() const {
  if (is_int) return i;
  std::vector<std::int64_t> out(f.size());
  for (std::size_t k = 0; k < f.size(); ++k) out[k] = static_cast<std::int64_t>(f[k]);
  return out;
}

Tensor Const::to_tensor() const {
  Tensor t = Tensor::empty(dims, DType::f32);
  float* p = t.data<float>();
  for (std::int64_t k = 0; k < numel(); ++k) p[k] = is_int ? static_cast<float>(i[k]) : f[k];
  return t;
}

namespace {

template <class T> std::vector<T> raw_as(const std::string& raw, std::int64_t n, const std::string& what) {
  SB_CHECK(raw.size() == static_cast<std::size_t>(n) * sizeof(T),
           "{}: raw_data has {} bytes, its dims need {} (truncated or corrupted file?)", what, raw.size(),
           static_cast<std::size_t>(n) * sizeof(T));
  std::vector<T> out(static_cast<std::size_t>(n));
  if (n) std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

template <class Field> void check_count(const Field& field, std::int64_t n, const std::string& what) {
  SB_CHECK(static_cast<std::int64_t>(field.size()) == n,
           "{}: has {} values, its dims need {} (truncated or corrupted file?)", what, field.size(), n);
}

}  // namespace

Const from_tensor_proto(const onnx::TensorProto& t, const std::string& what) {
  SB_CHECK(t.data_location() != onnx::TensorProto::EXTERNAL && t.external_data_size() == 0,
           "{}: external data is not supported (save the model with all tensors inside the .onnx file)", what);
  Const c;
  for (auto d : t.dims()) {
    SB_CHECK(d >= 0 && d < (std::int64_t{1} << 40), "{}: invalid dimension {}", what, d);
    c.dims.push_back(d);
  }
  const std::int64_t n = c.numel();
  SB_CHECK(n < (std::int64_t{1} << 33), "{}: {} elements is not plausible (corrupted file?)", what, n);
  const bool raw = t.has_raw_data();
  using TP = onnx::TensorProto;
  switch (t.data_type()) {
    case TP::FLOAT:
      if (raw) c.f = raw_as<float>(t.raw_data(), n, what);
      else { check_count(t.float_data(), n, what); c.f.assign(t.float_data().begin(), t.float_data().end()); }
      break;
    case TP::DOUBLE: {
      std::vector<double> d;
      if (raw) d = raw_as<double>(t.raw_data(), n, what);
      else { check_count(t.double_data(), n, what); d.assign(t.double_data().begin(), t.double_data().end()); }
      c.f.assign(d.begin(), d.end());
      break;
    }
    case TP::INT64:
      c.is_int = true;
      if (raw) c.i = raw_as<std::int64_t>(t.raw_data(), n, what);
      else { check_count(t.int64_data(), n, what); c.i.assign(t.int64_data().begin(), t.int64_data().end()); }
      break;
    case TP::INT32: case TP::INT16: case TP::INT8: case TP::UINT8: case TP::UINT16: case TP::BOOL: {
      c.is_int = true;
      if (raw) {
        const int dt = t.data_type();
        if (dt == TP::INT32) { auto v = raw_as<std::int32_t>(t.raw_data(), n, what); c.i.assign(v.begin(), v.end()); }
        else if (dt == TP::INT16) { auto v = raw_as<std::int16_t>(t.raw_data(), n, what); c.i.assign(v.begin(), v.end()); }
        else if (dt == TP::UINT16) { auto v = raw_as<std::uint16_t>(t.raw_data(), n, what); c.i.assign(v.begin(), v.end()); }
        else if (dt == TP::INT8) { auto v = raw_as<std::int8_t>(t.raw_data(), n, what); c.i.assign(v.begin(), v.end()); }
        else { auto v = raw_as<std::uint8_t>(t.raw_data(), n, what); c.i.assign(v.begin(), v.end()); }
      } else {
        check_count(t.int32_data(), n, what);
        c.i.assign(t.int32_data().begin(), t.int32_data().end());
      }
      break;
    }
    default:
      fail(fmt::format("{}: data type {} ({}) is not supported (expected FLOAT, DOUBLE or an integer type)", what,
                       t.data_type(), TP::DataType_IsValid(t.data_type()) ? TP::DataType_Name(t.data_type()) : "invalid"));
  }
  return c;
}

Const from_sparse_tensor_proto(const onnx::SparseTensorProto& s, const std::string& what) {
  Const values = from_tensor_proto(s.values(), what + " (values)");
  Const idx = from_tensor_proto(s.indices(), what + " (indices)");
  SB_CHECK(idx.is_int, "{}: indices must be integers", what);
  Const c;
  for (auto d : s.dims()) {
    SB_CHECK(d >= 0 && d < (std::int64_t{1} << 40), "{}: invalid dimension {}", what, d);
    c.dims.push_back(d);
  }
  const std::int64_t n = c.numel(), nnz = values.numel(), rank = static_cast<std::int64_t>(c.dims.size());
  SB_CHECK(n < (std::int64_t{1} << 33), "{}: {} elements is not plausible (corrupted file?)", what, n);
  SB_CHECK(values.dims.size() == 1, "{}: values must be 1-D [nnz], got {}", what, shape_to_string(values.dims));
  c.is_int = values.is_int;
  if (c.is_int) c.i.assign(static_cast<std::size_t>(n), 0);
  else c.f.assign(static_cast<std::size_t>(n), 0.0f);
  const bool linear = idx.dims.size() == 1;
  SB_CHECK((linear && idx.dims[0] == nnz) || (idx.dims.size() == 2 && idx.dims[0] == nnz && idx.dims[1] == rank),
           "{}: indices of shape {} do not fit {} values of a rank-{} tensor (expected [nnz] or [nnz, rank])", what,
           shape_to_string(idx.dims), nnz, rank);
  for (std::int64_t k = 0; k < nnz; ++k) {
    std::int64_t at = 0;
    if (linear) {
      at = idx.i[k];
    } else {
      for (std::int64_t d = 0; d < rank; ++d) {
        const std::int64_t x = idx.i[k * rank + d];
        SB_CHECK(x >= 0 && x < c.dims[d], "{}: index {} of dim {} out of range [0, {})", what, x, d, c.dims[d]);
        at = at * c.dims[d] + x;
      }
    }
    SB_CHECK(at >= 0 && at < n, "{}: index {} out of range [0, {})", what, at, n);
    if (c.is_int) c.i[at] = values.i[k];
    else c.f[at] = values.f[k];
  }
  return c;
}

}  // namespace sb::onnx_detail
