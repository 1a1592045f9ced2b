#include "sparsebench/formats/csr.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "formats/internal.h"
#include "sparsebench/core/error.h"

namespace sb {

using formats_detail::dims;
using formats_detail::index_bytes;
using formats_detail::mask_data;

namespace {

constexpr std::int64_t kMaxU32Dimension = std::int64_t{1} << 32;
constexpr std::int64_t kMaxNnz = std::numeric_limits<std::int32_t>::max();

// CSR and CSC are the same structure over a different major dimension; these names make one
// validator speak the language of each.
struct CompressedNames {
  const char* format;     // "CSR"
  const char* ptr;        // "row_ptr"
  const char* major;      // "row"
  const char* minor;      // "column"
  const char* idx16;      // "col16"
  const char* idx32;      // "col32"
  const char* minor_dim;  // "cols"
};
constexpr CompressedNames kCsrNames{"CSR", "row_ptr", "row", "column", "col16", "col32", "cols"};
constexpr CompressedNames kCscNames{"CSC", "col_ptr", "column", "row", "row16", "row32", "rows"};

IndexWidth resolve_width(const CompressedNames& n, std::int64_t minor_count, std::optional<IndexWidth> width,
                         const std::string& where) {
  SB_CHECK(minor_count <= kMaxU32Dimension, "{} {}: {}={} does not fit 32-bit indices", n.format, where, n.minor_dim,
           minor_count);
  IndexWidth w = width.value_or(choose_index_width(minor_count));
  SB_CHECK(w == IndexWidth::u32 || minor_count <= 65536, "{} {}: index width u16 cannot address {}={} (at most 65536)",
           n.format, where, n.minor_dim, minor_count);
  return w;
}

void validate_compressed(const CompressedNames& n, std::int64_t rows, std::int64_t cols, std::int64_t major_count,
                         std::int64_t minor_count, IndexWidth width, const AlignedVector<std::int32_t>& ptr,
                         const AlignedVector<std::uint16_t>& idx16, const AlignedVector<std::uint32_t>& idx32,
                         std::size_t nvalues) {
  const std::string where = dims(rows, cols);
  SB_CHECK(rows >= 0 && cols >= 0, "{} {}: negative dimension", n.format, where);
  resolve_width(n, minor_count, width, where);
  SB_CHECK(nvalues <= static_cast<std::size_t>(kMaxNnz), "{} {}: {} values, more than int32 {} can count", n.format,
           where, nvalues, n.ptr);
  const auto nnz = static_cast<std::int64_t>(nvalues);
  SB_CHECK(static_cast<std::int64_t>(ptr.size()) == major_count + 1, "{} {}: {} has {} entries, expected {} ({}s + 1)",
           n.format, where, n.ptr, ptr.size(), major_count + 1, n.major);
  SB_CHECK(ptr[0] == 0, "{} {}: {}[0] is {}, expected 0", n.format, where, n.ptr, ptr[0]);
  for (std::int64_t i = 0; i < major_count; ++i)
    SB_CHECK(ptr[i + 1] >= ptr[i], "{} {}: {} decreases at {} {} ({} then {})", n.format, where, n.ptr, n.major, i,
             ptr[i], ptr[i + 1]);
  SB_CHECK(ptr[major_count] == nnz, "{} {}: {}[{}] is {}, expected {} (the count of values)", n.format, where, n.ptr,
           major_count, ptr[major_count], nnz);
  const bool narrow = width == IndexWidth::u16;
  const std::size_t active = narrow ? idx16.size() : idx32.size();
  const std::size_t inactive = narrow ? idx32.size() : idx16.size();
  SB_CHECK(active == nvalues, "{} {}: {} has {} entries, expected {} (nnz, index width {})", n.format, where,
           narrow ? n.idx16 : n.idx32, active, nnz, index_width_name(width));
  SB_CHECK(inactive == 0, "{} {}: {} has {} entries, expected 0 (index width {} stores {})", n.format, where,
           narrow ? n.idx32 : n.idx16, inactive, index_width_name(width), narrow ? n.idx16 : n.idx32);
  for (std::int64_t i = 0; i < major_count; ++i) {
    std::int64_t prev = -1;
    for (std::int64_t e = ptr[i]; e < ptr[i + 1]; ++e) {
      const std::int64_t j = narrow ? idx16[e] : idx32[e];
      SB_CHECK(j < minor_count, "{} {}: entry {} ({} {}) has {} {}, out of range (expected < {}={})", n.format, where,
               e, n.major, i, n.minor, j, n.minor_dim, minor_count);
      SB_CHECK(j > prev, "{} {}: {}s of {} {} are not strictly ascending ({} after {} at entry {})", n.format, where,
               n.minor, n.major, i, j, prev, e);
      prev = j;
    }
  }
}

template <class I>
void fill_csr(const float* d, const std::uint8_t* m, std::int64_t rows, std::int64_t cols,
              const AlignedVector<std::int32_t>& row_ptr, AlignedVector<I>& col, AlignedVector<float>& values) {
  for (std::int64_t i = 0; i < rows; ++i) {
    std::int64_t e = row_ptr[i];
    for (std::int64_t j = 0; j < cols; ++j) {
      const std::int64_t idx = i * cols + j;
      if (is_kept(d, m, idx)) {
        col[e] = static_cast<I>(j);
        values[e] = d[idx];
        ++e;
      }
    }
  }
}

template <class I>
void fill_csc(const float* d, const std::uint8_t* m, std::int64_t rows, std::int64_t cols,
              const AlignedVector<std::int32_t>& col_ptr, AlignedVector<I>& row, AlignedVector<float>& values) {
  std::vector<std::int32_t> cursor(col_ptr.begin(), col_ptr.end() - 1);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      const std::int64_t idx = i * cols + j;
      if (is_kept(d, m, idx)) {
        const std::int32_t e = cursor[j]++;
        row[e] = static_cast<I>(i);
        values[e] = d[idx];
      }
    }
}

// Counting transpose of a validated compressed matrix: minor indices become the new major
// dimension; scanning the old major dimension in order keeps the new minor indices ascending.
template <class GetIdx, class PutIdx>
void transpose_compressed(std::int64_t major_count, std::int64_t minor_count, const AlignedVector<std::int32_t>& ptr,
                          const AlignedVector<float>& values, GetIdx get, AlignedVector<std::int32_t>& out_ptr,
                          AlignedVector<float>& out_values, PutIdx put) {
  out_ptr.assign(static_cast<std::size_t>(minor_count + 1), 0);
  for (std::size_t e = 0; e < values.size(); ++e) ++out_ptr[get(static_cast<std::int64_t>(e)) + 1];
  for (std::int64_t j = 0; j < minor_count; ++j) out_ptr[j + 1] += out_ptr[j];
  out_values.resize(values.size());
  std::vector<std::int32_t> cursor(out_ptr.begin(), out_ptr.end() - 1);
  for (std::int64_t i = 0; i < major_count; ++i)
    for (std::int64_t e = ptr[i]; e < ptr[i + 1]; ++e) {
      const std::int32_t o = cursor[get(e)]++;
      put(o, static_cast<std::uint32_t>(i));
      out_values[o] = values[e];
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------- CSR

double Csr::sparsity() const {
  if (rows * cols == 0) return 0.0;
  return 1.0 - static_cast<double>(nnz()) / (static_cast<double>(rows) * static_cast<double>(cols));
}

Csr Csr::from_dense(const Tensor& dense, const Tensor& mask, std::optional<IndexWidth> width) {
  check_dense_and_mask(dense, mask, "CSR from_dense");
  Csr c;
  c.rows = dense.size(0);
  c.cols = dense.size(1);
  c.index_width = resolve_width(kCsrNames, c.cols, width, "from_dense " + dims(c.rows, c.cols));
  const float* d = dense.data<float>();
  const std::uint8_t* m = mask_data(mask);
  c.row_ptr.assign(static_cast<std::size_t>(c.rows + 1), 0);
  std::int64_t nnz = 0;
  for (std::int64_t i = 0; i < c.rows; ++i) {
    for (std::int64_t j = 0; j < c.cols; ++j) nnz += is_kept(d, m, i * c.cols + j);
    SB_CHECK(nnz <= kMaxNnz, "CSR from_dense {}: more than {} kept entries (int32 row_ptr)", dims(c.rows, c.cols),
             kMaxNnz);
    c.row_ptr[i + 1] = static_cast<std::int32_t>(nnz);
  }
  c.values.resize(static_cast<std::size_t>(nnz));
  if (c.index_width == IndexWidth::u16) {
    c.col16.resize(static_cast<std::size_t>(nnz));
    fill_csr(d, m, c.rows, c.cols, c.row_ptr, c.col16, c.values);
  } else {
    c.col32.resize(static_cast<std::size_t>(nnz));
    fill_csr(d, m, c.rows, c.cols, c.row_ptr, c.col32, c.values);
  }
  return c;
}

Tensor Csr::to_dense() const {
  validate();
  Tensor out = Tensor::zeros({rows, cols});
  float* o = out.data<float>();
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t e = row_ptr[i]; e < row_ptr[i + 1]; ++e) o[i * cols + col(e)] = values[e];
  return out;
}

void Csr::validate() const {
  validate_compressed(kCsrNames, rows, cols, rows, cols, index_width, row_ptr, col16, col32, values.size());
}

Footprint Csr::footprint(DType value_type) const {
  Footprint f;
  f.values = values.size() * dtype_size(value_type);
  f.indices = (index_width == IndexWidth::u16 ? col16.size() : col32.size()) * index_bytes(index_width);
  f.pointers = row_ptr.size() * sizeof(std::int32_t);
  return f;
}

// ---------------------------------------------------------------------------------------- CSC

Csc Csc::from_dense(const Tensor& dense, const Tensor& mask, std::optional<IndexWidth> width) {
  check_dense_and_mask(dense, mask, "CSC from_dense");
  Csc c;
  c.rows = dense.size(0);
  c.cols = dense.size(1);
  c.index_width = resolve_width(kCscNames, c.rows, width, "from_dense " + dims(c.rows, c.cols));
  const float* d = dense.data<float>();
  const std::uint8_t* m = mask_data(mask);
  std::vector<std::int64_t> count(static_cast<std::size_t>(c.cols), 0);
  for (std::int64_t i = 0; i < c.rows; ++i)
    for (std::int64_t j = 0; j < c.cols; ++j) count[j] += is_kept(d, m, i * c.cols + j);
  c.col_ptr.assign(static_cast<std::size_t>(c.cols + 1), 0);
  std::int64_t nnz = 0;
  for (std::int64_t j = 0; j < c.cols; ++j) {
    nnz += count[j];
    SB_CHECK(nnz <= kMaxNnz, "CSC from_dense {}: more than {} kept entries (int32 col_ptr)", dims(c.rows, c.cols),
             kMaxNnz);
    c.col_ptr[j + 1] = static_cast<std::int32_t>(nnz);
  }
  c.values.resize(static_cast<std::size_t>(nnz));
  if (c.index_width == IndexWidth::u16) {
    c.row16.resize(static_cast<std::size_t>(nnz));
    fill_csc(d, m, c.rows, c.cols, c.col_ptr, c.row16, c.values);
  } else {
    c.row32.resize(static_cast<std::size_t>(nnz));
    fill_csc(d, m, c.rows, c.cols, c.col_ptr, c.row32, c.values);
  }
  return c;
}

Tensor Csc::to_dense() const {
  validate();
  Tensor out = Tensor::zeros({rows, cols});
  float* o = out.data<float>();
  for (std::int64_t j = 0; j < cols; ++j)
    for (std::int64_t e = col_ptr[j]; e < col_ptr[j + 1]; ++e) o[row(e) * cols + j] = values[e];
  return out;
}

void Csc::validate() const {
  validate_compressed(kCscNames, rows, cols, cols, rows, index_width, col_ptr, row16, row32, values.size());
}

Footprint Csc::footprint(DType value_type) const {
  Footprint f;
  f.values = values.size() * dtype_size(value_type);
  f.indices = (index_width == IndexWidth::u16 ? row16.size() : row32.size()) * index_bytes(index_width);
  f.pointers = col_ptr.size() * sizeof(std::int32_t);
  return f;
}

// ---------------------------------------------------------------------------------------- COO

Coo Coo::from_dense(const Tensor& dense, const Tensor& mask) {
  check_dense_and_mask(dense, mask, "COO from_dense");
  Coo c;
  c.rows = dense.size(0);
  c.cols = dense.size(1);
  SB_CHECK(c.rows <= kMaxU32Dimension && c.cols <= kMaxU32Dimension,
           "COO from_dense {}: dimensions do not fit 32-bit indices", dims(c.rows, c.cols));
  const float* d = dense.data<float>();
  const std::uint8_t* m = mask_data(mask);
  std::size_t nnz = 0;
  for (std::int64_t idx = 0, n = c.rows * c.cols; idx < n; ++idx) nnz += is_kept(d, m, idx);
  c.row_idx.resize(nnz);
  c.col_idx.resize(nnz);
  c.values.resize(nnz);
  std::size_t e = 0;
  for (std::int64_t i = 0; i < c.rows; ++i)
    for (std::int64_t j = 0; j < c.cols; ++j) {
      const std::int64_t idx = i * c.cols + j;
      if (!is_kept(d, m, idx)) continue;
      c.row_idx[e] = static_cast<std::uint32_t>(i);
      c.col_idx[e] = static_cast<std::uint32_t>(j);
      c.values[e] = d[idx];
      ++e;
    }
  return c;
}

Tensor Coo::to_dense() const {
  validate();
  Tensor out = Tensor::zeros({rows, cols});
  float* o = out.data<float>();
  for (std::size_t e = 0; e < values.size(); ++e)
    o[static_cast<std::int64_t>(row_idx[e]) * cols + col_idx[e]] = values[e];
  return out;
}

void Coo::validate() const {
  const std::string where = dims(rows, cols);
  SB_CHECK(rows >= 0 && cols >= 0, "COO {}: negative dimension", where);
  SB_CHECK(rows <= kMaxU32Dimension && cols <= kMaxU32Dimension, "COO {}: dimensions do not fit 32-bit indices", where);
  SB_CHECK(row_idx.size() == values.size() && col_idx.size() == values.size(),
           "COO {}: row_idx has {} entries and col_idx {}, expected {} each (the count of values)", where,
           row_idx.size(), col_idx.size(), values.size());
  for (std::size_t e = 0; e < values.size(); ++e) {
    SB_CHECK(row_idx[e] < rows, "COO {}: entry {} has row {}, out of range (expected < rows={})", where, e, row_idx[e],
             rows);
    SB_CHECK(col_idx[e] < cols, "COO {}: entry {} has column {}, out of range (expected < cols={})", where, e,
             col_idx[e], cols);
    if (e > 0) {
      const bool after = row_idx[e] > row_idx[e - 1] || (row_idx[e] == row_idx[e - 1] && col_idx[e] > col_idx[e - 1]);
      SB_CHECK(after,
               "COO {}: entry {} ({}, {}) does not come after entry {} ({}, {}); expected sorted by row then "
               "column, no duplicates",
               where, e, row_idx[e], col_idx[e], e - 1, row_idx[e - 1], col_idx[e - 1]);
    }
  }
}

Footprint Coo::footprint(DType value_type) const {
  Footprint f;
  f.values = values.size() * dtype_size(value_type);
  f.indices = (row_idx.size() + col_idx.size()) * sizeof(std::uint32_t);
  return f;
}

// -------------------------------------------------------------------------------- conversions

Csr csr_from_coo(const Coo& coo) {
  coo.validate();
  SB_CHECK(coo.nnz() <= kMaxNnz, "csr_from_coo: COO {} has {} entries, more than int32 row_ptr can count",
           dims(coo.rows, coo.cols), coo.nnz());
  Csr c;
  c.rows = coo.rows;
  c.cols = coo.cols;
  c.index_width = choose_index_width(c.cols);
  c.row_ptr.assign(static_cast<std::size_t>(c.rows + 1), 0);
  for (std::uint32_t r : coo.row_idx) ++c.row_ptr[r + 1];
  for (std::int64_t i = 0; i < c.rows; ++i) c.row_ptr[i + 1] += c.row_ptr[i];
  c.values = coo.values;  // COO is already in CSR order
  if (c.index_width == IndexWidth::u16)
    c.col16.assign(coo.col_idx.begin(), coo.col_idx.end());
  else
    c.col32 = coo.col_idx;
  return c;
}

Coo coo_from_csr(const Csr& csr) {
  csr.validate();
  Coo c;
  c.rows = csr.rows;
  c.cols = csr.cols;
  c.values = csr.values;
  c.row_idx.resize(csr.values.size());
  c.col_idx.resize(csr.values.size());
  for (std::int64_t i = 0; i < csr.rows; ++i)
    for (std::int64_t e = csr.row_ptr[i]; e < csr.row_ptr[i + 1]; ++e) {
      c.row_idx[e] = static_cast<std::uint32_t>(i);
      c.col_idx[e] = csr.col(e);
    }
  return c;
}

Csc csc_from_csr(const Csr& csr) {
  csr.validate();
  Csc c;
  c.rows = csr.rows;
  c.cols = csr.cols;
  c.index_width = choose_index_width(c.rows);
  if (c.index_width == IndexWidth::u16)
    c.row16.resize(csr.values.size());
  else
    c.row32.resize(csr.values.size());
  transpose_compressed(
      csr.rows, csr.cols, csr.row_ptr, csr.values, [&](std::int64_t e) { return csr.col(e); }, c.col_ptr, c.values,
      [&](std::int32_t o, std::uint32_t r) {
        if (c.index_width == IndexWidth::u16)
          c.row16[o] = static_cast<std::uint16_t>(r);
        else
          c.row32[o] = r;
      });
  return c;
}

Csr csr_from_csc(const Csc& csc) {
  csc.validate();
  Csr c;
  c.rows = csc.rows;
  c.cols = csc.cols;
  c.index_width = choose_index_width(c.cols);
  if (c.index_width == IndexWidth::u16)
    c.col16.resize(csc.values.size());
  else
    c.col32.resize(csc.values.size());
  transpose_compressed(
      csc.cols, csc.rows, csc.col_ptr, csc.values, [&](std::int64_t e) { return csc.row(e); }, c.row_ptr, c.values,
      [&](std::int32_t o, std::uint32_t col) {
        if (c.index_width == IndexWidth::u16)
          c.col16[o] = static_cast<std::uint16_t>(col);
        else
          c.col32[o] = col;
      });
  return c;
}

}  // namespace sb
