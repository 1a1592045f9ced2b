#include "kernels/cpu/common.h"

#include <algorithm>

#include <fmt/format.h>

namespace sb::cpu {

Partitions::Partitions(const std::vector<std::int64_t>& prefix, int max_threads) {
  const std::int64_t rows = static_cast<std::int64_t>(prefix.size()) - 1;
  const std::int64_t total = prefix.back();
  by_count_.resize(std::max(1, max_threads));
  for (int nt = 1; nt <= static_cast<int>(by_count_.size()); ++nt) {
    std::vector<std::int64_t>& b = by_count_[nt - 1];
    b.assign(nt + 1, rows);
    b[0] = 0;
    // Thread t starts at the first row whose prefix reaches t / nt of the work: the split is by
    // non-zeros, so a few long rows cannot leave a thread idle while another runs them all.
    std::int64_t r = 0;
    for (int t = 1; t < nt; ++t) {
      const std::int64_t target = (total * t + nt / 2) / nt;
      while (r < rows && prefix[r] < target) ++r;
      b[t] = r;
    }
  }
}

int partition_threads() { return std::max(available_cpus(), num_threads()); }

namespace {
bool check_x_rows(const SpmmDesc& desc, bool supported, std::string* why) {
  if (desc.x_rows.empty()) return true;
  if (!supported) {
    if (why) *why = "reads X as k x n only, not as offset rows (SpmmDesc::x_rows)";
    return false;
  }
  if (static_cast<std::int64_t>(desc.x_rows.size()) != desc.k) {
    if (why) *why = fmt::format("x_rows has {} offsets, k is {}", desc.x_rows.size(), desc.k);
    return false;
  }
  for (const std::int64_t o : desc.x_rows)
    if (o < 0) {
      if (why) *why = fmt::format("x_rows has a negative offset ({})", o);
      return false;
    }
  return true;
}
}  // namespace

bool check_weight(const SpmmDesc& desc, const SpmmWeight& w, std::string* why, bool reads_x_rows) {
  auto say = [&](std::string s) {
    if (why) *why = std::move(s);
    return false;
  };
  if (desc.m < 1 || desc.k < 1 || desc.n < 1)
    return say(fmt::format("shape {}x{}x{} has an empty dimension", desc.m, desc.k, desc.n));
  if (!w.dense.defined() || w.dense.dim() != 2 || w.dense.dtype() != DType::f32 ||
      !w.dense.is_contiguous())
    return say("the weight is not a contiguous 2-D f32 tensor");
  if (w.dense.size(0) != desc.m || w.dense.size(1) != desc.k)
    return say(fmt::format("the weight is {}, the desc says m x k = {}x{}",
                           shape_to_string(w.dense.shape()), desc.m, desc.k));
  if (w.mask.defined() && (w.mask.dtype() != DType::u8 || w.mask.shape() != w.dense.shape() ||
                           !w.mask.is_contiguous()))
    return say("the mask is not a contiguous u8 tensor of the weight's shape");
  return check_x_rows(desc, reads_x_rows, why);
}

AlignedVector<std::int64_t> x_row_table(const SpmmDesc& desc, std::int64_t entries) {
  AlignedVector<std::int64_t> t(static_cast<std::size_t>(entries), 0);
  for (std::int64_t j = 0; j < std::min(entries, desc.k); ++j) t[j] = desc.x_rows.empty() ? j * desc.n : desc.x_rows[j];
  return t;
}

bool check_isa(Isa need, std::string* why) {
  const Isa have = max_isa();
  if (have >= need) return true;
  if (why)
    *why = fmt::format("needs {}; this CPU (capped by SB_ISA) offers {}", isa_name(need),
                       isa_name(have));
  return false;
}

double kept_fraction(const SpmmWeight& w) {
  const std::int64_t total = w.dense.numel();
  if (total == 0) return 0;
  const float* d = w.dense.data<float>();
  const std::uint8_t* m = w.mask.defined() ? w.mask.data<std::uint8_t>() : nullptr;
  std::int64_t kept = 0;
  for (std::int64_t i = 0; i < total; ++i) kept += is_kept(d, m, i);
  return static_cast<double>(kept) / static_cast<double>(total);
}

bool panel_worthwhile(const SpmmDesc& desc, const SpmmWeight& w, std::string* why) {
  if (desc.n < 16) {
    if (why)
      *why = fmt::format("column-panel kernel: n = {} is under one vector of 16, the row kernel is better",
                         desc.n);
    return false;
  }
  // Measured, 1 thread (docs/PERFORMANCE-kernels-draft.md): at 95 % the row kernel matches the
  // panel kernel on 768x768x128 and beats it on 3072x768x128 (Y outgrows L2 and its per-panel
  // load + store go to L3), while with k > 1024 the row kernel's X no longer fits L2 and the
  // panel kernel wins (768x3072x128: 8.3x vs 6.5x).
  const double d = kept_fraction(w);
  if (d < kPanelMinDensity && desc.k <= kPanelMaxRowKernelK) {
    if (why)
      *why = fmt::format("column-panel kernel: density {:.3f} < {} with k = {} <= {}: the row kernel is "
                         "faster there",
                         d, kPanelMinDensity, desc.k, kPanelMaxRowKernelK);
    return false;
  }
  return true;
}

bool bsr_block_shape(const SpmmWeight& w, int* block_rows, int* block_cols, std::string* why) {
  if (w.pattern.kind != Pattern::Kind::block || w.pattern.block_rows < 1 || w.pattern.block_cols < 1) {
    if (why)
      *why = fmt::format("BSR runs block:RxC weights; this weight's pattern is {}",
                         w.pattern.to_string());
    return false;
  }
  *block_rows = w.pattern.block_rows;
  *block_cols = w.pattern.block_cols;
  return true;
}

bool balanced_shape(const SpmmWeight& w, int* bank, std::string* why) {
  const Pattern& p = w.pattern;
  if (p.kind == Pattern::Kind::balanced && p.bank >= 1) {
    *bank = p.bank;
    return true;
  }
  if (p.kind == Pattern::Kind::nm && p.n >= 1 && p.m >= p.n) {
    // N:M packs with k = N, so a group that keeps more than N cannot be stored.
    const std::int64_t rows = w.dense.size(0), cols = w.dense.size(1);
    const float* d = w.dense.data<float>();
    const std::uint8_t* m = w.mask.defined() ? w.mask.data<std::uint8_t>() : nullptr;
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t c0 = 0; c0 < cols; c0 += p.m) {
        int kept = 0;
        for (std::int64_t j = c0; j < std::min(cols, c0 + p.m); ++j) kept += is_kept(d, m, i * cols + j);
        if (kept > p.n) {
          if (why)
            *why = fmt::format("pattern {}: row {} keeps {} entries in the group at column {}",
                               p.to_string(), i, kept, c0);
          return false;
        }
      }
    *bank = p.m;
    return true;
  }
  if (why)
    *why = fmt::format("balanced runs balanced:bank=B and nm:N:M weights; this weight's pattern is {}",
                       p.to_string());
  return false;
}

Balanced pack_balanced_format(const SpmmWeight& w) {
  if (w.pattern.kind == Pattern::Kind::nm)
    return Balanced::from_dense_nm(w.dense, w.pattern.n, w.pattern.m, w.mask);
  return Balanced::from_dense_infer_k(w.dense, w.pattern.bank, w.mask);
}

}  // namespace sb::cpu
