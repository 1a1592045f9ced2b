// Sparse formats: round trips, index widths, footprints, padding, and validate() on corrupt data.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "formats/helpers.h"
#include "sparsebench/formats/balanced.h"
#include "sparsebench/formats/bsr.h"
#include "sparsebench/formats/csr.h"

using namespace sb;
using sb::test::bitwise_equal;
using sb::test::count_kept;
using sb::test::expected_dense;
using sb::test::random_sample;

namespace {

struct Shape2 {
  std::int64_t rows, cols;
};
// 1x1, prime sizes, single rows/columns, powers of two, empty matrices.
const Shape2 kShapes[] = {{1, 1}, {1, 7}, {7, 1}, {13, 37}, {97, 101}, {64, 64}, {33, 17}, {16, 48}, {0, 5}, {5, 0}};
const double kDensities[] = {0.0, 0.1, 0.5, 1.0};

Tensor make(std::int64_t rows, std::int64_t cols, std::initializer_list<float> v) {
  std::vector<float> data(v);
  return Tensor::from_data<float>({rows, cols}, data.data());
}

Tensor mask_of(std::int64_t rows, std::int64_t cols, std::initializer_list<int> v) {
  std::vector<std::uint8_t> data(v.begin(), v.end());
  return Tensor::from_data<std::uint8_t>({rows, cols}, data.data());
}

// A 4x6 matrix with 5 non-zeros and an empty row; the CSR below is written by hand.
Tensor small_dense() {
  return make(4, 6, {1, 0, 0, 2, 0, 0,  //
                     0, 0, 0, 0, 0, 0,  //
                     0, 3, 0, 0, 0, 4,  //
                     0, 0, 5, 0, 0, 0});
}

}  // namespace

// ------------------------------------------------------------------------------ CSR / CSC / COO

TEST(FormatCsr, HandBuiltLayout) {
  Csr c = Csr::from_dense(small_dense());
  EXPECT_EQ(c.index_width, IndexWidth::u16);
  EXPECT_EQ(std::vector<std::int32_t>(c.row_ptr.begin(), c.row_ptr.end()), (std::vector<std::int32_t>{0, 2, 2, 4, 5}));
  EXPECT_EQ(std::vector<std::uint16_t>(c.col16.begin(), c.col16.end()), (std::vector<std::uint16_t>{0, 3, 1, 5, 2}));
  EXPECT_TRUE(c.col32.empty());
  EXPECT_EQ(std::vector<float>(c.values.begin(), c.values.end()), (std::vector<float>{1, 2, 3, 4, 5}));
  EXPECT_DOUBLE_EQ(c.sparsity(), 1.0 - 5.0 / 24.0);
  Csc t = Csc::from_dense(small_dense());
  EXPECT_EQ(std::vector<std::int32_t>(t.col_ptr.begin(), t.col_ptr.end()),
            (std::vector<std::int32_t>{0, 1, 2, 3, 4, 4, 5}));
  EXPECT_EQ(std::vector<std::uint16_t>(t.row16.begin(), t.row16.end()), (std::vector<std::uint16_t>{0, 2, 3, 0, 2}));
  EXPECT_EQ(std::vector<float>(t.values.begin(), t.values.end()), (std::vector<float>{1, 3, 5, 2, 4}));
}

TEST(FormatCsr, RoundTripRandom) {
  Rng rng(1);
  for (auto [rows, cols] : kShapes)
    for (double density : kDensities) {
      SCOPED_TRACE(testing::Message() << rows << "x" << cols << " density " << density);
      auto s = random_sample(rng, rows, cols, density);
      const Tensor want = expected_dense(s.dense, s.mask);
      Csr csr = Csr::from_dense(s.dense, s.mask);
      csr.validate();
      EXPECT_EQ(csr.nnz(), count_kept(s.mask));  // explicit zeros kept by the mask are stored
      EXPECT_TRUE(bitwise_equal(csr.to_dense(), want));
      Csc csc = Csc::from_dense(s.dense, s.mask);
      csc.validate();
      EXPECT_EQ(csc.nnz(), csr.nnz());
      EXPECT_TRUE(bitwise_equal(csc.to_dense(), want));
      Coo coo = Coo::from_dense(s.dense, s.mask);
      coo.validate();
      EXPECT_EQ(coo.nnz(), csr.nnz());
      EXPECT_TRUE(bitwise_equal(coo.to_dense(), want));
      // Without a mask the non-zero values are kept, so explicit zeros disappear.
      Csr by_value = Csr::from_dense(want);
      EXPECT_TRUE(bitwise_equal(by_value.to_dense(), expected_dense(want, {})));
      for (std::int64_t e = 0; e < by_value.nnz(); ++e) EXPECT_NE(by_value.values[e], 0.f);
      if (rows * cols > 0 && density == 1.0) EXPECT_EQ(csr.nnz(), rows * cols);
      if (density == 0.0) EXPECT_EQ(csr.nnz(), 0);
      for (IndexWidth w : {IndexWidth::u16, IndexWidth::u32}) {
        Csr forced = Csr::from_dense(s.dense, s.mask, w);
        EXPECT_EQ(forced.index_width, w);
        EXPECT_TRUE(bitwise_equal(forced.to_dense(), want));
      }
    }
}

TEST(FormatCsr, IndexWidthChoice) {
  EXPECT_EQ(choose_index_width(0), IndexWidth::u16);
  EXPECT_EQ(choose_index_width(65536), IndexWidth::u16);
  EXPECT_EQ(choose_index_width(65537), IndexWidth::u32);
  EXPECT_STREQ(index_width_name(IndexWidth::u16), "u16");
  EXPECT_STREQ(index_width_name(IndexWidth::u32), "u32");

  Tensor wide = Tensor::zeros({2, 65537});
  wide.data<float>()[65535] = 1.f;      // row 0, col 65535: the largest u16 index
  wide.data<float>()[65536] = 2.f;      // row 0, col 65536: needs 17 bits
  wide.data<float>()[65537 + 3] = 3.f;  // row 1, col 3
  Tensor narrow = Tensor::zeros({2, 65536});
  narrow.data<float>()[65535] = 1.f;
  EXPECT_EQ(Csr::from_dense(narrow).index_width, IndexWidth::u16);
  Csr c = Csr::from_dense(wide);
  EXPECT_EQ(c.index_width, IndexWidth::u32);
  EXPECT_TRUE(c.col16.empty());
  EXPECT_EQ(c.col(1), 65536u);
  EXPECT_TRUE(bitwise_equal(c.to_dense(), wide));
  EXPECT_SB_ERROR(Csr::from_dense(wide, {}, IndexWidth::u16), "index width u16 cannot address cols=65537");

  EXPECT_EQ(Csc::from_dense(Tensor::zeros({65536, 1})).index_width, IndexWidth::u16);
  Tensor tall = wide.transpose(0, 1).clone();
  Csc t = Csc::from_dense(tall);
  EXPECT_EQ(t.index_width, IndexWidth::u32);
  EXPECT_TRUE(bitwise_equal(t.to_dense(), tall));
  EXPECT_SB_ERROR(Csc::from_dense(tall, {}, IndexWidth::u16), "index width u16 cannot address rows=65537");
}

TEST(FormatCsr, Footprints) {
  // 4x6, nnz 5, u16 columns: values 5*4, indices 5*2, pointers (4+1)*4.
  Footprint f = Csr::from_dense(small_dense()).footprint();
  EXPECT_EQ(f.values, 20u);
  EXPECT_EQ(f.indices, 10u);
  EXPECT_EQ(f.pointers, 20u);
  EXPECT_EQ(f.metadata, 0u);
  EXPECT_EQ(f.padding_values, 0);
  EXPECT_EQ(f.total(), 50u);
  EXPECT_EQ(Csr::from_dense(small_dense()).footprint(DType::f16).values, 10u);  // 5*2
  // Forced u32: indices 5*4.
  EXPECT_EQ(Csr::from_dense(small_dense(), {}, IndexWidth::u32).footprint().indices, 20u);
  // CSC of the same: pointers (6+1)*4, indices 5*2 (rows <= 65536).
  f = Csc::from_dense(small_dense()).footprint();
  EXPECT_EQ(f.values, 20u);
  EXPECT_EQ(f.indices, 10u);
  EXPECT_EQ(f.pointers, 28u);
  // COO: two u32 per entry: 5*8; no pointers.
  f = Coo::from_dense(small_dense()).footprint(DType::bf16);
  EXPECT_EQ(f.values, 10u);
  EXPECT_EQ(f.indices, 40u);
  EXPECT_EQ(f.pointers, 0u);
  EXPECT_EQ(f.total(), 50u);
  // 1 x 65537 with 3 non-zeros: u32 indices 3*4, pointers 2*4, values 3*4.
  Tensor wide = Tensor::zeros({1, 65537});
  for (int j : {0, 7, 65536}) wide.data<float>()[j] = 1.f;
  f = Csr::from_dense(wide).footprint();
  EXPECT_EQ(f.values, 12u);
  EXPECT_EQ(f.indices, 12u);
  EXPECT_EQ(f.pointers, 8u);
}

TEST(FormatCsr, ValidateRejectsCorruption) {
  const Csr good = Csr::from_dense(small_dense());
  good.validate();
  Csr c = good;
  c.row_ptr.pop_back();
  EXPECT_SB_ERROR(c.validate(), "CSR 4x6: row_ptr has 4 entries, expected 5 (rows + 1)");
  c = good;
  c.row_ptr[0] = 1;
  EXPECT_SB_ERROR(c.validate(), "row_ptr[0] is 1, expected 0");
  c = good;
  c.row_ptr[2] = 1;  // 0 2 1 4 5
  EXPECT_SB_ERROR(c.validate(), "row_ptr decreases at row 1 (2 then 1)");
  c = good;
  c.row_ptr[4] = 4;
  EXPECT_SB_ERROR(c.validate(), "row_ptr[4] is 4, expected 5 (the count of values)");
  c = good;
  c.row_ptr[4] = 6;  // past the end of values: must be caught before any read
  EXPECT_SB_ERROR(c.validate(), "row_ptr[4] is 6, expected 5");
  c = good;
  c.col16[3] = 6;
  EXPECT_SB_ERROR(c.validate(), "entry 3 (row 2) has column 6, out of range (expected < cols=6)");
  c = good;
  std::swap(c.col16[2], c.col16[3]);
  EXPECT_SB_ERROR(c.validate(), "columns of row 2 are not strictly ascending (1 after 5 at entry 3)");
  c = good;
  c.col16[3] = 1;  // duplicate column
  EXPECT_SB_ERROR(c.validate(), "not strictly ascending (1 after 1 at entry 3)");
  c = good;
  c.col16.pop_back();
  EXPECT_SB_ERROR(c.validate(), "col16 has 4 entries, expected 5 (nnz, index width u16)");
  c = good;
  c.col32.assign(5, 0);
  EXPECT_SB_ERROR(c.validate(), "col32 has 5 entries, expected 0 (index width u16 stores col16)");
  c = good;
  c.index_width = IndexWidth::u32;
  EXPECT_SB_ERROR(c.validate(), "col32 has 0 entries, expected 5");
  c = good;
  c.cols = 70000;
  EXPECT_SB_ERROR(c.validate(), "index width u16 cannot address cols=70000 (at most 65536)");
  c = good;
  c.values.push_back(1.f);
  EXPECT_SB_ERROR(c.validate(), "row_ptr[4] is 5, expected 6");
  c = good;
  c.rows = -1;
  EXPECT_SB_ERROR(c.validate(), "negative dimension");
  EXPECT_SB_ERROR(Csr{}.validate(), "row_ptr has 0 entries, expected 1 (rows + 1)");
  // to_dense validates first instead of writing out of bounds.
  c = good;
  c.col16[0] = 60000;
  EXPECT_SB_ERROR(c.to_dense(), "out of range");
}

TEST(FormatCsc, ValidateRejectsCorruption) {
  const Csc good = Csc::from_dense(small_dense());
  Csc c = good;
  c.col_ptr.push_back(5);
  EXPECT_SB_ERROR(c.validate(), "CSC 4x6: col_ptr has 8 entries, expected 7 (columns + 1)");
  c = good;
  c.row16[1] = 4;
  EXPECT_SB_ERROR(c.validate(), "entry 1 (column 1) has row 4, out of range (expected < rows=4)");
  c = good;
  c.col_ptr[4] = 5;  // 0 1 2 3 5 4 5
  EXPECT_SB_ERROR(c.validate(), "col_ptr decreases at column 4 (5 then 4)");
  c = good;
  c.values.pop_back();
  EXPECT_SB_ERROR(c.validate(), "col_ptr[6] is 5, expected 4 (the count of values)");
}

TEST(FormatCoo, ValidateRejectsCorruption) {
  const Coo good = Coo::from_dense(small_dense());
  Coo c = good;
  c.col_idx.pop_back();
  EXPECT_SB_ERROR(c.validate(), "COO 4x6: row_idx has 5 entries and col_idx 4, expected 5 each");
  c = good;
  c.row_idx[4] = 4;
  EXPECT_SB_ERROR(c.validate(), "entry 4 has row 4, out of range (expected < rows=4)");
  c = good;
  c.col_idx[0] = 6;
  EXPECT_SB_ERROR(c.validate(), "entry 0 has column 6, out of range (expected < cols=6)");
  c = good;
  std::swap(c.row_idx[0], c.row_idx[4]);
  EXPECT_SB_ERROR(c.validate(), "entry 1 (0, 3) does not come after entry 0 (3, 0)");
  c = good;
  c.col_idx[1] = 0;  // (0, 0) twice
  EXPECT_SB_ERROR(c.validate(), "no duplicates");
}

TEST(FormatConvert, CsrCscCooAgree) {
  Rng rng(2);
  for (auto [rows, cols] : kShapes)
    for (double density : kDensities) {
      SCOPED_TRACE(testing::Message() << rows << "x" << cols << " density " << density);
      auto s = random_sample(rng, rows, cols, density);
      const Tensor want = expected_dense(s.dense, s.mask);
      const Csr csr = Csr::from_dense(s.dense, s.mask);
      const Csc csc = csc_from_csr(csr);
      csc.validate();
      EXPECT_TRUE(bitwise_equal(csc.to_dense(), want));
      const Csc direct = Csc::from_dense(s.dense, s.mask);
      EXPECT_TRUE(std::equal(csc.col_ptr.begin(), csc.col_ptr.end(), direct.col_ptr.begin(), direct.col_ptr.end()));
      EXPECT_TRUE(std::equal(csc.row16.begin(), csc.row16.end(), direct.row16.begin(), direct.row16.end()));
      const Csr back = csr_from_csc(csc);
      back.validate();
      EXPECT_TRUE(std::equal(back.row_ptr.begin(), back.row_ptr.end(), csr.row_ptr.begin(), csr.row_ptr.end()));
      EXPECT_TRUE(std::equal(back.col16.begin(), back.col16.end(), csr.col16.begin(), csr.col16.end()));
      EXPECT_TRUE(bitwise_equal(back.to_dense(), want));
      const Coo coo = coo_from_csr(csr);
      coo.validate();
      const Coo direct_coo = Coo::from_dense(s.dense, s.mask);
      EXPECT_TRUE(
          std::equal(coo.row_idx.begin(), coo.row_idx.end(), direct_coo.row_idx.begin(), direct_coo.row_idx.end()));
      EXPECT_TRUE(
          std::equal(coo.col_idx.begin(), coo.col_idx.end(), direct_coo.col_idx.begin(), direct_coo.col_idx.end()));
      const Csr from_coo = csr_from_coo(coo);
      from_coo.validate();
      EXPECT_TRUE(bitwise_equal(from_coo.to_dense(), want));
    }
}

TEST(FormatConvert, WidthsFollowTheNewDimension) {
  // 3 x 70000: CSR needs u32 columns, CSC gets u16 rows; converting back restores u32.
  Tensor d = Tensor::zeros({3, 70000});
  d.data<float>()[69999] = 1.f;
  d.data<float>()[70000 + 5] = 2.f;
  d.data<float>()[2 * 70000 + 65536] = 3.f;
  const Csr csr = Csr::from_dense(d);
  EXPECT_EQ(csr.index_width, IndexWidth::u32);
  const Csc csc = csc_from_csr(csr);
  EXPECT_EQ(csc.index_width, IndexWidth::u16);
  EXPECT_TRUE(bitwise_equal(csc.to_dense(), d));
  const Csr back = csr_from_csc(csc);
  EXPECT_EQ(back.index_width, IndexWidth::u32);
  EXPECT_TRUE(bitwise_equal(back.to_dense(), d));
  EXPECT_TRUE(bitwise_equal(csr_from_coo(coo_from_csr(csr)).to_dense(), d));
}

TEST(FormatConvert, RejectsCorruptInput) {
  Coo coo = Coo::from_dense(small_dense());
  std::swap(coo.col_idx[0], coo.col_idx[1]);
  EXPECT_SB_ERROR(csr_from_coo(coo), "COO 4x6: entry 1 (0, 0) does not come after entry 0 (0, 3)");
  Csr csr = Csr::from_dense(small_dense());
  csr.col16[0] = 9;
  EXPECT_SB_ERROR(csc_from_csr(csr), "out of range");
}

TEST(FormatDense, RejectsBadInputs) {
  EXPECT_SB_ERROR(Csr::from_dense(Tensor{}), "CSR from_dense: the dense matrix is undefined");
  EXPECT_SB_ERROR(Csr::from_dense(Tensor::zeros({2, 3, 4})), "has shape [2, 3, 4], expected 2-D");
  EXPECT_SB_ERROR(Csc::from_dense(Tensor::zeros({2, 3}, DType::i32)), "CSC from_dense: the dense matrix has dtype i32");
  EXPECT_SB_ERROR(Coo::from_dense(Tensor::zeros({2, 3}).transpose(0, 1)), "is not contiguous");
  EXPECT_SB_ERROR(Csr::from_dense(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}, DType::u8)),
                  "the mask has shape [3, 2], expected [2, 3] (the dense shape)");
  EXPECT_SB_ERROR(Bsr::from_dense(Tensor::zeros({2, 3}), 2, 2, Tensor::zeros({2, 3})), "the mask has dtype f32");
}

// ---------------------------------------------------------------------------------------- BSR

namespace {

// Stored blocks, counted the slow obvious way.
std::int64_t blocks_with_kept(const Tensor& mask, int br, int bc) {
  const std::int64_t rows = mask.size(0), cols = mask.size(1);
  std::int64_t n = 0;
  for (std::int64_t bi = 0; bi * br < rows; ++bi)
    for (std::int64_t bj = 0; bj * bc < cols; ++bj) {
      bool any = false;
      for (std::int64_t i = bi * br; i < std::min(rows, bi * br + br); ++i)
        for (std::int64_t j = bj * bc; j < std::min(cols, bj * bc + bc); ++j)
          any = any || mask.data<std::uint8_t>()[i * cols + j];
      n += any;
    }
  return n;
}

}  // namespace

TEST(FormatBsr, RoundTripRandom) {
  Rng rng(3);
  const std::pair<int, int> blocks[] = {{1, 1}, {1, 4}, {4, 1}, {4, 4}, {3, 5}, {8, 8}, {16, 16}, {32, 32}};
  for (auto [rows, cols] : kShapes)
    for (double density : kDensities)
      for (auto [br, bc] : blocks) {
        SCOPED_TRACE(testing::Message() << rows << "x" << cols << " density " << density << " block " << br << "x"
                                        << bc);
        auto s = random_sample(rng, rows, cols, density * 0.2);  // sparse enough that blocks get dropped
        Bsr b = Bsr::from_dense(s.dense, br, bc, s.mask);
        b.validate();
        EXPECT_EQ(b.nblocks(), blocks_with_kept(s.mask, br, bc));
        EXPECT_EQ(b.values.size(), static_cast<std::size_t>(b.nblocks() * br * bc));
        EXPECT_TRUE(bitwise_equal(b.to_dense(), expected_dense(s.dense, s.mask)));
        const Footprint f = b.footprint();
        EXPECT_EQ(f.values, b.values.size() * 4);
        EXPECT_GE(f.padding_values, 0);
        if (rows % br == 0 && cols % bc == 0) EXPECT_EQ(f.padding_values, 0);
      }
}

TEST(FormatBsr, FullyDenseAndEmpty) {
  Rng rng(4);
  auto s = random_sample(rng, 13, 37, 1.0);
  Bsr b = Bsr::from_dense(s.dense, 4, 8, s.mask);
  EXPECT_EQ(b.nblocks(), 4 * 5);  // ceil(13/4) x ceil(37/8)
  EXPECT_EQ(b.rows_padded(), 16);
  EXPECT_EQ(b.cols_padded(), 40);
  EXPECT_EQ(b.footprint().padding_values, 16 * 40 - 13 * 37);
  EXPECT_TRUE(bitwise_equal(b.to_dense(), expected_dense(s.dense, s.mask)));
  Bsr e = Bsr::from_dense(Tensor::zeros({13, 37}), 4, 8);
  EXPECT_EQ(e.nblocks(), 0);
  EXPECT_EQ(e.block_row_ptr.size(), 5u);
  EXPECT_TRUE(bitwise_equal(e.to_dense(), Tensor::zeros({13, 37})));
  // Block larger than the matrix: one padded block.
  Bsr big = Bsr::from_dense(s.dense, 32, 64, s.mask);
  EXPECT_EQ(big.nblocks(), 1);
  EXPECT_EQ(big.footprint().padding_values, 32 * 64 - 13 * 37);
  EXPECT_TRUE(bitwise_equal(big.to_dense(), expected_dense(s.dense, s.mask)));
}

TEST(FormatBsr, FootprintByHand) {
  // 5x7 in 2x3 blocks: 3 block rows x 3 block columns, padded to 6x9. Kept (0,0), (2,4), (4,6):
  // blocks (0,0), (1,1), (2,2). Values 3 blocks * 6 * 4 B = 72; u16 indices 3*2 = 6;
  // pointers (3+1)*4 = 16. Padding: only block (2,2) sticks out: rows 4..5 x cols 6..8 holds one
  // real entry (4,6), so 6 - 1 = 5 padded values.
  Tensor d = Tensor::zeros({5, 7});
  d.data<float>()[0] = 1.f;
  d.data<float>()[2 * 7 + 4] = 2.f;
  d.data<float>()[4 * 7 + 6] = 3.f;
  Bsr b = Bsr::from_dense(d, 2, 3);
  EXPECT_EQ(b.nblocks(), 3);
  EXPECT_EQ(std::vector<std::int32_t>(b.block_row_ptr.begin(), b.block_row_ptr.end()),
            (std::vector<std::int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(std::vector<std::uint16_t>(b.block_col16.begin(), b.block_col16.end()),
            (std::vector<std::uint16_t>{0, 1, 2}));
  Footprint f = b.footprint();
  EXPECT_EQ(f.values, 72u);
  EXPECT_EQ(f.indices, 6u);
  EXPECT_EQ(f.pointers, 16u);
  EXPECT_EQ(f.metadata, 0u);
  EXPECT_EQ(f.padding_values, 5);
  EXPECT_EQ(f.total(), 94u);
  EXPECT_EQ(b.footprint(DType::f16).values, 36u);
  // Inside a stored block, a pruned entry is stored as 0 even if the dense value is not.
  Tensor m = Tensor::zeros({5, 7}, DType::u8);
  m.data<std::uint8_t>()[0] = 1;
  Tensor full = Tensor::full({5, 7}, 9.f);
  Bsr masked = Bsr::from_dense(full, 2, 3, m);
  EXPECT_EQ(masked.nblocks(), 1);
  EXPECT_EQ(std::vector<float>(masked.values.begin(), masked.values.end()), (std::vector<float>{9, 0, 0, 0, 0, 0}));
}

TEST(FormatBsr, IndexWidth) {
  // 65536 block columns fit u16; 65537 do not.
  EXPECT_EQ(Bsr::from_dense(Tensor::zeros({1, 131072}), 1, 2).index_width, IndexWidth::u16);
  Tensor d = Tensor::zeros({1, 65537});
  d.data<float>()[65536] = 1.f;
  Bsr b = Bsr::from_dense(d, 1, 1);
  EXPECT_EQ(b.index_width, IndexWidth::u32);
  EXPECT_EQ(b.block_col(0), 65536u);
  EXPECT_EQ(b.footprint().indices, 4u);
  EXPECT_TRUE(bitwise_equal(b.to_dense(), d));
  EXPECT_SB_ERROR(Bsr::from_dense(d, 1, 1, {}, IndexWidth::u16), "index width u16 cannot address 65537 block columns");
  EXPECT_EQ(Bsr::from_dense(small_dense(), 2, 2, {}, IndexWidth::u32).index_width, IndexWidth::u32);
}

TEST(FormatBsr, ValidateRejectsCorruption) {
  EXPECT_SB_ERROR(Bsr::from_dense(small_dense(), 0, 4), "BSR block 0x4: block dimensions must be >= 1");
  EXPECT_SB_ERROR(Bsr::from_dense(small_dense(), 2, -1), "BSR block 2x-1: block dimensions must be >= 1");
  // 4x6 in 3x4 blocks: a 2 x 2 block grid padded to 6x8; blocks (0,0), (0,1), (1,0) hold entries.
  const Bsr good = Bsr::from_dense(small_dense(), 3, 4);
  ASSERT_EQ(good.nblocks(), 3);
  good.validate();
  Bsr b = good;
  b.block_cols = 0;
  EXPECT_SB_ERROR(b.validate(), "BSR block 3x0: block dimensions must be >= 1");
  b = good;
  b.block_row_ptr.push_back(4);
  EXPECT_SB_ERROR(b.validate(), "BSR 4x6 block 3x4: block_row_ptr has 4 entries, expected 3 (block rows + 1)");
  b = good;
  b.block_row_ptr[1] = 3;
  b.block_row_ptr[2] = 2;
  EXPECT_SB_ERROR(b.validate(), "block_row_ptr decreases at block row 1 (3 then 2)");
  b = good;
  b.values.pop_back();
  EXPECT_SB_ERROR(b.validate(), "values has 35 entries, expected 36 (3 blocks x 3x4)");
  b = good;
  b.block_col16[1] = 2;
  EXPECT_SB_ERROR(b.validate(), "block 1 (block row 0) has block column 2, out of range (expected < 2)");
  b = good;
  b.block_col16[1] = 0;
  EXPECT_SB_ERROR(b.validate(), "block columns of block row 0 are not strictly ascending (0 after 0 at block 1)");
  b = good;
  b.block_col16.push_back(0);
  EXPECT_SB_ERROR(b.validate(), "block_col16 has 4 entries, expected 3");
  b = good;
  b.values[1 * 12 + 0 * 4 + 3] = 7.f;  // block 1 covers cols 4..7; col 7 is padding
  EXPECT_SB_ERROR(b.validate(), "block 1 (block row 0, block column 1) holds 7 at padded position (0, 7), expected 0");
  b = good;
  b.values[2 * 12 + 2 * 4 + 0] = 7.f;  // block 2 covers rows 3..5; row 5 is padding
  EXPECT_SB_ERROR(b.validate(), "holds 7 at padded position (5, 0)");
}

// ----------------------------------------------------------------------------------- Balanced

namespace {

// A mask that keeps at most k entries in every bank, some banks fewer.
Tensor balanced_mask(Rng& rng, std::int64_t rows, std::int64_t cols, int bank, int k, bool exact) {
  Tensor m = Tensor::zeros({rows, cols}, DType::u8);
  std::uint8_t* p = m.data<std::uint8_t>();
  std::vector<std::int64_t> pos;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t c0 = 0; c0 < cols; c0 += bank) {
      const std::int64_t w = std::min<std::int64_t>(bank, cols - c0);
      std::int64_t keep = std::min<std::int64_t>(k, w);
      if (!exact) keep = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(keep + 1)));
      pos.resize(static_cast<std::size_t>(w));
      for (std::int64_t o = 0; o < w; ++o) pos[o] = o;
      for (std::int64_t t = 0; t < keep; ++t) {  // partial Fisher-Yates
        std::swap(pos[t], pos[t + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(w - t)))]);
        p[i * cols + c0 + pos[t]] = 1;
      }
    }
  return m;
}

// Invariants a kernel relies on, checked independently of validate().
void expect_balanced_layout(const Balanced& b, std::int64_t kept) {
  const std::int64_t nb = b.banks();
  ASSERT_EQ(static_cast<std::int64_t>(b.values.size()), b.rows * nb * b.k);
  std::int64_t s = 0;
  for (std::int64_t i = 0; i < b.rows; ++i)
    for (std::int64_t g = 0; g < nb; ++g)
      for (int t = 0; t < b.k; ++t, ++s) {
        EXPECT_LT(g * b.bank + b.offset(s), b.cols) << "padding must point at a real column";
        if (t > 0) EXPECT_GE(b.offset(s), b.offset(s - 1));
      }
  EXPECT_EQ(static_cast<std::int64_t>(b.values.size()) - b.padding, kept);
}

}  // namespace

TEST(FormatBalanced, RoundTripRandom) {
  Rng rng(5);
  const std::pair<int, int> configs[] = {{1, 1}, {4, 2}, {8, 3}, {16, 4}, {32, 32}, {64, 8}, {300, 20}};
  for (auto [rows, cols] : kShapes)
    for (auto [bank, k] : configs)
      for (bool exact : {false, true}) {
        SCOPED_TRACE(testing::Message() << rows << "x" << cols << " bank " << bank << " k " << k);
        Tensor mask = balanced_mask(rng, rows, cols, bank, k, exact);
        auto s = random_sample(rng, rows, cols, 1.0);
        Balanced b = Balanced::from_dense(s.dense, bank, k, mask);
        b.validate();
        EXPECT_EQ(b.wide_offsets(), bank > 256);
        EXPECT_EQ(b.wide_offsets() ? b.off8.size() : b.off16.size(), 0u);
        expect_balanced_layout(b, count_kept(mask));
        EXPECT_TRUE(bitwise_equal(b.to_dense(), expected_dense(s.dense, mask)));
        // Inferring k from an unconstrained random mask.
        auto r = random_sample(rng, rows, cols, 0.3);
        Balanced inf = Balanced::from_dense_infer_k(r.dense, bank, r.mask);
        inf.validate();
        expect_balanced_layout(inf, count_kept(r.mask));
        EXPECT_TRUE(bitwise_equal(inf.to_dense(), expected_dense(r.dense, r.mask)));
      }
}

TEST(FormatBalanced, InferK) {
  Tensor m = mask_of(2, 8,
                     {1, 1, 1, 0, 0, 0, 0, 1,  //
                      0, 0, 0, 0, 1, 1, 0, 0});
  Balanced b = Balanced::from_dense_infer_k(Tensor::full({2, 8}, 1.f), 4, m);
  EXPECT_EQ(b.k, 3);
  EXPECT_EQ(b.padding, 2 * 2 * 3 - 6);
  EXPECT_EQ(Balanced::from_dense_infer_k(Tensor::zeros({2, 8}), 4).k, 1);  // at least 1
}

TEST(FormatBalanced, FootprintAndPaddingByHand) {
  // 3x10, bank 4, k 2: banks of width 4, 4, 2; 3 rows * 3 banks * 2 = 18 stored entries.
  Tensor m = mask_of(3, 10, {1, 1, 0, 0, 1, 0, 0, 0, 1, 1,    // keeps 2 + 1 + 2 = 5 -> 1 padding
                             0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    // keeps 0 -> 6 padding
                             0, 0, 0, 1, 0, 1, 0, 1, 0, 0});  // keeps 1 + 2 + 0 = 3 -> 3 padding
  Tensor d = Tensor::full({3, 10}, 2.5f);
  Balanced b = Balanced::from_dense(d, 4, 2, m);
  EXPECT_EQ(b.banks(), 3);
  Footprint f = b.footprint();
  EXPECT_EQ(f.values, 18u * 4);   // f32
  EXPECT_EQ(f.indices, 18u * 1);  // u8 offsets (bank <= 256)
  EXPECT_EQ(f.pointers, 0u);
  EXPECT_EQ(f.metadata, 0u);
  EXPECT_EQ(f.padding_values, 10);
  EXPECT_EQ(f.total(), 90u);
  EXPECT_EQ(b.footprint(DType::f16).values, 36u);
  EXPECT_DOUBLE_EQ(b.sparsity(), 1.0 - 8.0 / 30.0);
  // Row 2, bank 0 keeps offset 3 only: padding takes the lowest free offset, 0, before it.
  EXPECT_EQ(b.offset(12), 0u);
  EXPECT_EQ(b.values[12], 0.f);
  EXPECT_EQ(b.offset(13), 3u);
  EXPECT_EQ(b.values[13], 2.5f);
  EXPECT_TRUE(bitwise_equal(b.to_dense(), expected_dense(d, m)));
  // Wide banks: 2x600, bank 300, k 2: 2 * 2 * 2 = 8 u16 offsets = 16 bytes.
  Balanced w = Balanced::from_dense(Tensor::zeros({2, 600}), 300, 2);
  EXPECT_TRUE(w.wide_offsets());
  EXPECT_EQ(w.off16.size(), 8u);
  EXPECT_EQ(w.footprint().indices, 16u);
  EXPECT_EQ(w.footprint().padding_values, 8);
  EXPECT_DOUBLE_EQ(w.sparsity(), 1.0);
}

TEST(FormatBalanced, PaddingCases) {
  // cols % bank != 0 with the last bank at least k wide: 2x10, bank 4, k 2 -> last bank width 2.
  {
    Tensor d = make(1, 10, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    Tensor m = mask_of(1, 10, {0, 1, 0, 1, 1, 0, 0, 0, 0, 1});
    Balanced b = Balanced::from_dense(d, 4, 2, m);
    const std::vector<unsigned> offs{1, 3, 0, 1, 0, 1};
    const std::vector<float> vals{2, 4, 5, 0, 0, 10};
    for (int s = 0; s < 6; ++s) {
      EXPECT_EQ(b.offset(s), offs[s]) << s;
      EXPECT_EQ(b.values[s], vals[s]) << s;
    }
    EXPECT_EQ(b.padding, 2);
    EXPECT_TRUE(bitwise_equal(b.to_dense(), expected_dense(d, m)));
  }
  // The last bank narrower than k: 1x9, bank 4, k 3 -> last bank is column 8 alone; its three
  // slots all point at column 8, the kept value first, and to_dense keeps it.
  {
    Tensor d = make(1, 9, {1, 2, 3, 4, 5, 6, 7, 8, -9});
    Tensor m = mask_of(1, 9, {1, 1, 1, 0, 0, 0, 0, 1, 1});
    Balanced b = Balanced::from_dense(d, 4, 3, m);
    EXPECT_EQ(b.values.size(), 9u);
    for (int s = 6; s < 9; ++s) EXPECT_EQ(b.offset(s), 0u);
    EXPECT_EQ(b.values[6], -9.f);
    EXPECT_EQ(b.values[7], 0.f);
    EXPECT_EQ(b.values[8], 0.f);
    EXPECT_EQ(b.padding, 0 + 2 + 2);  // bank 1 keeps 1 of 3, bank 2 keeps 1 of 3
    b.validate();
    EXPECT_TRUE(bitwise_equal(b.to_dense(), expected_dense(d, m)));
    // An explicit -0 kept in such a bank survives bit for bit.
    Tensor z = make(1, 9, {0, 0, 0, 0, 0, 0, 0, 0, -0.f});
    Tensor zm = mask_of(1, 9, {0, 0, 0, 0, 0, 0, 0, 0, 1});
    EXPECT_TRUE(bitwise_equal(Balanced::from_dense(z, 4, 3, zm).to_dense(), expected_dense(z, zm)));
  }
  // A bank wider than the matrix: one bank per row. 2x5, bank 8, k 6: width 5 < k, offsets
  // 0 1 2 3 4 4. With k 4 <= width the offsets stay distinct.
  {
    Rng rng(6);
    auto s = random_sample(rng, 2, 5, 0.5);
    Balanced b = Balanced::from_dense_infer_k(s.dense, 8, s.mask);
    EXPECT_EQ(b.banks(), 1);
    Balanced six = Balanced::from_dense(Tensor::full({2, 5}, 1.f), 8, 6, Tensor::zeros({2, 5}, DType::u8));
    const std::vector<unsigned> offs{0, 1, 2, 3, 4, 4};
    for (int t = 0; t < 6; ++t) EXPECT_EQ(six.offset(t), offs[t]);
    EXPECT_EQ(six.padding, 12);
    EXPECT_EQ(six.footprint().padding_values, 12);
    six.validate();
    Balanced four =
        Balanced::from_dense(Tensor::full({2, 5}, 1.f), 8, 4, mask_of(2, 5, {0, 0, 0, 0, 1, 1, 0, 0, 0, 0}));
    const std::vector<unsigned> offs4{0, 1, 2, 4, 0, 1, 2, 3};
    for (int t = 0; t < 8; ++t) EXPECT_EQ(four.offset(t), offs4[t]);
    EXPECT_TRUE(bitwise_equal(
        four.to_dense(), expected_dense(Tensor::full({2, 5}, 1.f), mask_of(2, 5, {0, 0, 0, 0, 1, 1, 0, 0, 0, 0}))));
  }
  // Zero columns: no banks, nothing stored.
  Balanced e = Balanced::from_dense(Tensor::zeros({3, 0}), 4, 2);
  EXPECT_EQ(e.banks(), 0);
  EXPECT_TRUE(e.values.empty());
  e.validate();
}

TEST(FormatBalanced, RejectsBadArguments) {
  Tensor m = mask_of(1, 8, {1, 0, 0, 0, 1, 1, 1, 0});
  EXPECT_SB_ERROR(Balanced::from_dense(Tensor::full({1, 8}, 1.f), 4, 2, m),
                  "Balanced: bank 1 of row 0 keeps 3 entries, more than k=2");
  Tensor big = Tensor::zeros({8, 16});
  for (int j = 12; j < 16; ++j) big.data<float>()[7 * 16 + j] = 1.f;
  for (int j = 12; j < 13; ++j) big.data<float>()[6 * 16 + j] = 1.f;
  EXPECT_SB_ERROR(Balanced::from_dense(big, 4, 3), "Balanced: bank 3 of row 7 keeps 4 entries, more than k=3");
  EXPECT_SB_ERROR(Balanced::from_dense(big, 0, 1), "bank must be >= 1");
  EXPECT_SB_ERROR(Balanced::from_dense(big, 4, 0), "k must be >= 1");
  EXPECT_SB_ERROR(Balanced::from_dense(big, 4, 5), "Balanced from_dense bank=4 k=5: k must be <= bank");
  EXPECT_SB_ERROR(Balanced::from_dense(big, 70000, 5), "bank must be <= 65536");
  EXPECT_SB_ERROR(Balanced::from_dense_infer_k(big, 0), "bank must be >= 1");
}

TEST(FormatBalanced, ValidateRejectsCorruption) {
  // 2x10, bank 4, k 2, full rows of a 2:4-like pattern.
  Tensor m = mask_of(2, 10, {1, 0, 1, 0, 0, 1, 1, 0, 1, 1,  //
                             0, 1, 0, 1, 1, 0, 0, 1, 1, 1});
  const Balanced good = Balanced::from_dense(Tensor::full({2, 10}, 3.f), 4, 2, m);
  good.validate();
  Balanced b = good;
  b.values.pop_back();
  EXPECT_SB_ERROR(b.validate(),
                  "Balanced 2x10 bank=4 k=2: values has 11 entries, expected 12 (rows x banks x k = 2 x 3 x 2)");
  b = good;
  b.off8.push_back(0);
  EXPECT_SB_ERROR(b.validate(), "off8 has 13 entries, expected 12 (rows x banks x k)");
  b = good;
  b.off16.assign(12, 0);
  EXPECT_SB_ERROR(b.validate(), "off16 has 12 entries, expected 0 (bank <= 256 stores off8)");
  b = good;
  b.off8[5] = 2;  // row 0, bank 2 is 2 wide
  EXPECT_SB_ERROR(b.validate(),
                  "bank 2 of row 0 has offset 2 at slot 1, out of range (expected < 2, the bank's width)");
  b = good;
  b.off8[2] = 3;  // row 0, bank 1: offsets 3 then 2
  EXPECT_SB_ERROR(b.validate(), "offsets of bank 1 of row 0 are not ascending (2 after 3 at slot 1)");
  b = good;
  b.off8[3] = 1;  // row 0, bank 1: offsets 1 1 in a bank as wide as 4
  EXPECT_SB_ERROR(b.validate(), "bank 1 of row 0 repeats offset 1 at slot 1; only a bank narrower than k may repeat");
  b = good;
  b.padding = 1;  // nothing is padding here: all 12 stored entries hold 3
  EXPECT_SB_ERROR(b.validate(), "padding is 1, more than the 0 stored entries that hold 0");
  b = good;
  b.k = 3;
  EXPECT_SB_ERROR(b.validate(), "values has 12 entries, expected 18");
  b = good;
  b.bank = 0;
  EXPECT_SB_ERROR(b.validate(), "bank must be >= 1");
  // A repeated offset (bank narrower than k) must hold 0 and be counted as padding.
  // Last bank: column 4 alone, slots 3..5 at offsets 0 0 0 holding 5 0 0.
  const Balanced narrow = Balanced::from_dense(make(1, 5, {1, 2, 3, 4, 5}), 4, 3, mask_of(1, 5, {1, 1, 0, 0, 1}));
  narrow.validate();
  b = narrow;
  b.values[5] = 1.f;
  EXPECT_SB_ERROR(b.validate(), "bank 1 of row 0 repeats offset 0 at slot 2 with value 1, expected 0 (padding)");
  b = narrow;
  b.padding = 1;
  EXPECT_SB_ERROR(b.validate(), "padding is 1, but 2 entries repeat an offset and must be padding");
}

// ---------------------------------------------------------------------------------------- N:M

TEST(FormatNM, RoundTrips) {
  Rng rng(7);
  const std::pair<int, int> patterns[] = {{2, 4}, {1, 4}, {4, 8}, {1, 8}};
  const Shape2 shapes[] = {{1, 1}, {13, 37}, {8, 64}, {97, 101}, {4, 6}};
  for (auto [n, m] : patterns)
    for (auto [rows, cols] : shapes)
      for (bool exact : {true, false}) {
        SCOPED_TRACE(testing::Message() << n << ":" << m << " " << rows << "x" << cols);
        Tensor mask = balanced_mask(rng, rows, cols, m, n, exact);
        auto s = random_sample(rng, rows, cols, 1.0);
        Balanced b = Balanced::from_dense_nm(s.dense, n, m, mask);
        EXPECT_EQ(b.bank, m);
        EXPECT_EQ(b.k, n);
        b.validate();
        expect_balanced_layout(b, count_kept(mask));
        const std::int64_t groups = (cols + m - 1) / m;
        EXPECT_EQ(b.footprint().values, static_cast<std::size_t>(rows * groups * n * 4));
        EXPECT_EQ(b.footprint().indices, static_cast<std::size_t>(rows * groups * n));
        EXPECT_TRUE(bitwise_equal(b.to_dense(), expected_dense(s.dense, mask)));
        if (exact && cols % m == 0) EXPECT_EQ(b.padding, 0);
      }
}

TEST(FormatNM, RejectsOverfullGroupAndBadNM) {
  Tensor m = mask_of(1, 8, {1, 1, 0, 0, 1, 1, 1, 0});
  EXPECT_SB_ERROR(Balanced::from_dense_nm(Tensor::full({1, 8}, 1.f), 2, 4, m),
                  "N:M 2:4: group 1 of row 0 keeps 3 entries, more than n=2 (columns 4..7)");
  EXPECT_SB_ERROR(Balanced::from_dense_nm(Tensor::full({1, 8}, 1.f), 3, 2), "N:M 3:2: expected 1 <= n <= m");
  EXPECT_SB_ERROR(Balanced::from_dense_nm(Tensor::full({1, 8}, 1.f), 0, 4), "N:M 0:4: expected 1 <= n <= m");
}

// ----------------------------------------------------------------------------------- Sparse24

namespace {

Tensor mask_24(Rng& rng, std::int64_t rows, std::int64_t cols) { return balanced_mask(rng, rows, cols, 4, 2, false); }

}  // namespace

TEST(FormatSparse24, MetadataByHand) {
  // Groups keep {1,3}, {0,2}, {2,3}, {} -> nibbles (i0 | i1 << 2): 0xD, 0x8, 0xE, 0x4 (the empty
  // group takes positions 0 and 1), packed little-end first: 0x4E8D.
  Tensor d = make(1, 16, {0, 1, 0, 2, 3, 0, 4, 0, 0, 0, 5, 6, 0, 0, 0, 0});
  Sparse24 s = Sparse24::from_dense(d);
  ASSERT_EQ(s.metadata.size(), 1u);
  EXPECT_EQ(s.metadata[0], 0x4E8D);
  EXPECT_EQ(std::vector<float>(s.values.begin(), s.values.end()), (std::vector<float>{1, 2, 3, 4, 5, 6, 0, 0}));
  EXPECT_EQ(s.padding, 2);
  EXPECT_TRUE(bitwise_equal(s.to_dense(), d));
  // One kept entry at position 3: the padding takes position 0, before it.
  Sparse24 one = Sparse24::from_dense(make(1, 4, {0, 0, 0, 7}));
  EXPECT_EQ(one.cols_padded(), 16);
  EXPECT_EQ(one.metadata[0] & 0xF, 0x0 | (3 << 2));
  EXPECT_EQ(one.values[0], 0.f);
  EXPECT_EQ(one.values[1], 7.f);
  EXPECT_EQ(one.padding, 1 + 6);  // group 0 pads one, groups 1..3 (columns 4..15) pad two each
}

TEST(FormatSparse24, RoundTripRandom) {
  Rng rng(8);
  const Shape2 shapes[] = {{1, 1}, {1, 4}, {3, 13}, {16, 16}, {13, 37}, {97, 101}, {8, 64}, {0, 8}, {4, 0}};
  for (auto [rows, cols] : shapes)
    for (int rep = 0; rep < 3; ++rep) {
      SCOPED_TRACE(testing::Message() << rows << "x" << cols);
      Tensor mask = mask_24(rng, rows, cols);
      auto s = random_sample(rng, rows, cols, 1.0);
      Sparse24 sp = Sparse24::from_dense(s.dense, mask);
      sp.validate();
      EXPECT_EQ(static_cast<std::int64_t>(sp.values.size()), rows * sp.cols_padded() / 2);
      EXPECT_EQ(static_cast<std::int64_t>(sp.values.size()) - sp.padding, count_kept(mask));
      EXPECT_TRUE(bitwise_equal(sp.to_dense(), expected_dense(s.dense, mask)));
      // By value: a dense matrix already 2:4.
      Tensor by_value = expected_dense(s.dense, mask);
      EXPECT_TRUE(bitwise_equal(Sparse24::from_dense(by_value).to_dense(), expected_dense(by_value, {})));
    }
}

TEST(FormatSparse24, FootprintF16) {
  // 3x20: cols_padded 32, so 3 * 16 = 48 stored values (f16: 96 B) and 3 * 2 metadata words
  // (12 B). Row 0 keeps 2 in each of its 5 real groups; groups 5..7 are padding (6 values).
  // Rows 1 and 2 keep nothing: 16 padding values each. Padding = 6 + 16 + 16 = 38.
  Tensor m = Tensor::zeros({3, 20}, DType::u8);
  for (int g = 0; g < 5; ++g) m.data<std::uint8_t>()[g * 4] = m.data<std::uint8_t>()[g * 4 + 1] = 1;
  Sparse24 s = Sparse24::from_dense(Tensor::full({3, 20}, 1.5f), m);
  Footprint f = s.footprint();  // f16 by default
  EXPECT_EQ(f.values, 96u);
  EXPECT_EQ(f.metadata, 12u);
  EXPECT_EQ(f.indices, 0u);
  EXPECT_EQ(f.pointers, 0u);
  EXPECT_EQ(f.padding_values, 38);
  EXPECT_EQ(f.total(), 108u);
  EXPECT_EQ(s.footprint(DType::f32).values, 192u);
}

TEST(FormatSparse24, RejectsAndValidates) {
  EXPECT_SB_ERROR(Sparse24::from_dense(make(2, 8,
                                            {1, 1, 0, 0, 1, 1, 1, 0,  //
                                             0, 0, 0, 0, 0, 0, 0, 0})),
                  "Sparse24: group 1 of row 0 keeps 3 entries, more than 2 (columns 4..7)");
  // The last group is partial (columns 4..6 of a 7-column row) and still limited to 2.
  EXPECT_SB_ERROR(Sparse24::from_dense(Tensor::full({1, 7}, 1.f), mask_of(1, 7, {0, 0, 0, 1, 1, 1, 1})),
                  "Sparse24: group 1 of row 0 keeps 3 entries, more than 2 (columns 4..6)");
  Tensor ok = mask_of(1, 6, {0, 0, 0, 1, 1, 1});
  EXPECT_TRUE(bitwise_equal(Sparse24::from_dense(Tensor::full({1, 6}, 1.f), ok).to_dense(),
                            expected_dense(Tensor::full({1, 6}, 1.f), ok)));
}

TEST(FormatSparse24, ValidateRejectsCorruption) {
  const Sparse24 good = Sparse24::from_dense(make(1, 6, {1, 0, 2, 0, 3, 0}));
  good.validate();
  Sparse24 s = good;
  s.metadata[0] = static_cast<std::uint16_t>((s.metadata[0] & ~0xF) | (1 | (1 << 2)));  // indices 1, 1
  EXPECT_SB_ERROR(s.validate(), "Sparse24 1x6: group 0 of row 0 has indices 1, 1; expected ascending and different");
  s = good;
  s.metadata[0] = static_cast<std::uint16_t>((s.metadata[0] & ~0xF) | (2 | (0 << 2)));  // indices 2, 0
  EXPECT_SB_ERROR(s.validate(), "has indices 2, 0; expected ascending and different");
  s = good;
  s.values[4] = 4.f;  // group 2 lies wholly in padding (columns 8..11)
  EXPECT_SB_ERROR(s.validate(), "group 2 of row 0 holds 4 at padded column 8, expected 0 (cols=6)");
  s = good;
  s.values.push_back(0.f);
  EXPECT_SB_ERROR(s.validate(), "values has 9 entries, expected 8 (rows x cols_padded / 2 = 1 x 8)");
  s = good;
  s.metadata.clear();
  EXPECT_SB_ERROR(s.validate(), "metadata has 0 words, expected 1");
  s = good;
  s.padding = 0;
  EXPECT_SB_ERROR(s.validate(), "padding is 0, but 4 values lie in padded columns and must be padding");
}

// ------------------------------------------------------------------------------------ scaling

TEST(FormatScale, LargeMatrixAllFormats) {
  // 2048 x 2048 at 90 % sparsity through every format; guards against accidental quadratic work
  // (this test would take minutes), not a timing claim.
  Rng rng(9);
  const std::int64_t n = 2048;
  Tensor d = Tensor::empty({n, n});
  rng.fill_uniform(d, -1.f, 1.f);
  Tensor mask = balanced_mask(rng, n, n, 4, 2, false);
  Tensor sparse = expected_dense(d, mask);
  EXPECT_TRUE(bitwise_equal(Csr::from_dense(sparse).to_dense(), sparse));
  EXPECT_TRUE(bitwise_equal(Csc::from_dense(sparse).to_dense(), sparse));
  EXPECT_TRUE(bitwise_equal(Bsr::from_dense(sparse, 4, 4).to_dense(), sparse));
  EXPECT_TRUE(bitwise_equal(Balanced::from_dense_nm(sparse, 2, 4).to_dense(), sparse));
  EXPECT_TRUE(bitwise_equal(Sparse24::from_dense(sparse).to_dense(), sparse));
  EXPECT_TRUE(bitwise_equal(csr_from_csc(csc_from_csr(Csr::from_dense(sparse))).to_dense(), sparse));
}

// ------------------------------------------------------------------------- random corruption

namespace {

// Overwrites one random element of `v` with a random value (sometimes a boundary value).
template <class V>
void poke(Rng& rng, V& v) {
  if (v.empty()) return;
  using T = typename V::value_type;
  const std::size_t i = rng.below(v.size());
  switch (rng.below(4)) {
    case 0:
      v[i] = static_cast<T>(rng.next_u32());
      break;
    case 1:
      v[i] = static_cast<T>(v[i] + 1);
      break;
    case 2:
      v[i] = static_cast<T>(v[i] - 1);
      break;
    default:
      v[i] = static_cast<T>(0);
      break;
  }
}

// Either validate() rejects the instance with sb::Error or every reader works on it; never a crash
// (the sanitizer builds turn an out-of-bounds read into a failure).
template <class F>
void survive(const F& f) {
  try {
    f.validate();
  } catch (const Error&) {
    (void)f.footprint();
    return;
  }
  (void)f.to_dense();
  (void)f.footprint();
}

}  // namespace

TEST(FormatCorrupt, RandomPokesAreRejectedOrHarmless) {
  Rng rng(15);
  auto s = random_sample(rng, 13, 37, 0.3);
  const Csr csr = Csr::from_dense(s.dense, s.mask);
  const Csc csc = Csc::from_dense(s.dense, s.mask);
  const Coo coo = Coo::from_dense(s.dense, s.mask);
  const Bsr bsr = Bsr::from_dense(s.dense, 4, 8, s.mask);
  const Balanced bal = Balanced::from_dense_infer_k(s.dense, 8, s.mask);
  Tensor m24 = balanced_mask(rng, 13, 37, 4, 2, false);
  const Sparse24 s24 = Sparse24::from_dense(s.dense, m24);
  for (int it = 0; it < 400; ++it) {
    Csr a = csr;
    if (rng.below(2))
      poke(rng, a.row_ptr);
    else
      poke(rng, a.col16);
    survive(a);
    Csc b = csc;
    if (rng.below(2))
      poke(rng, b.col_ptr);
    else
      poke(rng, b.row16);
    survive(b);
    Coo c = coo;
    if (rng.below(2))
      poke(rng, c.row_idx);
    else
      poke(rng, c.col_idx);
    survive(c);
    Bsr d = bsr;
    if (rng.below(2))
      poke(rng, d.block_row_ptr);
    else
      poke(rng, d.block_col16);
    survive(d);
    Balanced e = bal;
    poke(rng, e.off8);
    survive(e);
    Sparse24 f = s24;
    poke(rng, f.metadata);
    survive(f);
  }
}
