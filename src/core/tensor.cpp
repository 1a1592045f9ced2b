#include "sparsebench/core/tensor.h"

#include <cstdlib>
#include <cstring>

#include <fmt/ranges.h>

#include "sparsebench/core/aligned.h"

namespace sb {

std::string shape_to_string(const Shape& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

static Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  std::int64_t s = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= std::max<std::int64_t>(shape[i], 1);
  }
  return strides;
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (auto d : shape)
    SB_CHECK(d >= 0, "tensor shape {} has a negative dimension", shape_to_string(shape));
  Tensor t;
  std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, bytes == 0 ? kAlignment : bytes);
  if (!p) throw std::bad_alloc();
  t.storage_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape, DType::f32);
  t.fill(value);
  return t;
}

std::int64_t Tensor::size(int d) const {
  int n = dim();
  if (d < 0) d += n;
  SB_CHECK(d >= 0 && d < n, "dimension {} out of range for a tensor of shape {}", d, shape_to_string(shape_));
  return shape_[d];
}

std::int64_t Tensor::stride(int d) const {
  int n = dim();
  if (d < 0) d += n;
  SB_CHECK(d >= 0 && d < n, "dimension {} out of range for a tensor of shape {}", d, shape_to_string(shape_));
  return strides_[d];
}

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // nothing to lay out
  std::int64_t s = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != s) return false;
    s *= shape_[i];
  }
  return true;
}

float Tensor::at(std::initializer_list<std::int64_t> index) const {
  SB_CHECK(static_cast<int>(index.size()) == dim(), "index of {} dimensions for a tensor of shape {}",
           index.size(), shape_to_string(shape_));
  std::int64_t off = 0;
  int d = 0;
  for (auto i : index) {
    SB_CHECK(i >= 0 && i < shape_[d], "index {} out of range in dimension {} of shape {}", i, d,
             shape_to_string(shape_));
    off += i * strides_[d++];
  }
  return data<float>()[off];
}

Tensor Tensor::reshape(const Shape& shape) const {
  SB_CHECK(is_contiguous(), "reshape of a non-contiguous tensor of shape {}", shape_to_string(shape_));
  Shape s = shape;
  int infer = -1;
  std::int64_t known = 1;
  for (int i = 0; i < static_cast<int>(s.size()); ++i) {
    if (s[i] == -1) {
      SB_CHECK(infer < 0, "reshape to {}: at most one dimension may be -1", shape_to_string(shape));
      infer = i;
    } else {
      SB_CHECK(s[i] >= 0, "reshape to {}: negative dimension", shape_to_string(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    SB_CHECK(known > 0 && numel() % known == 0, "cannot reshape {} to {}", shape_to_string(shape_),
             shape_to_string(shape));
    s[infer] = numel() / known;
  }
  SB_CHECK(shape_numel(s) == numel(), "cannot reshape {} ({} elements) to {}", shape_to_string(shape_),
           numel(), shape_to_string(shape));
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::transpose(int d0, int d1) const {
  int n = dim();
  if (d0 < 0) d0 += n;
  if (d1 < 0) d1 += n;
  SB_CHECK(d0 >= 0 && d0 < n && d1 >= 0 && d1 < n, "transpose({}, {}) of a tensor of shape {}", d0, d1,
           shape_to_string(shape_));
  Tensor t = *this;
  std::swap(t.shape_[d0], t.shape_[d1]);
  std::swap(t.strides_[d0], t.strides_[d1]);
  return t;
}

Tensor Tensor::clone() const {
  SB_CHECK(defined(), "clone of an undefined tensor");
  Tensor t = empty(shape_, dtype_);
  const std::size_t es = dtype_size(dtype_);
  if (is_contiguous()) {
    std::memcpy(t.raw_data(), raw_data(), nbytes());
    return t;
  }
  const std::int64_t total = numel();
  Shape idx(shape_.size(), 0);
  const char* src = static_cast<const char*>(raw_data());
  char* dst = static_cast<char*>(t.raw_data());
  for (std::int64_t i = 0; i < total; ++i) {
    std::int64_t off = 0;
    for (int d = 0; d < dim(); ++d) off += idx[d] * strides_[d];
    std::memcpy(dst + i * es, src + off * es, es);
    for (int d = dim() - 1; d >= 0; --d) {
      if (++idx[d] < shape_[d]) break;
      idx[d] = 0;
    }
  }
  return t;
}

void Tensor::fill(float value) {
  SB_CHECK(dtype_ == DType::f32, "fill() on a tensor of dtype {}", dtype_name(dtype_));
  SB_CHECK(is_contiguous(), "fill() on a non-contiguous tensor");
  float* p = data<float>();
  std::fill(p, p + numel(), value);
}

}  // namespace sb
