#pragma once
// Bank-balanced sparsity (Yao et al., AAAI 2019) and N:M, which is its case bank = M, k = N.
#include "sparsebench/formats/common.h"

namespace sb {

// Every row is split into banks of `bank` consecutive columns; every bank stores exactly `k`
// entries: values[rows][banks][k] and their in-bank offsets [rows][banks][k] (u8 when
// bank <= 256, else u16; exactly one of off8 / off16 is filled), offsets ascending in a bank.
// No row pointers: the fixed count is the point (no row-length branches, perfectly balanced work).
// Padding (defined, counted in the footprint as padding_values):
// - a bank that keeps fewer than k entries (a mask with fewer, or the last bank of a row whose
//   width cols % bank is smaller than k) is filled up with value-0 entries;
// - a padding entry's offset points at a column that exists (< cols), so a kernel never reads past
//   X's last row: it repeats an in-bank column when the bank is narrower than k.
// banks() = ceil(cols / bank); the last bank may be narrower than `bank`.
struct Balanced {
  std::int64_t rows = 0, cols = 0;
  int bank = 0, k = 0;
  AlignedVector<float> values;
  AlignedVector<std::uint8_t> off8;
  AlignedVector<std::uint16_t> off16;
  // How many of the stored entries are padding (value 0) rather than kept entries; set by
  // from_dense. Kernels need not read it: footprint() and sparsity() report it, and validate()
  // checks it against the entries that must be padding (repeated offsets) and those that can be (0).
  std::int64_t padding = 0;

  std::int64_t banks() const { return bank > 0 ? (cols + bank - 1) / bank : 0; }
  bool wide_offsets() const { return bank > 256; }
  std::uint32_t offset(std::int64_t i) const { return wide_offsets() ? off16[i] : off8[i]; }
  // Fraction of the dense matrix that is not stored as a kept entry (padding counts as pruned).
  double sparsity() const;

  // Keeps the masked (or non-zero) entries; throws when a bank keeps more than k, when bank < 1,
  // k < 1 or k > bank. `bank` wider than cols is accepted (one bank per row).
  static Balanced from_dense(const Tensor& dense, int bank, int k, const Tensor& mask = {});
  // Same, with k = the largest count of kept entries in any bank (at least 1).
  static Balanced from_dense_infer_k(const Tensor& dense, int bank, const Tensor& mask = {});
  // N:M: bank = m, k = n; throws unless 1 <= n <= m.
  static Balanced from_dense_nm(const Tensor& dense, int n, int m, const Tensor& mask = {});
  Tensor to_dense() const;
  void validate() const;
  Footprint footprint(DType value_type = DType::f32) const;
};

// The compressed 2:4 layout of NVIDIA sparse tensor cores (cuSPARSELt / mma.sp): per row, the two
// kept values of every group of 4 columns (values[rows][cols_padded / 2]) and, per kept value, its
// 2-bit position in the group: 4 bits per group, packed little-end first into u16 words
// (metadata[rows][cols_padded / 16]). cols_padded = cols rounded up to 16 (zero padding, counted).
// A group with fewer than 2 kept entries stores value-0 entries at free positions (indices of a
// group always ascend and differ, as the hardware requires). This is the logical layout; the
// hardware's fragment-interleaved order of metadata words is a permutation applied at upload (M7).
struct Sparse24 {
  std::int64_t rows = 0, cols = 0;
  AlignedVector<float> values;
  AlignedVector<std::uint16_t> metadata;
  // How many stored values are padding (value 0) rather than kept entries, columns >= cols
  // included; set by from_dense, reported by footprint(), checked by validate() as in Balanced.
  std::int64_t padding = 0;

  std::int64_t cols_padded() const { return (cols + 15) / 16 * 16; }
  // Throws when a group of 4 keeps more than 2 entries.
  static Sparse24 from_dense(const Tensor& dense, const Tensor& mask = {});
  Tensor to_dense() const;
  void validate() const;
  // Values are counted at value_type (f16 on the GPU), metadata exactly.
  Footprint footprint(DType value_type = DType::f16) const;
};

}  // namespace sb
