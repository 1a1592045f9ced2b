#include "sparsebench/formats/bsr.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "formats/internal.h"
#include "sparsebench/core/error.h"

namespace sb {

using formats_detail::checked_mul;
using formats_detail::dims;
using formats_detail::index_bytes;
using formats_detail::mask_data;

namespace {

constexpr std::int64_t kMaxU32Dimension = std::int64_t{1} << 32;
constexpr std::int64_t kMaxBlocks = std::numeric_limits<std::int32_t>::max();

std::string where(const Bsr& b) {
  return fmt::format("BSR {} block {}x{}", dims(b.rows, b.cols), b.block_rows, b.block_cols);
}

void check_block_dims(int block_rows, int block_cols) {
  SB_CHECK(block_rows >= 1 && block_cols >= 1, "BSR block {}x{}: block dimensions must be >= 1", block_rows,
           block_cols);
}

IndexWidth resolve_width(std::int64_t block_col_count, std::optional<IndexWidth> width, const std::string& at) {
  SB_CHECK(block_col_count <= kMaxU32Dimension, "{}: {} block columns do not fit 32-bit indices", at, block_col_count);
  IndexWidth w = width.value_or(choose_index_width(block_col_count));
  SB_CHECK(w == IndexWidth::u32 || block_col_count <= 65536,
           "{}: index width u16 cannot address {} block columns (at most 65536)", at, block_col_count);
  return w;
}

}  // namespace

Bsr Bsr::from_dense(const Tensor& dense, int block_rows, int block_cols, const Tensor& mask,
                    std::optional<IndexWidth> width) {
  check_block_dims(block_rows, block_cols);
  check_dense_and_mask(dense, mask, "BSR from_dense");
  Bsr b;
  b.rows = dense.size(0);
  b.cols = dense.size(1);
  b.block_rows = block_rows;
  b.block_cols = block_cols;
  const std::string at = "BSR from_dense " + where(b).substr(4);
  const std::int64_t brc = b.block_row_count(), bcc = b.block_col_count();
  b.index_width = resolve_width(bcc, width, at);
  const std::int64_t block_size = checked_mul(block_rows, block_cols, at);
  const float* d = dense.data<float>();
  const std::uint8_t* m = mask_data(mask);

  b.block_row_ptr.assign(static_cast<std::size_t>(brc + 1), 0);
  std::vector<std::uint8_t> stored(static_cast<std::size_t>(bcc));
  std::int64_t nblocks = 0;
  for (std::int64_t bi = 0; bi < brc; ++bi) {
    const std::int64_t r0 = bi * block_rows, r1 = std::min(b.rows, r0 + block_rows);
    std::fill(stored.begin(), stored.end(), 0);
    for (std::int64_t i = r0; i < r1; ++i)
      for (std::int64_t bj = 0; bj < bcc; ++bj) {
        if (stored[bj]) continue;
        const std::int64_t c0 = bj * block_cols, c1 = std::min(b.cols, c0 + block_cols);
        for (std::int64_t j = c0; j < c1; ++j)
          if (is_kept(d, m, i * b.cols + j)) {
            stored[bj] = 1;
            break;
          }
      }
    const std::int64_t first = nblocks;
    for (std::int64_t bj = 0; bj < bcc; ++bj) nblocks += stored[bj];
    SB_CHECK(nblocks <= kMaxBlocks, "{}: more than {} stored blocks (int32 block_row_ptr)", at, kMaxBlocks);
    b.block_row_ptr[bi + 1] = static_cast<std::int32_t>(nblocks);
    b.values.resize(static_cast<std::size_t>(checked_mul(nblocks, block_size, at)));
    std::int64_t e = first;
    for (std::int64_t bj = 0; bj < bcc; ++bj) {
      if (!stored[bj]) continue;
      if (b.index_width == IndexWidth::u16)
        b.block_col16.push_back(static_cast<std::uint16_t>(bj));
      else
        b.block_col32.push_back(static_cast<std::uint32_t>(bj));
      float* v = b.values.data() + e * block_size;
      for (std::int64_t r = 0; r < block_rows; ++r)
        for (std::int64_t c = 0; c < block_cols; ++c) {
          const std::int64_t i = r0 + r, j = bj * block_cols + c;
          float x = 0.f;
          if (i < b.rows && j < b.cols) {
            const std::int64_t idx = i * b.cols + j;
            if (is_kept(d, m, idx)) x = d[idx];
          }
          v[r * block_cols + c] = x;
        }
      ++e;
    }
  }
  return b;
}

Tensor Bsr::to_dense() const {
  validate();
  Tensor out = Tensor::zeros({rows, cols});
  float* o = out.data<float>();
  const std::int64_t block_size = std::int64_t{block_rows} * block_cols;
  for (std::int64_t bi = 0; bi < block_row_count(); ++bi)
    for (std::int64_t e = block_row_ptr[bi]; e < block_row_ptr[bi + 1]; ++e) {
      const std::int64_t r0 = bi * block_rows, c0 = std::int64_t{block_col(e)} * block_cols;
      const std::int64_t rn = std::min<std::int64_t>(block_rows, rows - r0);
      const std::int64_t cn = std::min<std::int64_t>(block_cols, cols - c0);
      const float* v = values.data() + e * block_size;
      for (std::int64_t r = 0; r < rn; ++r)
        for (std::int64_t c = 0; c < cn; ++c) o[(r0 + r) * cols + c0 + c] = v[r * block_cols + c];
    }
  return out;
}

void Bsr::validate() const {
  check_block_dims(block_rows, block_cols);
  const std::string at = where(*this);
  SB_CHECK(rows >= 0 && cols >= 0, "{}: negative dimension", at);
  const std::int64_t brc = block_row_count(), bcc = block_col_count();
  resolve_width(bcc, index_width, at);
  SB_CHECK(static_cast<std::int64_t>(block_row_ptr.size()) == brc + 1,
           "{}: block_row_ptr has {} entries, expected {} (block rows + 1)", at, block_row_ptr.size(), brc + 1);
  SB_CHECK(block_row_ptr[0] == 0, "{}: block_row_ptr[0] is {}, expected 0", at, block_row_ptr[0]);
  for (std::int64_t bi = 0; bi < brc; ++bi)
    SB_CHECK(block_row_ptr[bi + 1] >= block_row_ptr[bi], "{}: block_row_ptr decreases at block row {} ({} then {})", at,
             bi, block_row_ptr[bi], block_row_ptr[bi + 1]);
  const std::int64_t nb = block_row_ptr[brc];
  const bool narrow = index_width == IndexWidth::u16;
  const std::size_t active = narrow ? block_col16.size() : block_col32.size();
  const std::size_t inactive = narrow ? block_col32.size() : block_col16.size();
  SB_CHECK(static_cast<std::int64_t>(active) == nb, "{}: {} has {} entries, expected {} (blocks, index width {})", at,
           narrow ? "block_col16" : "block_col32", active, nb, index_width_name(index_width));
  SB_CHECK(inactive == 0, "{}: {} has {} entries, expected 0 (index width {} stores {})", at,
           narrow ? "block_col32" : "block_col16", inactive, index_width_name(index_width),
           narrow ? "block_col16" : "block_col32");
  const std::int64_t block_size = checked_mul(block_rows, block_cols, at);
  const std::int64_t nvalues = checked_mul(nb, block_size, at);
  SB_CHECK(static_cast<std::int64_t>(values.size()) == nvalues,
           "{}: values has {} entries, expected {} ({} blocks x {}x{})", at, values.size(), nvalues, nb, block_rows,
           block_cols);
  for (std::int64_t bi = 0; bi < brc; ++bi) {
    std::int64_t prev = -1;
    for (std::int64_t e = block_row_ptr[bi]; e < block_row_ptr[bi + 1]; ++e) {
      const std::int64_t bj = block_col(e);
      SB_CHECK(bj < bcc, "{}: block {} (block row {}) has block column {}, out of range (expected < {})", at, e, bi, bj,
               bcc);
      SB_CHECK(bj > prev, "{}: block columns of block row {} are not strictly ascending ({} after {} at block {})", at,
               bi, bj, prev, e);
      prev = bj;
      // Kernels may run whole blocks; padding that is not zero would leak into real outputs.
      const std::int64_t r0 = bi * block_rows, c0 = bj * block_cols;
      if (r0 + block_rows <= rows && c0 + block_cols <= cols) continue;
      const float* v = values.data() + e * block_size;
      for (std::int64_t r = 0; r < block_rows; ++r)
        for (std::int64_t c = 0; c < block_cols; ++c) {
          if (r0 + r < rows && c0 + c < cols) continue;
          const float x = v[r * block_cols + c];
          SB_CHECK(x == 0.f,
                   "{}: block {} (block row {}, block column {}) holds {} at padded position ({}, {}), expected 0 "
                   "(outside the matrix)",
                   at, e, bi, bj, x, r0 + r, c0 + c);
        }
    }
  }
}

Footprint Bsr::footprint(DType value_type) const {
  Footprint f;
  const bool narrow = index_width == IndexWidth::u16;
  const std::size_t nidx = narrow ? block_col16.size() : block_col32.size();
  f.values = values.size() * dtype_size(value_type);
  f.indices = nidx * index_bytes(index_width);
  f.pointers = block_row_ptr.size() * sizeof(std::int32_t);
  if (block_rows < 1 || block_cols < 1) return f;
  // Bounds-checked so a footprint of a corrupt instance cannot read out of range.
  const std::int64_t brc = std::min<std::int64_t>(block_row_count(), std::int64_t(block_row_ptr.size()) - 1);
  for (std::int64_t bi = 0; bi < brc; ++bi) {
    const std::int64_t rn = std::min<std::int64_t>(block_rows, rows - bi * block_rows);
    for (std::int64_t e = std::max(0, block_row_ptr[bi]);
         e < block_row_ptr[bi + 1] && e < static_cast<std::int64_t>(nidx); ++e) {
      const std::int64_t cn = std::min<std::int64_t>(block_cols, cols - std::int64_t{block_col(e)} * block_cols);
      f.padding_values += std::int64_t{block_rows} * block_cols - rn * std::max<std::int64_t>(cn, 0);
    }
  }
  return f;
}

}  // namespace sb
