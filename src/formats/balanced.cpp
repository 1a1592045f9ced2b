#include "sparsebench/formats/balanced.h"

#include <algorithm>
#include <string>

#include "formats/internal.h"
#include "sparsebench/core/error.h"

namespace sb {

using formats_detail::checked_mul;
using formats_detail::dims;
using formats_detail::mask_data;

namespace {

std::string where(const Balanced& b) {
  return fmt::format("Balanced {} bank={} k={}", dims(b.rows, b.cols), b.bank, b.k);
}

void check_bank_k(int bank, int k, const std::string& at) {
  SB_CHECK(bank >= 1, "{}: bank must be >= 1", at);
  SB_CHECK(bank <= 65536, "{}: bank must be <= 65536 (in-bank offsets are at most 16-bit)", at);
  SB_CHECK(k >= 1, "{}: k must be >= 1", at);
  SB_CHECK(k <= bank, "{}: k must be <= bank", at);
}

// Shared by Balanced and N:M so that an over-full bank is reported in the caller's vocabulary.
Balanced build_balanced(const Tensor& dense, int bank, int k, const Tensor& mask, const char* what, bool nm) {
  Balanced b;
  b.rows = dense.size(0);
  b.cols = dense.size(1);
  b.bank = bank;
  b.k = k;
  const std::int64_t banks = b.banks();
  const std::int64_t n = checked_mul(checked_mul(b.rows, banks, what), k, what);
  b.values.resize(static_cast<std::size_t>(n));
  const bool wide = b.wide_offsets();
  if (wide)
    b.off16.resize(static_cast<std::size_t>(n));
  else
    b.off8.resize(static_cast<std::size_t>(n));
  const float* d = dense.data<float>();
  const std::uint8_t* m = mask_data(mask);
  std::int64_t slot = 0;
  auto emit = [&](std::int64_t offset, float value) {
    b.values[slot] = value;
    if (wide)
      b.off16[slot] = static_cast<std::uint16_t>(offset);
    else
      b.off8[slot] = static_cast<std::uint8_t>(offset);
    ++slot;
  };
  for (std::int64_t i = 0; i < b.rows; ++i) {
    const float* drow = d + i * b.cols;
    const std::uint8_t* mrow = m ? m + i * b.cols : nullptr;
    for (std::int64_t g = 0; g < banks; ++g) {
      const std::int64_t c0 = g * bank, w = std::min<std::int64_t>(bank, b.cols - c0);
      std::int64_t kept = 0;
      for (std::int64_t o = 0; o < w; ++o) kept += is_kept(drow, mrow, c0 + o);
      if (nm)
        SB_CHECK(kept <= k, "N:M {}:{}: group {} of row {} keeps {} entries, more than n={} (columns {}..{})", k, bank,
                 g, i, kept, k, c0, c0 + w - 1);
      else
        SB_CHECK(kept <= k, "Balanced: bank {} of row {} keeps {} entries, more than k={} (columns {}..{})", g, i, kept,
                 k, c0, c0 + w - 1);
      // Padding takes the lowest free offsets, so offsets stay ascending and distinct whenever the
      // bank is wide enough; only a bank narrower than k must repeat one (its last column).
      std::int64_t need = k - kept;
      b.padding += need;
      const std::int64_t end = slot + k;
      for (std::int64_t o = 0; o < w; ++o) {
        if (is_kept(drow, mrow, c0 + o)) {
          emit(o, drow[c0 + o]);
        } else if (need > 0) {
          emit(o, 0.f);
          --need;
        }
      }
      while (slot < end) emit(w - 1, 0.f);
    }
  }
  return b;
}

}  // namespace

double Balanced::sparsity() const {
  const double total = static_cast<double>(rows) * static_cast<double>(cols);
  if (total == 0) return 0.0;
  return 1.0 - static_cast<double>(static_cast<std::int64_t>(values.size()) - padding) / total;
}

Balanced Balanced::from_dense(const Tensor& dense, int bank, int k, const Tensor& mask) {
  check_bank_k(bank, k, fmt::format("Balanced from_dense bank={} k={}", bank, k));
  check_dense_and_mask(dense, mask, "Balanced from_dense");
  return build_balanced(dense, bank, k, mask, "Balanced from_dense", false);
}

Balanced Balanced::from_dense_infer_k(const Tensor& dense, int bank, const Tensor& mask) {
  check_bank_k(bank, 1, fmt::format("Balanced from_dense_infer_k bank={}", bank));
  check_dense_and_mask(dense, mask, "Balanced from_dense_infer_k");
  const std::int64_t rows = dense.size(0), cols = dense.size(1);
  const float* d = dense.data<float>();
  const std::uint8_t* m = mask_data(mask);
  std::int64_t k = 1;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t c0 = 0; c0 < cols; c0 += bank) {
      const std::int64_t c1 = std::min<std::int64_t>(cols, c0 + bank);
      std::int64_t kept = 0;
      for (std::int64_t j = c0; j < c1; ++j) kept += is_kept(d, m, i * cols + j);
      k = std::max(k, kept);
    }
  return build_balanced(dense, bank, static_cast<int>(k), mask, "Balanced from_dense_infer_k", false);
}

Balanced Balanced::from_dense_nm(const Tensor& dense, int n, int m, const Tensor& mask) {
  SB_CHECK(1 <= n && n <= m, "N:M {}:{}: expected 1 <= n <= m", n, m);
  check_bank_k(m, n, fmt::format("N:M {}:{}", n, m));
  check_dense_and_mask(dense, mask, "N:M from_dense");
  return build_balanced(dense, m, n, mask, "N:M from_dense", true);
}

Tensor Balanced::to_dense() const {
  validate();
  Tensor out = Tensor::zeros({rows, cols});
  float* o = out.data<float>();
  const std::int64_t nb = banks();
  std::int64_t s = 0;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t g = 0; g < nb; ++g)
      for (int t = 0; t < k; ++t, ++s) {
        // A repeated offset is padding; writing its 0 would erase the kept value before it.
        if (t > 0 && offset(s) == offset(s - 1)) continue;
        o[i * cols + g * bank + offset(s)] = values[s];
      }
  return out;
}

void Balanced::validate() const {
  const std::string at = where(*this);
  check_bank_k(bank, k, at);
  SB_CHECK(rows >= 0 && cols >= 0, "{}: negative dimension", at);
  const std::int64_t nb = banks();
  const std::int64_t n = checked_mul(checked_mul(rows, nb, at), k, at);
  SB_CHECK(static_cast<std::int64_t>(values.size()) == n,
           "{}: values has {} entries, expected {} (rows x banks x k = {} x {} x {})", at, values.size(), n, rows, nb,
           k);
  const bool wide = wide_offsets();
  const std::size_t active = wide ? off16.size() : off8.size();
  const std::size_t inactive = wide ? off8.size() : off16.size();
  SB_CHECK(static_cast<std::int64_t>(active) == n, "{}: {} has {} entries, expected {} (rows x banks x k)", at,
           wide ? "off16" : "off8", active, n);
  SB_CHECK(inactive == 0, "{}: {} has {} entries, expected 0 (bank {} 256 stores {})", at, wide ? "off8" : "off16",
           inactive, wide ? ">" : "<=", wide ? "off16" : "off8");
  std::int64_t repeats = 0, zeros = 0, s = 0;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t g = 0; g < nb; ++g) {
      const std::int64_t w = std::min<std::int64_t>(bank, cols - g * bank);
      for (int t = 0; t < k; ++t, ++s) {
        const std::int64_t o = offset(s);
        zeros += values[s] == 0.f;
        SB_CHECK(o < w,
                 "{}: bank {} of row {} has offset {} at slot {}, out of range (expected < {}, the bank's width)", at,
                 g, i, o, t, w);
        if (t == 0) continue;
        const std::int64_t prev = offset(s - 1);
        SB_CHECK(o >= prev, "{}: offsets of bank {} of row {} are not ascending ({} after {} at slot {})", at, g, i, o,
                 prev, t);
        if (o > prev) continue;
        SB_CHECK(w < k,
                 "{}: bank {} of row {} repeats offset {} at slot {}; only a bank narrower than k may repeat (its "
                 "width is {})",
                 at, g, i, o, t, w);
        SB_CHECK(values[s] == 0.f,
                 "{}: bank {} of row {} repeats offset {} at slot {} with value {}, expected 0 (padding)", at, g, i, o,
                 t, values[s]);
        ++repeats;
      }
    }
  SB_CHECK(padding >= repeats, "{}: padding is {}, but {} entries repeat an offset and must be padding", at, padding,
           repeats);
  SB_CHECK(padding <= zeros, "{}: padding is {}, more than the {} stored entries that hold 0", at, padding, zeros);
}

Footprint Balanced::footprint(DType value_type) const {
  Footprint f;
  f.values = values.size() * dtype_size(value_type);
  f.indices = off8.size() * sizeof(std::uint8_t) + off16.size() * sizeof(std::uint16_t);
  f.padding_values = padding;
  return f;
}

// ----------------------------------------------------------------------------------- Sparse24

namespace {

std::string where(const Sparse24& s) { return "Sparse24 " + dims(s.rows, s.cols); }

}  // namespace

Sparse24 Sparse24::from_dense(const Tensor& dense, const Tensor& mask) {
  check_dense_and_mask(dense, mask, "Sparse24 from_dense");
  Sparse24 s;
  s.rows = dense.size(0);
  s.cols = dense.size(1);
  const std::string at = "Sparse24 from_dense " + dims(s.rows, s.cols);
  const std::int64_t cp = s.cols_padded(), groups = cp / 4, words = cp / 16;
  s.values.assign(static_cast<std::size_t>(checked_mul(s.rows, cp / 2, at)), 0.f);
  s.metadata.assign(static_cast<std::size_t>(checked_mul(s.rows, words, at)), 0);
  const float* d = dense.data<float>();
  const std::uint8_t* m = mask_data(mask);
  for (std::int64_t i = 0; i < s.rows; ++i) {
    const float* drow = d + i * s.cols;
    const std::uint8_t* mrow = m ? m + i * s.cols : nullptr;
    for (std::int64_t g = 0; g < groups; ++g) {
      const std::int64_t c0 = g * 4;
      bool kept[4];
      int count = 0;
      for (int p = 0; p < 4; ++p) {
        kept[p] = c0 + p < s.cols && is_kept(drow, mrow, c0 + p);
        count += kept[p];
      }
      SB_CHECK(count <= 2, "Sparse24: group {} of row {} keeps {} entries, more than 2 (columns {}..{})", g, i, count,
               c0, std::min<std::int64_t>(c0 + 3, s.cols - 1));
      // Free positions are taken lowest first, which keeps a group's two indices ascending.
      int need = 2 - count, t = 0;
      unsigned nibble = 0;
      float* v = s.values.data() + i * (cp / 2) + g * 2;
      for (int p = 0; p < 4 && t < 2; ++p) {
        if (!kept[p]) {
          if (need == 0) continue;
          --need;
          ++s.padding;
        }
        v[t] = kept[p] ? drow[c0 + p] : 0.f;
        nibble |= static_cast<unsigned>(p) << (2 * t);
        ++t;
      }
      s.metadata[i * words + g / 4] |= static_cast<std::uint16_t>(nibble << (4 * (g % 4)));
    }
  }
  return s;
}

Tensor Sparse24::to_dense() const {
  validate();
  Tensor out = Tensor::zeros({rows, cols});
  float* o = out.data<float>();
  const std::int64_t cp = cols_padded(), words = cp / 16;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t g = 0; g < cp / 4; ++g) {
      const unsigned nibble = (metadata[i * words + g / 4] >> (4 * (g % 4))) & 0xF;
      for (int t = 0; t < 2; ++t) {
        const std::int64_t c = g * 4 + ((nibble >> (2 * t)) & 3);
        if (c < cols) o[i * cols + c] = values[i * (cp / 2) + g * 2 + t];
      }
    }
  return out;
}

void Sparse24::validate() const {
  const std::string at = where(*this);
  SB_CHECK(rows >= 0 && cols >= 0, "{}: negative dimension", at);
  const std::int64_t cp = cols_padded(), words = cp / 16;
  const std::int64_t nv = checked_mul(rows, cp / 2, at), nm = checked_mul(rows, words, at);
  SB_CHECK(static_cast<std::int64_t>(values.size()) == nv,
           "{}: values has {} entries, expected {} (rows x cols_padded / 2 = {} x {})", at, values.size(), nv, rows,
           cp / 2);
  SB_CHECK(static_cast<std::int64_t>(metadata.size()) == nm,
           "{}: metadata has {} words, expected {} (rows x cols_padded / 16 = {} x {})", at, metadata.size(), nm, rows,
           words);
  std::int64_t outside = 0, zeros = 0;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t g = 0; g < cp / 4; ++g) {
      const unsigned nibble = (metadata[i * words + g / 4] >> (4 * (g % 4))) & 0xF;
      const unsigned i0 = nibble & 3, i1 = nibble >> 2;
      SB_CHECK(i0 < i1, "{}: group {} of row {} has indices {}, {}; expected ascending and different", at, g, i, i0,
               i1);
      for (int t = 0; t < 2; ++t) {
        const float x = values[i * (cp / 2) + g * 2 + t];
        const std::int64_t c = g * 4 + (t == 0 ? i0 : i1);
        zeros += x == 0.f;
        if (c < cols) continue;
        SB_CHECK(x == 0.f, "{}: group {} of row {} holds {} at padded column {}, expected 0 (cols={})", at, g, i, x, c,
                 cols);
        ++outside;
      }
    }
  SB_CHECK(padding >= outside, "{}: padding is {}, but {} values lie in padded columns and must be padding", at,
           padding, outside);
  SB_CHECK(padding <= zeros, "{}: padding is {}, more than the {} stored values that hold 0", at, padding, zeros);
}

Footprint Sparse24::footprint(DType value_type) const {
  Footprint f;
  f.values = values.size() * dtype_size(value_type);
  f.metadata = metadata.size() * sizeof(std::uint16_t);
  f.padding_values = padding;
  return f;
}

}  // namespace sb
