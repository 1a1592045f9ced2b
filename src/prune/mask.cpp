#include "sparsebench/prune/mask.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string_view>

#include "sparsebench/core/error.h"
#include "sparsebench/core/threads.h"
#include "prune/internal.h"

namespace sb {

namespace {

using i64 = std::int64_t;

// The importance of entry i: the given score, or |w| when none was given (no copy of the weight).
struct ScoreView {
  const float* p = nullptr;
  bool magnitude = false;
  float operator()(i64 i) const { return magnitude ? std::fabs(p[i]) : p[i]; }
};

// A weight checked and seen as the 2-D matrix [rows, cols] of im2col + GEMM.
struct Layer {
  Tensor weight;        // contiguous
  Tensor score;         // contiguous, or undefined for |w|
  ScoreView view;
  i64 rows = 0, cols = 0;
  i64 numel() const { return rows * cols; }
};

void check_sparsity(double s) {
  SB_CHECK(s >= 0 && s < 1, "sparsity {} is out of range: expected a value in [0, 1)", s);
}

Layer prepare(const Tensor& weight, const Tensor& score, std::string_view what) {
  SB_CHECK(weight.defined(), "{} is undefined: expected a 2-D [out, in] or 4-D [out, in, kh, kw] f32 tensor", what);
  SB_CHECK(weight.dim() == 2 || weight.dim() == 4,
           "{} of shape {} is {}-D: expected a 2-D [out, in] or 4-D [out, in, kh, kw] tensor", what,
           shape_to_string(weight.shape()), weight.dim());
  SB_CHECK(weight.dtype() == DType::f32, "{} has dtype {}: expected f32", what, dtype_name(weight.dtype()));
  SB_CHECK(weight.numel() > 0, "{} of shape {} is empty: expected every dimension >= 1", what,
           shape_to_string(weight.shape()));
  Layer l;
  l.weight = weight.contiguous();
  l.rows = weight.size(0);
  l.cols = weight.numel() / l.rows;
  if (score.defined()) {
    SB_CHECK(score.shape() == weight.shape(), "score of {} has shape {}: expected the weight's shape {}", what,
             shape_to_string(score.shape()), shape_to_string(weight.shape()));
    SB_CHECK(score.dtype() == DType::f32, "score of {} has dtype {}: expected f32", what, dtype_name(score.dtype()));
    l.score = score.contiguous();
    l.view = {l.score.data<float>(), false};
  } else {
    l.view = {l.weight.data<float>(), true};
  }
  // NaN has no rank: any order we gave it would be arbitrary, so refuse instead of guessing.
  const float* p = l.view.p;
  for (i64 i = 0, n = l.numel(); i < n; ++i)
    SB_CHECK(!std::isnan(p[i]), "{} of {} has a NaN at flat index {}: expected numbers that can be ranked",
             score.defined() ? "score" : "magnitude score |w|", what, i);
  return l;
}

i64 round_count(double x) { return static_cast<i64>(std::llround(x)); }

i64 count_pruned(const Tensor& mask) {
  const std::uint8_t* m = mask.data<std::uint8_t>();
  i64 z = 0;
  for (i64 i = 0, n = mask.numel(); i < n; ++i) z += m[i] == 0;
  return z;
}

// Prunes exactly `count` entries over `layers`: the least important first; equal scores prune the
// higher (layer, flat index) first, so lower indices are kept. Each layer's most important entry is
// exempt (a request below 1 never empties a layer). Needs count <= total - layers.size().
// One nth_element over a copy of the candidate scores, then exact tie handling at the threshold:
// O(n) on average, which is what 25M-parameter models need.
void prune_lowest(const std::vector<Layer>& layers, i64 count, const std::vector<std::uint8_t*>& masks) {
  const std::size_t nl = layers.size();
  std::vector<i64> top(nl, 0);
  i64 total = 0;
  for (std::size_t l = 0; l < nl; ++l) {
    const ScoreView s = layers[l].view;
    const i64 n = layers[l].numel();
    i64 best = 0;
    float best_v = s(0);
    for (i64 i = 1; i < n; ++i) {
      const float v = s(i);
      if (v > best_v) best_v = v, best = i;
    }
    top[l] = best;
    std::memset(masks[l], 1, static_cast<std::size_t>(n));
    total += n;
  }
  if (count <= 0) return;
  std::vector<float> cand;
  cand.reserve(static_cast<std::size_t>(total) - nl);
  for (std::size_t l = 0; l < nl; ++l) {
    const ScoreView s = layers[l].view;
    for (i64 i = 0, n = layers[l].numel(); i < n; ++i)
      if (i != top[l]) cand.push_back(s(i));
  }
  std::nth_element(cand.begin(), cand.begin() + (count - 1), cand.end());
  const float t = cand[count - 1];
  cand = {};

  i64 below = 0;
  std::vector<i64> equal(nl, 0);
  for (std::size_t l = 0; l < nl; ++l) {
    const ScoreView s = layers[l].view;
    for (i64 i = 0, n = layers[l].numel(); i < n; ++i) {
      if (i == top[l]) continue;
      const float v = s(i);
      below += v < t;
      equal[l] += v == t;
    }
  }
  // The entries equal to the threshold that must go: taken from the last layer backwards.
  i64 quota = count - below;
  std::vector<i64> keep_equal(nl, 0);
  for (std::size_t l = nl; l-- > 0;) {
    const i64 q = std::min(quota, equal[l]);
    keep_equal[l] = equal[l] - q;
    quota -= q;
  }
  for (std::size_t l = 0; l < nl; ++l) {
    const ScoreView s = layers[l].view;
    std::uint8_t* m = masks[l];
    i64 kept_equal = 0;
    for (i64 i = 0, n = layers[l].numel(); i < n; ++i) {
      if (i == top[l]) continue;
      const float v = s(i);
      if (v < t) {
        m[i] = 0;
      } else if (v == t) {
        if (kept_equal < keep_equal[l]) ++kept_equal;
        else m[i] = 0;
      }
    }
  }
}

// Group indices from the least to the most important: lower key first, equal keys higher index
// first (so the lower index is kept).
std::vector<i64> order_least_important(const std::vector<double>& keys) {
  std::vector<i64> order(keys.size());
  std::iota(order.begin(), order.end(), i64{0});
  std::sort(order.begin(), order.end(),
            [&](i64 a, i64 b) { return keys[a] < keys[b] || (keys[a] == keys[b] && a > b); });
  return order;
}

double norm_term(float v, Norm norm) { return norm == Norm::l1 ? std::fabs(double(v)) : double(v) * double(v); }
const char* norm_label(Norm norm) { return norm == Norm::l1 ? "L1" : "L2"; }

// Prunes the `count` least important of `groups` groups (filters or channels); returns the note.
std::string prune_groups(const std::vector<double>& keys, double sparsity, const char* unit, Norm norm,
                         std::vector<std::uint8_t>& pruned) {
  const i64 groups = static_cast<i64>(keys.size());
  const i64 want = round_count(sparsity * double(groups));
  const i64 count = std::min(want, groups - 1);
  pruned.assign(keys.size(), 0);
  const auto order = order_least_important(keys);
  for (i64 i = 0; i < count; ++i) pruned[order[i]] = 1;
  std::string note;
  if (double(count) / double(groups) != sparsity)
    note = fmt::format("pruned {} of {} {}s ranked by {} norm (whole {}s only): the nearest feasible to {}", count,
                       groups, unit, norm_label(norm), unit, sparsity);
  if (count < want) note += fmt::format("; one {} is always kept", unit);
  return note;
}

std::string mask_filter(const Layer& l, Norm norm, double sparsity, std::uint8_t* m) {
  std::vector<double> keys(l.rows, 0.0);
  for (i64 r = 0; r < l.rows; ++r) {
    double acc = 0;
    for (i64 c = 0; c < l.cols; ++c) acc += norm_term(l.view(r * l.cols + c), norm);
    keys[r] = acc;
  }
  std::vector<std::uint8_t> pruned;
  std::string note = prune_groups(keys, sparsity, "filter", norm, pruned);
  for (i64 r = 0; r < l.rows; ++r) std::memset(m + r * l.cols, pruned[r] ? 0 : 1, static_cast<std::size_t>(l.cols));
  return note;
}

std::string mask_channel(const Layer& l, i64 channels, Norm norm, double sparsity, std::uint8_t* m) {
  const i64 width = l.cols / channels;   // kh * kw columns per input channel (1 for a linear layer)
  std::vector<double> keys(channels, 0.0);
  for (i64 r = 0; r < l.rows; ++r)
    for (i64 c = 0; c < l.cols; ++c) keys[c / width] += norm_term(l.view(r * l.cols + c), norm);
  std::vector<std::uint8_t> pruned;
  std::string note = prune_groups(keys, sparsity, "channel", norm, pruned);
  for (i64 r = 0; r < l.rows; ++r)
    for (i64 c = 0; c < l.cols; ++c) m[r * l.cols + c] = pruned[c / width] ? 0 : 1;
  return note;
}

std::string mask_block(const Layer& l, int br, int bc, double sparsity, std::uint8_t* m) {
  const i64 nbr = (l.rows + br - 1) / br, nbc = (l.cols + bc - 1) / bc, nb = nbr * nbc;
  std::vector<double> keys(nb, 0.0);
  std::vector<i64> sizes(nb, 0);
  for (i64 r = 0; r < l.rows; ++r)
    for (i64 c = 0; c < l.cols; ++c) {
      const i64 b = (r / br) * nbc + c / bc;
      keys[b] += std::fabs(double(l.view(r * l.cols + c)));
      sizes[b] += 1;
    }
  // Mean |score| per element, so a partial edge block is not pruned first merely for being small.
  for (i64 b = 0; b < nb; ++b) keys[b] /= double(sizes[b]);
  const auto order = order_least_important(keys);
  // The prefix of the ranking whose element count lies nearest the request (a tie prunes more,
  // as rounding half up does elsewhere); the last block is always kept.
  const double target = sparsity * double(l.numel());
  i64 count = 0, cum = 0;
  while (count < nb - 1 && double(cum + sizes[order[count]]) <= target) cum += sizes[order[count++]];
  if (count < nb - 1) {
    const double over = double(cum + sizes[order[count]]) - target, under = target - double(cum);
    if (over <= under) cum += sizes[order[count++]];
  }
  std::vector<std::uint8_t> pruned(nb, 0);
  for (i64 i = 0; i < count; ++i) pruned[order[i]] = 1;
  for (i64 r = 0; r < l.rows; ++r)
    for (i64 c = 0; c < l.cols; ++c) m[r * l.cols + c] = pruned[(r / br) * nbc + c / bc] ? 0 : 1;
  if (double(cum) / double(l.numel()) == sparsity) return {};
  std::string note = fmt::format(
      "pruned {} of {} blocks of {}x{} ({} of {} weights): whole blocks only, the nearest feasible to {}",
      count, nb, br, bc, cum, l.numel(), sparsity);
  if (l.rows % br != 0 || l.cols % bc != 0)
    note += fmt::format("; edge blocks are partial ({} x {} is not a multiple of {}x{})", l.rows, l.cols, br, bc);
  return note;
}

// In every row, groups of `width` consecutive columns; keeps the `k_full` most important entries of a
// full group and `k_last` of the narrower last one (ties: lower column kept).
void keep_top_per_group(const Layer& l, i64 width, i64 k_full, i64 k_last, std::uint8_t* m) {
  std::memset(m, 0, static_cast<std::size_t>(l.numel()));
#pragma omp parallel num_threads(num_threads())
  {
    std::vector<i64> idx;
#pragma omp for schedule(static)
    for (i64 r = 0; r < l.rows; ++r) {
      const i64 base = r * l.cols;
      for (i64 g0 = 0; g0 < l.cols; g0 += width) {
        const i64 w = std::min(width, l.cols - g0);
        const i64 k = w == width ? k_full : k_last;
        if (k >= w) {
          std::memset(m + base + g0, 1, static_cast<std::size_t>(w));
          continue;
        }
        idx.resize(static_cast<std::size_t>(w));
        std::iota(idx.begin(), idx.end(), base + g0);
        std::nth_element(idx.begin(), idx.begin() + k, idx.end(), [&](i64 a, i64 b) {
          const float va = l.view(a), vb = l.view(b);
          return va > vb || (va == vb && a < b);
        });
        for (i64 i = 0; i < k; ++i) m[idx[i]] = 1;
      }
    }
  }
}

std::string mask_balanced(const Layer& l, int bank, double sparsity, std::uint8_t* m) {
  SB_CHECK(bank <= l.cols,
           "bank {} does not fit the weight's rows of {} columns (2-D view [{}, {}]): expected bank <= {}", bank,
           l.cols, l.rows, l.cols, l.cols);
  const i64 want = round_count(double(bank) * (1.0 - sparsity));
  const i64 k = std::clamp<i64>(want, 1, bank);
  const i64 last = l.cols % bank;
  // The narrower last bank keeps its own rounded share, so its sparsity stays near the request.
  const i64 k_last = last ? std::clamp<i64>(round_count(double(last) * (1.0 - sparsity)), 1, last) : 0;
  keep_top_per_group(l, bank, k, k_last, m);
  std::string note = fmt::format("keeps {} of every {} weights per bank (whole weights per bank only)", k, bank);
  if (last) note += fmt::format("; the last bank of each row is {} wide and keeps {}", last, k_last);
  if (want < 1) note += "; a bank keeps at least one weight";
  return note;
}

std::string mask_nm(const Layer& l, int n, int m_, double sparsity, std::uint8_t* m) {
  const i64 last = l.cols % m_;
  keep_top_per_group(l, m_, n, std::min<i64>(n, last), m);
  std::string note;
  const double fixed = 1.0 - double(n) / double(m_);
  if (fixed != sparsity)
    note = fmt::format("nm:{}:{} fixes the sparsity at {}: the requested {} is not applied", n, m_, fixed, sparsity);
  if (last) {
    if (!note.empty()) note += "; ";
    note += fmt::format("the last group of each row is {} wide and keeps {}", last, std::min<i64>(n, last));
  }
  return note;
}

std::string mask_unstructured(const Layer& l, double sparsity, std::uint8_t* m) {
  const i64 n = l.numel();
  const i64 want = round_count(sparsity * double(n));
  const i64 count = std::min(want, n - 1);
  prune_lowest({l}, count, {m});
  std::string note = fmt::format("pruned {} of {} weights: the nearest whole count to {} x {}", count, n, sparsity, n);
  if (count < want) note += "; one weight is always kept";
  return note;
}

void check_pattern(const Pattern& p) {
  switch (p.kind) {
    case Pattern::Kind::block:
      SB_CHECK(p.block_rows >= 1 && p.block_cols >= 1, "pattern block:{}x{}: expected block rows and cols >= 1",
               p.block_rows, p.block_cols);
      break;
    case Pattern::Kind::balanced:
      SB_CHECK(p.bank >= 1, "pattern balanced:bank={}: expected a bank >= 1", p.bank);
      break;
    case Pattern::Kind::nm:
      SB_CHECK(p.n >= 1 && p.m >= 1, "pattern nm:{}:{}: expected N >= 1 and M >= 1", p.n, p.m);
      SB_CHECK(p.n <= p.m, "pattern nm:{}:{}: N = {} is greater than M = {}: expected N <= M (N:M keeps N of every M)",
               p.n, p.m, p.n, p.m);
      break;
    default: break;
  }
}

}  // namespace

MaskResult make_mask(const Tensor& weight, const Pattern& pattern, double sparsity, const Tensor& score) {
  check_sparsity(sparsity);
  check_pattern(pattern);
  const Layer l = prepare(weight, score, "weight");
  MaskResult r;
  r.requested = sparsity;
  r.mask = Tensor::empty(weight.shape(), DType::u8);
  std::uint8_t* m = r.mask.data<std::uint8_t>();
  std::string reason;
  switch (pattern.kind) {
    case Pattern::Kind::dense:
      std::memset(m, 1, static_cast<std::size_t>(l.numel()));
      reason = fmt::format("pattern dense prunes nothing: the requested {} is not applied", sparsity);
      break;
    case Pattern::Kind::unstructured: reason = mask_unstructured(l, sparsity, m); break;
    case Pattern::Kind::filter: reason = mask_filter(l, pattern.norm, sparsity, m); break;
    case Pattern::Kind::channel: reason = mask_channel(l, weight.size(1), pattern.norm, sparsity, m); break;
    case Pattern::Kind::block:
      SB_CHECK(pattern.block_rows <= l.rows && pattern.block_cols <= l.cols,
               "block {}x{} does not fit the weight's {} x {} matrix (2-D view of shape {}): expected block rows <= {} "
               "and block cols <= {}",
               pattern.block_rows, pattern.block_cols, l.rows, l.cols, shape_to_string(weight.shape()), l.rows, l.cols);
      reason = mask_block(l, pattern.block_rows, pattern.block_cols, sparsity, m);
      break;
    case Pattern::Kind::balanced: reason = mask_balanced(l, pattern.bank, sparsity, m); break;
    case Pattern::Kind::nm: reason = mask_nm(l, pattern.n, pattern.m, sparsity, m); break;
  }
  r.achieved = double(count_pruned(r.mask)) / double(l.numel());
  if (r.achieved != r.requested) r.note = std::move(reason);
  return r;
}

namespace prune_detail {

std::vector<MaskResult> global_masks(const std::vector<Tensor>& weights, double sparsity,
                                     const std::vector<Tensor>& scores, const std::vector<std::string>& names) {
  check_sparsity(sparsity);
  SB_CHECK(scores.empty() || scores.size() == weights.size(),
           "global masks: {} scores for {} weights: expected none (magnitude) or one per weight", scores.size(),
           weights.size());
  std::vector<Layer> layers;
  layers.reserve(weights.size());
  std::vector<MaskResult> out(weights.size());
  std::vector<std::uint8_t*> masks;
  i64 total = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    layers.push_back(prepare(weights[i], scores.empty() ? Tensor() : scores[i], names[i]));
    out[i].requested = sparsity;
    out[i].mask = Tensor::empty(weights[i].shape(), DType::u8);
    masks.push_back(out[i].mask.data<std::uint8_t>());
    total += layers.back().numel();
  }
  if (layers.empty()) return out;
  const i64 nl = static_cast<i64>(layers.size());
  const i64 want = round_count(sparsity * double(total));
  const i64 count = std::min(want, total - nl);
  prune_lowest(layers, count, masks);
  std::string reason = fmt::format(
      "one threshold across {} tensors prunes {} of {} weights ({}); this tensor's share is its own",
      nl, count, total, double(count) / double(total));
  if (count < want) reason += "; every tensor keeps at least its most important weight";
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].achieved = double(count_pruned(out[i].mask)) / double(layers[i].numel());
    if (out[i].achieved != sparsity) out[i].note = reason;
  }
  return out;
}

}  // namespace prune_detail

std::vector<MaskResult> make_global_masks(const std::vector<Tensor>& weights, double sparsity,
                                          const std::vector<Tensor>& scores) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < weights.size(); ++i) names.push_back(fmt::format("weights[{}]", i));
  return prune_detail::global_masks(weights, sparsity, scores, names);
}

void apply_mask(Tensor& weight, const Tensor& mask) {
  SB_CHECK(weight.defined() && mask.defined(), "apply_mask: weight and mask must both be defined");
  SB_CHECK(weight.dtype() == DType::f32, "apply_mask: weight has dtype {}: expected f32", dtype_name(weight.dtype()));
  SB_CHECK(mask.dtype() == DType::u8, "apply_mask: mask has dtype {}: expected u8", dtype_name(mask.dtype()));
  SB_CHECK(mask.shape() == weight.shape(), "apply_mask: mask of shape {} does not match the weight's shape {}",
           shape_to_string(mask.shape()), shape_to_string(weight.shape()));
  SB_CHECK(weight.is_contiguous(), "apply_mask: the weight of shape {} is not contiguous: expected a contiguous tensor",
           shape_to_string(weight.shape()));
  const Tensor mc = mask.contiguous();
  const std::uint8_t* m = mc.data<std::uint8_t>();
  float* w = weight.data<float>();
  for (i64 i = 0, n = weight.numel(); i < n; ++i)
    if (m[i] == 0) w[i] = 0.f;
}

double mask_sparsity(const Tensor& mask) {
  SB_CHECK(mask.defined(), "mask_sparsity of an undefined tensor: expected a u8 mask or an f32 tensor");
  SB_CHECK(mask.dtype() == DType::u8 || mask.dtype() == DType::f32,
           "mask_sparsity of a tensor of dtype {}: expected a u8 mask or an f32 tensor", dtype_name(mask.dtype()));
  const i64 n = mask.numel();
  if (n == 0) return 0.0;
  const Tensor c = mask.contiguous();
  i64 zeros = 0;
  if (c.dtype() == DType::u8) {
    zeros = count_pruned(c);
  } else {
    const float* p = c.data<float>();
    for (i64 i = 0; i < n; ++i) zeros += p[i] == 0.f;
  }
  return double(zeros) / double(n);
}

}  // namespace sb
