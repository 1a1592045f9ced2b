#pragma once
// Pieces shared by our CPU kernels (not public API): thread partitions, argument checks, the
// parallel driver.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparsebench/core/cpu_info.h"
#include "sparsebench/formats/balanced.h"
#include "sparsebench/kernels/spmm.h"

namespace sb::cpu {

// The arguments of one run(), as the per-ISA kernels see them.
struct RunArgs {
  const float* x = nullptr;   // k x n, ld = n
  float* y = nullptr;         // m x n, ld = n
  const float* bias = nullptr;
  std::int64_t n = 0;
  bool relu = false;
};

// Row ranges per thread count, computed once at initialize from a prefix sum of per-row work
// (non-zeros, or blocks, plus a small per-row overhead so that runs of empty rows still count).
// bounds(nt) has nt + 1 entries: thread t runs rows [b[t], b[t + 1]).
class Partitions {
 public:
  Partitions() = default;
  // prefix[rows + 1], non-decreasing; partitions are made for 1 .. max_threads threads.
  Partitions(const std::vector<std::int64_t>& prefix, int max_threads);
  const std::vector<std::int64_t>& bounds(int nt) const { return by_count_[nt - 1]; }
  int max_threads() const { return static_cast<int>(by_count_.size()); }

 private:
  std::vector<std::vector<std::int64_t>> by_count_;
};

// The most threads a partition table needs: every CPU we may run on, or more if the library's
// thread setting already asks for more.
int partition_threads();

// Runs body(thread_index, nt) on nt = min(sb::num_threads(), parts.max_threads()) OpenMP threads
// (directly, without a parallel region, when nt = 1).
template <class Body>
void parallel_for_parts(const Partitions& parts, Body&& body);

// Checks the weight against the desc (2-D f32, m x k, mask u8 of the same shape when defined).
// desc.x_rows must be empty unless `reads_x_rows` (then k offsets, each >= 0).
bool check_weight(const SpmmDesc& desc, const SpmmWeight& w, std::string* why, bool reads_x_rows = false);
// Where X's row j starts, in floats from x, for j < `entries` (0 past k): desc.x_rows, or j * n.
AlignedVector<std::int64_t> x_row_table(const SpmmDesc& desc, std::int64_t entries);
// False, with "needs <isa> ..." in *why, when max_isa() is below `need`.
bool check_isa(Isa need, std::string* why);

// The block shape a BSR implementation runs with: the pattern's (block:RxC); false with the reason
// for any other pattern (a BSR layout of an unstructured mask would be mostly padding).
bool bsr_block_shape(const SpmmWeight& w, int* block_rows, int* block_cols, std::string* why);
// The bank and per-bank count of a balanced:bank=B or nm:N:M weight; false with the reason for
// other patterns or for an N:M mask that keeps more than N in some group.
bool balanced_shape(const SpmmWeight& w, int* bank, std::string* why);
// Packs a balanced or N:M weight (k = the largest count kept in a bank, N for N:M).
Balanced pack_balanced_format(const SpmmWeight& w);

// Fraction of kept entries of the weight (mask, or non-zeros without one).
double kept_fraction(const SpmmWeight& w);
// Column-panel kernels decline weights sparser than this when X's 128-column panel fits in L2
// (k <= kPanelMaxRowKernelK), where the row kernel is as fast or faster (see spmm_csr.cpp).
inline constexpr double kPanelMinDensity = 0.075;
inline constexpr std::int64_t kPanelMaxRowKernelK = 1024;
// Column panels are 64 columns wide, 128 for weights sparser than this (see spmm_csr.cpp).
inline constexpr double kPanelWideBelowDensity = 0.15;
// Shared by the CSR and balanced column-panel kernels: n >= 16, and dense enough (or k large).
bool panel_worthwhile(const SpmmDesc& desc, const SpmmWeight& w, std::string* why);

// kName-style constants shared by the kernels.
inline constexpr int kPrefetchPad = 16;   // extra index entries after the last so lookahead reads stay in bounds

// One of our kernels as an SpmmImpl: the ISA it needs, a format-specific check (pattern, shape),
// the packer (runs once, at initialize) and the per-ISA row-range function.
template <class Packed>
class PartitionedOp final : public SpmmOp {
 public:
  using RowsFn = void (*)(const Packed&, const RunArgs&, std::int64_t, std::int64_t);
  PartitionedOp(Packed packed, RowsFn fn, const SpmmDesc& desc, Footprint fp)
      : packed_(std::move(packed)), fn_(fn), desc_(desc), fp_(fp) {}
  void run(const float* x, float* y, const float* bias) override;
  Footprint footprint() const override { return fp_; }

 private:
  Packed packed_;
  RowsFn fn_;
  SpmmDesc desc_;
  Footprint fp_;
};

template <class Packed>
class KernelImpl final : public SpmmImpl {
 public:
  using RowsFn = typename PartitionedOp<Packed>::RowsFn;
  // Packs the weight and returns its footprint as stored (before any kernel-only padding).
  using PackFn = Packed (*)(const SpmmDesc&, const SpmmWeight&, Footprint*);
  using CheckFn = bool (*)(const SpmmDesc&, const SpmmWeight&, std::string*);
  // x_rows: the packer and kernel honour SpmmDesc::x_rows.
  KernelImpl(std::string name, Format format, Isa isa, RowsFn rows, PackFn pack, CheckFn check, bool x_rows = false)
      : name_(std::move(name)), format_(format), isa_(isa), rows_(rows), pack_(pack), check_(check), x_rows_(x_rows) {}
  std::string name() const override { return name_; }
  std::string library() const override { return "sparsebench"; }
  Format format() const override { return format_; }
  Role role() const override { return Role::kernel; }
  bool reads_x_rows() const override { return x_rows_; }
  bool can_implement(const SpmmDesc& desc, const SpmmWeight& w, std::string* why) const override {
    return check_isa(isa_, why) && check_weight(desc, w, why, x_rows_) && (!check_ || check_(desc, w, why));
  }
  std::unique_ptr<SpmmOp> initialize(const SpmmDesc& desc, const SpmmWeight& w) const override {
    Footprint fp;
    Packed p = pack_(desc, w, &fp);
    return std::make_unique<PartitionedOp<Packed>>(std::move(p), rows_, desc, fp);
  }

 private:
  std::string name_;
  Format format_;
  Isa isa_;
  RowsFn rows_;
  PackFn pack_;
  CheckFn check_;
  bool x_rows_;
};

}  // namespace sb::cpu

#include <omp.h>
#include <algorithm>
#include "sparsebench/core/threads.h"

namespace sb::cpu {
template <class Body>
void parallel_for_parts(const Partitions& parts, Body&& body) {
  const int nt = std::max(1, std::min(num_threads(), parts.max_threads()));
  if (nt == 1) {
    body(0, 1);
    return;
  }
#pragma omp parallel num_threads(nt)
  { body(omp_get_thread_num(), nt); }
}

template <class Packed>
void PartitionedOp<Packed>::run(const float* x, float* y, const float* bias) {
  const RunArgs g{x, y, desc_.has_bias ? bias : nullptr, desc_.n, desc_.relu};
  parallel_for_parts(packed_.parts, [&](int t, int nt) {
    const std::vector<std::int64_t>& b = packed_.parts.bounds(nt);
    if (b[t] < b[t + 1]) fn_(packed_, g, b[t], b[t + 1]);
  });
}
}  // namespace sb::cpu
