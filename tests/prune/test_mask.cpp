#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "sparsebench/core/error.h"
#include "sparsebench/core/rng.h"
#include "sparsebench/prune/mask.h"

using namespace sb;

namespace {

using i64 = std::int64_t;

Tensor random_weight(const Shape& shape, std::uint64_t seed, float stddev = 1.f) {
  Tensor w = Tensor::empty(shape);
  Rng rng(seed);
  rng.fill_normal(w, 0.f, stddev);
  return w;
}

i64 pruned_count(const Tensor& mask) {
  const auto* m = mask.data<std::uint8_t>();
  i64 z = 0;
  for (i64 i = 0; i < mask.numel(); ++i) z += m[i] == 0;
  return z;
}

// Rows and columns of the 2-D view [out, in*kh*kw].
std::pair<i64, i64> view2d(const Shape& s) {
  i64 r = s[0];
  return {r, shape_numel(s) / r};
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_ERROR(stmt, text)                                   \
  do {                                                             \
    const std::string msg_ = error_of([&] { (void)(stmt); });      \
    EXPECT_NE(msg_.find(text), std::string::npos) << msg_;         \
  } while (0)

const std::vector<Shape> kShapes = {{1, 2},  {7, 13},  {13, 7},  {64, 64},  {31, 97},
                                    {4, 3, 3, 3}, {17, 5, 3, 3}, {8, 16, 1, 1}, {6, 7, 5, 5}};
const double kSparsities[] = {0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 0.95, 0.99};

}  // namespace

// ---------------------------------------------------------------- unstructured

TEST(MaskUnstructured, ExactCountAndLowestMagnitudesGo) {
  std::uint64_t seed = 1;
  for (const auto& shape : kShapes) {
    const Tensor w = random_weight(shape, seed++);
    const i64 n = w.numel();
    for (double s : kSparsities) {
      const MaskResult r = make_mask(w, Pattern::parse("unstructured"), s);
      ASSERT_EQ(r.mask.dtype(), DType::u8);
      ASSERT_EQ(r.mask.shape(), shape);
      const i64 want = std::min<i64>(std::llround(s * double(n)), n - 1);
      EXPECT_EQ(pruned_count(r.mask), want) << shape_to_string(shape) << " s=" << s;
      EXPECT_DOUBLE_EQ(r.achieved, double(want) / double(n));
      EXPECT_EQ(r.requested, s);
      EXPECT_EQ(r.note.empty(), r.achieved == s) << r.note;
      float max_pruned = -1, min_kept = std::numeric_limits<float>::infinity();
      for (i64 i = 0; i < n; ++i) {
        const float a = std::fabs(w.data<float>()[i]);
        if (r.mask.data<std::uint8_t>()[i]) min_kept = std::min(min_kept, a);
        else max_pruned = std::max(max_pruned, a);
      }
      EXPECT_LE(max_pruned, min_kept);
    }
  }
}

TEST(MaskUnstructured, TiesKeepTheLowerIndex) {
  const Tensor w = Tensor::full({2, 5}, 0.5f);
  const MaskResult r = make_mask(w, Pattern::parse("unstructured"), 0.3);
  const auto* m = r.mask.data<std::uint8_t>();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(m[i], i < 7 ? 1 : 0) << i;
  // Signs do not matter to |w|: -0.5 ties with 0.5.
  Tensor v = w.clone();
  v.data<float>()[9] = -0.5f;
  v.data<float>()[0] = 0.25f;
  const MaskResult q = make_mask(v, Pattern::parse("unstructured"), 0.3);
  const auto* mq = q.mask.data<std::uint8_t>();
  const int want[] = {0, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(mq[i], want[i]) << i;
}

TEST(MaskUnstructured, RoundsToTheNearestWholeWeightAndExplains) {
  const Tensor w = random_weight({1, 7}, 3);
  const MaskResult r = make_mask(w, Pattern::parse("unstructured"), 0.5);
  EXPECT_EQ(pruned_count(r.mask), 4);   // round(3.5) = 4, half away from zero
  EXPECT_NE(r.note.find("pruned 4 of 7 weights"), std::string::npos) << r.note;
  // A request below 1 never empties the tensor.
  const MaskResult q = make_mask(w, Pattern::parse("unstructured"), 0.97);
  EXPECT_EQ(pruned_count(q.mask), 6);
  EXPECT_NE(q.note.find("one weight is always kept"), std::string::npos) << q.note;
  // Exact requests carry no note.
  const MaskResult e = make_mask(random_weight({10, 10}, 4), Pattern::parse("unstructured"), 0.9);
  EXPECT_EQ(e.achieved, 0.9);
  EXPECT_TRUE(e.note.empty()) << e.note;
}

TEST(MaskUnstructured, AnotherScoreChangesTheChoice) {
  const Tensor w = random_weight({16, 16}, 5);
  Tensor score = Tensor::empty({16, 16});
  for (int i = 0; i < 256; ++i) score.data<float>()[i] = -std::fabs(w.data<float>()[i]);   // small = important
  const MaskResult mag = make_mask(w, Pattern::parse("unstructured"), 0.5);
  const MaskResult inv = make_mask(w, Pattern::parse("unstructured"), 0.5, score);
  EXPECT_EQ(pruned_count(inv.mask), 128);
  for (int i = 0; i < 256; ++i) EXPECT_NE(mag.mask.data<std::uint8_t>()[i], inv.mask.data<std::uint8_t>()[i]) << i;
}

TEST(MaskUnstructured, NonContiguousWeightIsSeenInItsLogicalOrder) {
  const Tensor w = random_weight({12, 9}, 6);
  const Tensor t = w.transpose(0, 1);   // [9, 12], strided
  const MaskResult r = make_mask(t, Pattern::parse("unstructured"), 0.5);
  const MaskResult c = make_mask(t.clone(), Pattern::parse("unstructured"), 0.5);
  for (int i = 0; i < 108; ++i) EXPECT_EQ(r.mask.data<std::uint8_t>()[i], c.mask.data<std::uint8_t>()[i]);
}

// ---------------------------------------------------------------- global

TEST(MaskGlobal, OneThresholdAcrossLayersOfDifferentScales) {
  const std::vector<Tensor> ws = {random_weight({32, 64}, 10, 1.f), random_weight({64, 32}, 11, 0.01f),
                                  random_weight({8, 4, 3, 3}, 12, 0.1f)};
  const double s = 0.5;
  const auto rs = make_global_masks(ws, s);
  ASSERT_EQ(rs.size(), 3u);
  i64 total = 0, pruned = 0;
  float max_pruned = -1, min_kept = std::numeric_limits<float>::infinity();
  for (std::size_t l = 0; l < ws.size(); ++l) {
    total += ws[l].numel();
    pruned += pruned_count(rs[l].mask);
    EXPECT_DOUBLE_EQ(rs[l].achieved, double(pruned_count(rs[l].mask)) / double(ws[l].numel()));
    for (i64 i = 0; i < ws[l].numel(); ++i) {
      const float a = std::fabs(ws[l].data<float>()[i]);
      if (rs[l].mask.data<std::uint8_t>()[i]) min_kept = std::min(min_kept, a);
      else max_pruned = std::max(max_pruned, a);
    }
  }
  EXPECT_EQ(pruned, std::llround(s * double(total)));
  EXPECT_LE(max_pruned, min_kept);
  // The small-scale layer loses far more than the large one; the per-layer notes say why.
  EXPECT_GT(rs[1].achieved, 0.9);
  EXPECT_LT(rs[0].achieved, 0.3);
  EXPECT_NE(rs[0].note.find("one threshold across 3 tensors"), std::string::npos) << rs[0].note;
}

TEST(MaskGlobal, ScoresReplaceMagnitude) {
  const std::vector<Tensor> ws = {random_weight({16, 16}, 20, 1.f), random_weight({16, 16}, 21, 0.01f)};
  // Scores that rescale each layer to unit spread: the global choice becomes a per-layer one.
  std::vector<Tensor> scores = {ws[0].clone(), ws[1].clone()};
  for (int i = 0; i < 256; ++i) {
    scores[0].data<float>()[i] = std::fabs(scores[0].data<float>()[i]);
    scores[1].data<float>()[i] = std::fabs(scores[1].data<float>()[i]) * 100.f;
  }
  const auto mag = make_global_masks(ws, 0.5);
  const auto sc = make_global_masks(ws, 0.5, scores);
  EXPECT_GT(mag[1].achieved, 0.9);
  EXPECT_LT(sc[1].achieved, 0.8);
  EXPECT_EQ(pruned_count(sc[0].mask) + pruned_count(sc[1].mask), 256);
}

TEST(MaskGlobal, TiesAcrossLayersPruneTheLaterLayerFirstAndNeverEmptyALayer) {
  const std::vector<Tensor> ws = {Tensor::full({2, 2}, 1.f), Tensor::full({2, 2}, 1.f)};
  const auto rs = make_global_masks(ws, 0.25);   // 2 of 8: the last two of layer 1
  const int want1[] = {1, 1, 0, 0};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(rs[0].mask.data<std::uint8_t>()[i], 1);
    EXPECT_EQ(rs[1].mask.data<std::uint8_t>()[i], want1[i]);
  }
  // A layer whose every weight lies below the threshold still keeps its largest one.
  const std::vector<Tensor> vs = {random_weight({4, 4}, 30, 1.f), random_weight({2, 2}, 31, 1e-6f)};
  const auto qs = make_global_masks(vs, 0.5);
  EXPECT_EQ(pruned_count(qs[1].mask), 3);
  EXPECT_EQ(pruned_count(qs[0].mask) + pruned_count(qs[1].mask), 10);
}

TEST(MaskGlobal, Errors) {
  const std::vector<Tensor> ws = {random_weight({4, 4}, 1), random_weight({4, 4}, 2)};
  EXPECT_ERROR(make_global_masks(ws, 1.0), "sparsity 1 is out of range: expected a value in [0, 1)");
  EXPECT_ERROR(make_global_masks(ws, 0.5, {random_weight({4, 4}, 3)}), "1 scores for 2 weights");
  EXPECT_ERROR(make_global_masks(ws, 0.5, {random_weight({4, 4}, 3), random_weight({4, 5}, 3)}),
               "score of weights[1] has shape [4, 5]: expected the weight's shape [4, 4]");
  EXPECT_ERROR(make_global_masks({ws[0], random_weight({16}, 4)}, 0.5), "weights[1] of shape [16] is 1-D");
  EXPECT_TRUE(make_global_masks({}, 0.5).empty());
}

// ---------------------------------------------------------------- filter / channel

TEST(MaskFilter, WholeRowsGoAndTheCountIsRounded) {
  std::uint64_t seed = 40;
  for (const auto& shape : kShapes) {
    const Tensor w = random_weight(shape, seed++);
    const auto [rows, cols] = view2d(shape);
    for (const char* p : {"filter", "filter:l2"}) {
      for (double s : kSparsities) {
        const MaskResult r = make_mask(w, Pattern::parse(p), s);
        const auto* m = r.mask.data<std::uint8_t>();
        i64 pruned_rows = 0;
        for (i64 i = 0; i < rows; ++i) {
          i64 kept = 0;
          for (i64 j = 0; j < cols; ++j) kept += m[i * cols + j];
          EXPECT_TRUE(kept == 0 || kept == cols) << "row " << i << " of " << shape_to_string(shape);
          pruned_rows += kept == 0;
        }
        EXPECT_EQ(pruned_rows, std::min<i64>(std::llround(s * double(rows)), rows - 1))
            << p << " " << shape_to_string(shape) << " s=" << s;
        // Within one filter of the request, unless the last filter had to stay.
        if (std::llround(s * double(rows)) < rows)
          EXPECT_LE(std::fabs(r.achieved - s), 0.5 / double(rows) + 1e-12);
      }
    }
  }
}

TEST(MaskFilter, NormChoosesTheRanking) {
  // Row 0: [1, 1, 1, 1] has L1 4, L2 2; row 1: [3, 0, 0, 0] has L1 3, L2 3.
  const float data[] = {1, 1, 1, 1, 3, 0, 0, 0};
  const Tensor w = Tensor::from_data<float>({2, 4}, data);
  const MaskResult l1 = make_mask(w, Pattern::parse("filter:l1"), 0.5);
  const MaskResult l2 = make_mask(w, Pattern::parse("filter:l2"), 0.5);
  EXPECT_EQ(l1.mask.data<std::uint8_t>()[0], 1);
  EXPECT_EQ(l1.mask.data<std::uint8_t>()[4], 0);
  EXPECT_EQ(l2.mask.data<std::uint8_t>()[0], 0);
  EXPECT_EQ(l2.mask.data<std::uint8_t>()[4], 1);
  // A score picks filters by its own norm.
  const float sdata[] = {0, 0, 0, 0, 1, 1, 1, 1};
  const MaskResult sc = make_mask(w, Pattern::parse("filter"), 0.5, Tensor::from_data<float>({2, 4}, sdata));
  EXPECT_EQ(sc.mask.data<std::uint8_t>()[0], 0);
  EXPECT_EQ(sc.mask.data<std::uint8_t>()[4], 1);
}

TEST(MaskFilter, NoteExplainsWholeFilters) {
  const MaskResult r = make_mask(random_weight({8, 3, 3, 3}, 7), Pattern::parse("filter"), 0.4);
  EXPECT_EQ(r.achieved, 0.375);
  EXPECT_NE(r.note.find("pruned 3 of 8 filters"), std::string::npos) << r.note;
  const MaskResult q = make_mask(random_weight({4, 8}, 7), Pattern::parse("filter"), 0.9);
  EXPECT_EQ(q.achieved, 0.75);
  EXPECT_NE(q.note.find("one filter is always kept"), std::string::npos) << q.note;
}

TEST(MaskChannel, WholeInputChannelsGoInEveryFilter) {
  std::uint64_t seed = 60;
  for (const auto& shape : kShapes) {
    const Tensor w = random_weight(shape, seed++);
    const auto [rows, cols] = view2d(shape);
    const i64 in = shape[1], width = cols / in;
    for (const char* p : {"channel", "channel:l2"}) {
      for (double s : kSparsities) {
        const MaskResult r = make_mask(w, Pattern::parse(p), s);
        const auto* m = r.mask.data<std::uint8_t>();
        i64 pruned_channels = 0;
        for (i64 c = 0; c < in; ++c) {
          i64 kept = 0;
          for (i64 i = 0; i < rows; ++i)
            for (i64 j = c * width; j < (c + 1) * width; ++j) kept += m[i * cols + j];
          EXPECT_TRUE(kept == 0 || kept == rows * width) << "channel " << c << " of " << shape_to_string(shape);
          pruned_channels += kept == 0;
        }
        EXPECT_EQ(pruned_channels, std::min<i64>(std::llround(s * double(in)), in - 1))
            << p << " " << shape_to_string(shape) << " s=" << s;
      }
    }
  }
}

TEST(MaskChannel, LowestNormChannelsGo) {
  // 4-D [2, 3, 2, 2]: channel 1 is tiny in both filters, so it is the one pruned at 1/3.
  Tensor w = Tensor::full({2, 3, 2, 2}, 1.f);
  for (int o = 0; o < 2; ++o)
    for (int k = 0; k < 4; ++k) w.data<float>()[o * 12 + 4 + k] = 0.01f;
  const MaskResult r = make_mask(w, Pattern::parse("channel"), 1.0 / 3.0);
  for (int o = 0; o < 2; ++o)
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 4; ++k) EXPECT_EQ(r.mask.data<std::uint8_t>()[o * 12 + c * 4 + k], c == 1 ? 0 : 1);
  // On a 2-D weight a channel is a column.
  const float data[] = {5, 1, 5, 5, 1, 5};
  const MaskResult q = make_mask(Tensor::from_data<float>({2, 3}, data), Pattern::parse("channel"), 0.3);
  const int want[] = {1, 0, 1, 1, 0, 1};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(q.mask.data<std::uint8_t>()[i], want[i]);
}

// ---------------------------------------------------------------- block

TEST(MaskBlock, AllOrNothingAndWithinOneBlock) {
  const std::vector<Shape> shapes = {{16, 16}, {13, 11}, {64, 64}, {31, 97}, {17, 5, 3, 3}, {8, 16, 1, 1}, {4, 4}};
  const std::pair<int, int> blocks[] = {{1, 1}, {2, 2}, {4, 4}, {1, 4}, {4, 1}, {3, 5}};
  std::uint64_t seed = 80;
  for (const auto& shape : shapes) {
    const Tensor w = random_weight(shape, seed++);
    const auto [rows, cols] = view2d(shape);
    for (auto [br, bc] : blocks) {
      if (br > rows || bc > cols) continue;
      const Pattern p = Pattern::parse(fmt::format("block:{}x{}", br, bc));
      for (double s : kSparsities) {
        const MaskResult r = make_mask(w, p, s);
        const auto* m = r.mask.data<std::uint8_t>();
        i64 kept_blocks = 0;
        for (i64 bi = 0; bi < rows; bi += br)
          for (i64 bj = 0; bj < cols; bj += bc) {
            i64 kept = 0, size = 0;
            for (i64 i = bi; i < std::min(rows, bi + br); ++i)
              for (i64 j = bj; j < std::min(cols, bj + bc); ++j) kept += m[i * cols + j], ++size;
            EXPECT_TRUE(kept == 0 || kept == size) << p.to_string() << " " << shape_to_string(shape);
            kept_blocks += kept > 0;
          }
        EXPECT_GE(kept_blocks, 1);
        const double n = double(rows * cols);
        const bool capped = kept_blocks == 1 && s * n > n - br * bc;
        if (!capped)
          EXPECT_LE(std::fabs(double(pruned_count(r.mask)) - s * n), double(br * bc))
              << p.to_string() << " " << shape_to_string(shape) << " s=" << s;
        EXPECT_EQ(r.note.empty(), r.achieved == s) << r.note;
      }
    }
  }
}

TEST(MaskBlock, LowestMeanMagnitudeBlocksGo) {
  // 4x4 with 2x2 blocks: block (1, 0) is the weakest, then (0, 1).
  Tensor w = Tensor::full({4, 4}, 1.f);
  for (int i = 2; i < 4; ++i)
    for (int j = 0; j < 2; ++j) w.data<float>()[i * 4 + j] = 0.1f;
  for (int i = 0; i < 2; ++i)
    for (int j = 2; j < 4; ++j) w.data<float>()[i * 4 + j] = 0.5f;
  const MaskResult r = make_mask(w, Pattern::parse("block:2x2"), 0.5);
  const int want[] = {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(r.mask.data<std::uint8_t>()[i], want[i]) << i;
  EXPECT_EQ(r.achieved, 0.5);
  EXPECT_TRUE(r.note.empty());
}

TEST(MaskBlock, PartialEdgeBlocksCountTheirRealElements) {
  // 5 x 5 with 4x4 blocks: sizes 16, 4, 4, 1. Equal magnitudes everywhere: the mean ranks them all
  // equal, ties prune the higher block index first (1x1, then 1x4 at the bottom, ...).
  const Tensor w = Tensor::full({5, 5}, 1.f);
  const MaskResult r = make_mask(w, Pattern::parse("block:4x4"), 0.2);   // 5 of 25: blocks 3 and 2
  EXPECT_EQ(pruned_count(r.mask), 5);
  EXPECT_EQ(r.achieved, 0.2);
  const MaskResult q = make_mask(w, Pattern::parse("block:4x4"), 0.1);   // 2.5: 1 or 5 -> 1 (nearer)
  EXPECT_EQ(pruned_count(q.mask), 1);
  EXPECT_NE(q.note.find("edge blocks are partial"), std::string::npos) << q.note;
}

TEST(MaskBlock, BlockLargerThanTheMatrixIsRejected) {
  EXPECT_ERROR(make_mask(random_weight({7, 5}, 1), Pattern::parse("block:8x8"), 0.5),
               "block 8x8 does not fit the weight's 7 x 5 matrix (2-D view of shape [7, 5]): expected block rows <= "
               "7 and block cols <= 5");
  EXPECT_ERROR(make_mask(random_weight({16, 2, 1, 1}, 1), Pattern::parse("block:4x4"), 0.5),
               "block 4x4 does not fit the weight's 16 x 2 matrix");
}

// ---------------------------------------------------------------- balanced

TEST(MaskBalanced, EveryFullBankKeepsExactlyK) {
  const std::vector<Shape> shapes = {{8, 64}, {5, 37}, {13, 97}, {6, 5, 3, 3}, {3, 7, 1, 1}, {1, 16}};
  std::uint64_t seed = 100;
  for (const auto& shape : shapes) {
    const Tensor w = random_weight(shape, seed++);
    const auto [rows, cols] = view2d(shape);
    for (int bank : {1, 4, 7, 8, 16}) {
      if (bank > cols) continue;
      const Pattern p = Pattern::parse(fmt::format("balanced:bank={}", bank));
      for (double s : kSparsities) {
        const MaskResult r = make_mask(w, p, s);
        const auto* m = r.mask.data<std::uint8_t>();
        const i64 k = std::clamp<i64>(std::llround(bank * (1 - s)), 1, bank);
        for (i64 i = 0; i < rows; ++i)
          for (i64 b0 = 0; b0 < cols; b0 += bank) {
            const i64 width = std::min<i64>(bank, cols - b0);
            const i64 want = width == bank ? k : std::clamp<i64>(std::llround(width * (1 - s)), 1, width);
            i64 kept = 0;
            float min_kept = std::numeric_limits<float>::infinity(), max_pruned = -1;
            for (i64 j = b0; j < b0 + width; ++j) {
              const float a = std::fabs(w.data<float>()[i * cols + j]);
              if (m[i * cols + j]) ++kept, min_kept = std::min(min_kept, a);
              else max_pruned = std::max(max_pruned, a);
            }
            ASSERT_EQ(kept, want) << p.to_string() << " " << shape_to_string(shape) << " s=" << s << " row " << i
                                  << " bank at " << b0;
            EXPECT_LE(max_pruned, min_kept);
          }
        if (cols % bank == 0) EXPECT_DOUBLE_EQ(r.achieved, 1.0 - double(k) / bank);
        EXPECT_EQ(r.note.empty(), r.achieved == s) << r.note;
      }
    }
  }
}

TEST(MaskBalanced, TiesAndScoresAndNotes) {
  const Tensor w = Tensor::full({1, 8}, 1.f);
  const MaskResult r = make_mask(w, Pattern::parse("balanced:bank=4"), 0.5);
  const int want[] = {1, 1, 0, 0, 1, 1, 0, 0};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(r.mask.data<std::uint8_t>()[i], want[i]);
  const float sdata[] = {0, 0, 1, 1, 1, 1, 0, 0};
  const MaskResult q = make_mask(w, Pattern::parse("balanced:bank=4"), 0.5, Tensor::from_data<float>({1, 8}, sdata));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(q.mask.data<std::uint8_t>()[i], sdata[i] != 0);
  const MaskResult n = make_mask(random_weight({4, 8}, 2), Pattern::parse("balanced:bank=4"), 0.6);
  EXPECT_EQ(n.achieved, 0.5);
  EXPECT_NE(n.note.find("keeps 2 of every 4 weights per bank"), std::string::npos) << n.note;
  const MaskResult one = make_mask(random_weight({4, 8}, 2), Pattern::parse("balanced:bank=4"), 0.9);
  EXPECT_EQ(one.achieved, 0.75);
  EXPECT_NE(one.note.find("a bank keeps at least one weight"), std::string::npos) << one.note;
}

TEST(MaskBalanced, BankWiderThanTheRowIsRejected) {
  EXPECT_ERROR(make_mask(random_weight({4, 8}, 1), Pattern::parse("balanced:bank=16"), 0.5),
               "bank 16 does not fit the weight's rows of 8 columns (2-D view [4, 8]): expected bank <= 8");
}

// ---------------------------------------------------------------- N:M

TEST(MaskNm, EveryGroupKeepsAtMostN) {
  const std::vector<Shape> shapes = {{8, 64}, {5, 37}, {13, 97}, {6, 5, 3, 3}, {3, 7, 1, 1}, {2, 3}};
  const std::pair<int, int> nms[] = {{2, 4}, {1, 4}, {1, 2}, {4, 8}, {3, 5}, {4, 4}};
  std::uint64_t seed = 120;
  for (const auto& shape : shapes) {
    const Tensor w = random_weight(shape, seed++);
    const auto [rows, cols] = view2d(shape);
    for (auto [n, m] : nms) {
      const Pattern p = Pattern::parse(fmt::format("nm:{}:{}", n, m));
      const double fixed = 1.0 - double(n) / m;
      for (double s : {fixed, 0.0, 0.7}) {
        const MaskResult r = make_mask(w, p, s);
        const auto* mk = r.mask.data<std::uint8_t>();
        for (i64 i = 0; i < rows; ++i)
          for (i64 g0 = 0; g0 < cols; g0 += m) {
            const i64 width = std::min<i64>(m, cols - g0);
            i64 kept = 0;
            float min_kept = std::numeric_limits<float>::infinity(), max_pruned = -1;
            for (i64 j = g0; j < g0 + width; ++j) {
              const float a = std::fabs(w.data<float>()[i * cols + j]);
              if (mk[i * cols + j]) ++kept, min_kept = std::min(min_kept, a);
              else max_pruned = std::max(max_pruned, a);
            }
            ASSERT_LE(kept, n);
            ASSERT_EQ(kept, std::min<i64>(n, width)) << p.to_string() << " " << shape_to_string(shape);
            EXPECT_LE(max_pruned, min_kept);
          }
        if (cols % m == 0) EXPECT_DOUBLE_EQ(r.achieved, fixed);
        if (s != fixed && r.achieved != s) EXPECT_NE(r.note.find("fixes the sparsity at"), std::string::npos) << r.note;
        if (s == fixed && cols % m == 0) EXPECT_TRUE(r.note.empty()) << r.note;
        if (cols % m != 0 && r.achieved != s)
          EXPECT_NE(r.note.find("the last group of each row is"), std::string::npos) << r.note;
      }
    }
  }
}

TEST(MaskNm, ADifferentRequestIsNotedNotAnError) {
  const MaskResult r = make_mask(random_weight({4, 16}, 3), Pattern::parse("nm:2:4"), 0.7);
  EXPECT_EQ(r.requested, 0.7);
  EXPECT_EQ(r.achieved, 0.5);
  EXPECT_NE(r.note.find("nm:2:4 fixes the sparsity at 0.5: the requested 0.7 is not applied"), std::string::npos)
      << r.note;
}

// ---------------------------------------------------------------- dense, apply, sparsity

TEST(MaskDense, KeepsEverything) {
  const MaskResult r = make_mask(random_weight({3, 4}, 1), Pattern::parse("dense"), 0.5);
  EXPECT_EQ(pruned_count(r.mask), 0);
  EXPECT_EQ(r.achieved, 0.0);
  EXPECT_NE(r.note.find("dense prunes nothing"), std::string::npos);
  EXPECT_TRUE(make_mask(random_weight({3, 4}, 1), Pattern::parse("dense"), 0.0).note.empty());
}

TEST(MaskApply, ZeroesPrunedAndMeasures) {
  Tensor w = random_weight({8, 8}, 9);
  const MaskResult r = make_mask(w, Pattern::parse("unstructured"), 0.75);
  EXPECT_EQ(mask_sparsity(r.mask), 0.75);
  const Tensor before = w.clone();
  apply_mask(w, r.mask);
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(w.data<float>()[i], r.mask.data<std::uint8_t>()[i] ? before.data<float>()[i] : 0.f);
  EXPECT_EQ(mask_sparsity(w), 0.75);
  EXPECT_ERROR(apply_mask(w, Tensor::zeros({8, 4}, DType::u8)),
               "apply_mask: mask of shape [8, 4] does not match the weight's shape [8, 8]");
  EXPECT_ERROR(apply_mask(w, Tensor::zeros({8, 8})), "apply_mask: mask has dtype f32: expected u8");
  EXPECT_ERROR(mask_sparsity(Tensor::zeros({2}, DType::i32)), "mask_sparsity of a tensor of dtype i32");
}

// ---------------------------------------------------------------- errors

TEST(MaskErrors, OneClearLineEach) {
  const Tensor w = random_weight({4, 4}, 1);
  const Pattern u = Pattern::parse("unstructured");
  EXPECT_ERROR(make_mask(w, u, 1.2), "sparsity 1.2 is out of range: expected a value in [0, 1)");
  EXPECT_ERROR(make_mask(w, u, 1.0), "sparsity 1 is out of range: expected a value in [0, 1)");
  EXPECT_ERROR(make_mask(w, u, -0.1), "sparsity -0.1 is out of range: expected a value in [0, 1)");
  EXPECT_ERROR(make_mask(w, u, std::nan("")), "sparsity nan is out of range: expected a value in [0, 1)");
  EXPECT_ERROR(make_mask(w, u, 0.5, random_weight({3, 4}, 2)),
               "score of weight has shape [3, 4]: expected the weight's shape [4, 4]");
  EXPECT_ERROR(make_mask(w, u, 0.5, Tensor::zeros({4, 4}, DType::u8)), "score of weight has dtype u8: expected f32");
  EXPECT_ERROR(make_mask(random_weight({16}, 1), u, 0.5),
               "weight of shape [16] is 1-D: expected a 2-D [out, in] or 4-D [out, in, kh, kw] tensor");
  EXPECT_ERROR(make_mask(random_weight({2, 3, 4}, 1), u, 0.5), "weight of shape [2, 3, 4] is 3-D");
  EXPECT_ERROR(make_mask(Tensor::zeros({4, 4}, DType::u8), u, 0.5), "weight has dtype u8: expected f32");
  EXPECT_ERROR(make_mask(Tensor(), u, 0.5), "weight is undefined");
  EXPECT_ERROR(make_mask(Tensor::zeros({0, 4}), u, 0.5), "weight of shape [0, 4] is empty");
  Tensor nan_w = w.clone();
  nan_w.data<float>()[5] = std::nanf("");
  EXPECT_ERROR(make_mask(nan_w, u, 0.5), "magnitude score |w| of weight has a NaN at flat index 5");
  EXPECT_ERROR(make_mask(w, u, 0.5, nan_w), "score of weight has a NaN at flat index 5");
  // Hand-built patterns are checked like parsed ones.
  Pattern nm;
  nm.kind = Pattern::Kind::nm;
  nm.n = 4, nm.m = 2;
  EXPECT_ERROR(make_mask(w, nm, 0.5), "N = 4 is greater than M = 2: expected N <= M");
  nm.n = 0, nm.m = 4;
  EXPECT_ERROR(make_mask(w, nm, 0.5), "pattern nm:0:4: expected N >= 1 and M >= 1");
  Pattern block;
  block.kind = Pattern::Kind::block;
  block.block_rows = 0, block.block_cols = 2;
  EXPECT_ERROR(make_mask(w, block, 0.5), "pattern block:0x2: expected block rows and cols >= 1");
  Pattern bal;
  bal.kind = Pattern::Kind::balanced;
  EXPECT_ERROR(make_mask(w, bal, 0.5), "pattern balanced:bank=0: expected a bank >= 1");
}

// ---------------------------------------------------------------- scale (correctness only; timings live in benchmarks)

TEST(MaskLarge, FourKSquared) {
  const Tensor w = random_weight({4096, 4096}, 77);
  const i64 n = w.numel();
  const MaskResult u = make_mask(w, Pattern::parse("unstructured"), 0.9);
  EXPECT_EQ(pruned_count(u.mask), std::llround(0.9 * double(n)));
  const MaskResult b = make_mask(w, Pattern::parse("balanced:bank=32"), 0.75);
  EXPECT_EQ(b.achieved, 0.75);
  const MaskResult nm = make_mask(w, Pattern::parse("nm:2:4"), 0.5);
  EXPECT_EQ(nm.achieved, 0.5);
  const MaskResult bl = make_mask(w, Pattern::parse("block:4x4"), 0.75);
  EXPECT_EQ(bl.achieved, 0.75);
  const MaskResult f = make_mask(w, Pattern::parse("filter:l2"), 0.5);
  EXPECT_EQ(f.achieved, 0.5);
}
