#pragma once
// A strided n-d tensor over 64-byte aligned, reference-counted storage.
#include <cstdint>
#include <algorithm>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "sparsebench/core/dtype.h"
#include "sparsebench/core/error.h"

namespace sb {

using Shape = std::vector<std::int64_t>;

std::string shape_to_string(const Shape& s);   // "[2, 3, 4]"
std::int64_t shape_numel(const Shape& s);        // product; 1 for a scalar shape []

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised contiguous tensor. Dimensions must be >= 0.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, float value);  // f32
  // Copies `count` elements of `data` (contiguous) into a new tensor.
  template <class T> static Tensor from_data(const Shape& shape, const T* data);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }   // in elements
  int dim() const { return static_cast<int>(shape_.size()); }
  std::int64_t size(int d) const;                     // negative d counts from the back
  std::int64_t stride(int d) const;
  std::int64_t numel() const { return shape_numel(shape_); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;

  // Typed access; throws if T does not match dtype().
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data() { return static_cast<char*>(storage_.get()) + offset_ * dtype_size(dtype_); }
  const void* raw_data() const { return static_cast<const char*>(storage_.get()) + offset_ * dtype_size(dtype_); }

  // Element access for f32 tensors of any strides (slow; for tests and tools).
  float at(std::initializer_list<std::int64_t> index) const;

  // A view with a new shape over the same storage; requires contiguity. One dimension may be -1.
  Tensor reshape(const Shape& shape) const;
  // A view swapping two dimensions (no copy).
  Tensor transpose(int d0, int d1) const;
  // A contiguous deep copy.
  Tensor clone() const;
  Tensor contiguous() const { return is_contiguous() ? *this : clone(); }
  // Fills every element with `value` (f32 tensors), or with the bit pattern of a quiet NaN for
  // poisoning outputs before a kernel runs.
  void fill(float value);
  void fill_nan() { fill(std::numeric_limits<float>::quiet_NaN()); }

 private:
  std::shared_ptr<void> storage_;
  std::int64_t offset_ = 0;
  Shape shape_, strides_;
  DType dtype_ = DType::f32;
};

template <class T> Tensor Tensor::from_data(const Shape& shape, const T* data) {
  Tensor t = empty(shape, dtype_of<T>());
  std::copy(data, data + t.numel(), t.data<T>());
  return t;
}

template <class T> T* Tensor::data() {
  SB_CHECK(dtype_ == dtype_of<T>(), "tensor of dtype {} accessed as {}", dtype_name(dtype_),
           dtype_name(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}
template <class T> const T* Tensor::data() const {
  SB_CHECK(dtype_ == dtype_of<T>(), "tensor of dtype {} accessed as {}", dtype_name(dtype_),
           dtype_name(dtype_of<T>()));
  return static_cast<const T*>(raw_data());
}

}  // namespace sb
