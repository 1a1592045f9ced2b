// libxsmm 1.17 libxsmm_spmdm: C = A * B with A sparse (row-major), B and C dense row-major.
//
// The weight is cut into bm x bk slices (bk = 128; bm <= 512 chosen by libxsmm_spmdm_init for the
// thread count's load balance), each stored as CSR with 16-bit local indices; createSparseSlice
// builds them once at initialize. run() computes the bm x bn output blocks (bn = 96 with AVX-512),
// which are independent: we hand them out round-robin to OpenMP threads, each with its own scratch
// (tid), as the API intends. Handles are shared per shape (see shared_handle).
#include <libxsmm.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "kernels/peers/peers.h"
#include "sparsebench/core/aligned.h"
#include "sparsebench/core/threads.h"

namespace sb::detail {
namespace {

// libxsmm's slice row offsets are u16: a slice with 65536 stored entries (a fully dense 512 x 128
// slice, possible only when bm = 512) wraps them. Counts the worst slice for the largest bm.
constexpr double kMaxDensity = 0.95;

std::int64_t max_slice_nnz(const SpmmDesc& d, const SpmmWeight& w, std::int64_t* total) {
  constexpr std::int64_t kBm = 512, kBk = 128;
  const float* dense = w.dense.data<float>();
  const std::uint8_t* mask = w.mask.defined() ? w.mask.data<std::uint8_t>() : nullptr;
  const std::int64_t kb = (d.k + kBk - 1) / kBk;
  std::int64_t worst = 0;
  std::vector<std::int64_t> counts(static_cast<std::size_t>(kb));
  for (std::int64_t i0 = 0; i0 < d.m; i0 += kBm) {
    std::fill(counts.begin(), counts.end(), 0);
    for (std::int64_t i = i0; i < std::min(d.m, i0 + kBm); ++i)
      for (std::int64_t j = 0; j < d.k; ++j)
        // libxsmm keeps the non-zero values (not the mask): count what it will store.
        if (peer_kept(w, dense, mask, i * d.k + j) && dense[i * d.k + j] != 0.f) ++counts[j / kBk];
    worst = std::max(worst, *std::max_element(counts.begin(), counts.end()));
    for (std::int64_t c : counts) *total += c;
  }
  return worst;
}

// libxsmm 1.17 (Debian) never returns the memory of a handle: libxsmm_spmdm_destroy frees its
// slice and scratch buffers into pools that are not reused (measured: +6 bytes x m x k per
// init/destroy pair, kept even after libxsmm_release_scratch and libxsmm_finalize; 24 GB over a
// cold-cache DLMC sweep). So handles are made once per (m, n, k, threads) and kept for the
// process, and each op owns its slices, compacted to the stored entries, in memory we free.
const libxsmm_spmdm_handle& shared_handle(const SpmmDesc& d, int max_threads) {
  static std::mutex mu;
  static std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t, int>, libxsmm_spmdm_handle> handles;
  std::lock_guard<std::mutex> lock(mu);
  auto [it, inserted] = handles.try_emplace({d.m, d.n, d.k, max_threads});
  if (inserted) {
    libxsmm_CSR_sparseslice* unused = nullptr;  // the handle's own slices: we use ours
    libxsmm_spmdm_init(static_cast<int>(d.m), static_cast<int>(d.n), static_cast<int>(d.k), max_threads, &it->second,
                       &unused);
  }
  return it->second;
}

class LibxsmmOp final : public SpmmOp {
 public:
  LibxsmmOp(const SpmmDesc& d, const float* dense_masked, int max_threads)
      : d_(d), max_threads_(max_threads), h_(shared_handle(d, max_threads)) {
    const int blocks = libxsmm_spmdm_get_num_createSparseSlice_blocks(&h_);
    const std::size_t bm = static_cast<std::size_t>(h_.bm), cap = bm * static_cast<std::size_t>(h_.bk);
    // Full-capacity slices (what createSparseSlice writes), then compacted into ours.
    std::vector<std::uint16_t> rows_full(static_cast<std::size_t>(blocks) * (bm + 1));
    std::vector<std::uint16_t> cols_full(static_cast<std::size_t>(blocks) * cap);
    std::vector<float> vals_full(static_cast<std::size_t>(blocks) * cap);
    std::vector<libxsmm_CSR_sparseslice> full(static_cast<std::size_t>(blocks));
    for (int b = 0; b < blocks; ++b)
      full[b] = {rows_full.data() + b * (bm + 1), cols_full.data() + b * cap, vals_full.data() + b * cap};
#pragma omp parallel for num_threads(max_threads_) schedule(static)
    for (int b = 0; b < blocks; ++b)
      libxsmm_spmdm_createSparseSlice_fp32_thread(&h_, 'N', dense_masked, full.data(), b, omp_get_thread_num(),
                                                  max_threads_);
    // Slice b covers row block b % mb: its last row offset is its stored-entry count.
    std::vector<std::size_t> first(static_cast<std::size_t>(blocks) + 1, 0);
    for (int b = 0; b < blocks; ++b) {
      const int rows = std::min(h_.bm, h_.m - (b % h_.mb) * h_.bm);
      first[b + 1] = first[b] + full[b].rowidx[rows];
    }
    nnz_ = static_cast<std::int64_t>(first[blocks]);
    rowidx_.resize(rows_full.size());
    std::copy(rows_full.begin(), rows_full.end(), rowidx_.begin());
    colidx_.resize(std::max<std::size_t>(first[blocks], 1));
    values_.resize(std::max<std::size_t>(first[blocks], 1));
    slices_.resize(static_cast<std::size_t>(blocks));
    for (int b = 0; b < blocks; ++b) {
      const std::size_t n = first[b + 1] - first[b];
      std::copy_n(full[b].colidx, n, colidx_.data() + first[b]);
      std::copy_n(full[b].values, n, values_.data() + first[b]);
      slices_[b] = {rowidx_.data() + b * (bm + 1), colidx_.data() + first[b], values_.data() + first[b]};
    }
  }

  void run(const float* x, float* y, const float* bias) override {
    const int nt = std::max(1, std::min(sb::num_threads(), max_threads_));
    const int blocks = libxsmm_spmdm_get_num_compute_blocks(&h_);
    const float alpha = 1.f, beta = 0.f;  // beta = 0: every element of C is written, none read
    libxsmm_CSR_sparseslice* slices = slices_.data();
#pragma omp parallel num_threads(nt)
    {
      const int tid = omp_get_thread_num();
      for (int b = tid; b < blocks; b += nt)
        libxsmm_spmdm_compute_fp32_thread(&h_, 'N', 'N', &alpha, slices, x, 'N', &beta, y, b, tid, nt);
    }
    peer_epilogue(y, d_.has_bias ? bias : nullptr, d_.relu, d_.m, d_.n);
  }
  // What a run reads: values and u16 column indices of the stored entries, (bm + 1) u16 row
  // offsets per slice.
  Footprint footprint() const override {
    Footprint f;
    f.values = static_cast<std::size_t>(nnz_) * sizeof(float);
    f.indices = static_cast<std::size_t>(nnz_) * sizeof(std::uint16_t);
    f.pointers = static_cast<std::size_t>(h_.mb) * h_.kb * (h_.bm + 1) * sizeof(std::uint16_t);
    return f;
  }

 private:
  SpmmDesc d_;
  int max_threads_;
  const libxsmm_spmdm_handle& h_;  // shared, read-only in compute (its per-thread scratch is indexed by tid)
  AlignedVector<std::uint16_t> rowidx_, colidx_;
  AlignedVector<float> values_;
  std::vector<libxsmm_CSR_sparseslice> slices_;
  std::int64_t nnz_ = 0;
};

class LibxsmmPeer final : public SpmmImpl {
 public:
  std::string name() const override { return "libxsmm_spmdm"; }
  std::string library() const override { return "libxsmm"; }
  Format format() const override { return Format::csr; }
  Role role() const override { return Role::peer; }
  bool can_implement(const SpmmDesc& d, const SpmmWeight& w, std::string* why) const override {
    if (!check_peer_weight(d, w, why)) return false;
    constexpr std::int64_t kMax = std::numeric_limits<int>::max();
    if (d.m > kMax || d.k > kMax || d.n > kMax || d.m * d.n > kMax || d.k * d.n > kMax) {
      if (why) *why = "libxsmm_spmdm takes int dimensions and offsets";
      return false;
    }
    std::int64_t nnz = 0;
    if (max_slice_nnz(d, w, &nnz) >= 65536) {
      if (why) *why = "a dense 512x128 weight slice overflows libxsmm_spmdm's 16-bit slice offsets";
      return false;
    }
    // Measured (tests/peers): libxsmm 1.17's spmdm returns wrong results on near-dense weights
    // (density >= 0.99 with m >= 32, k >= 128 fails; <= 0.98 passes on every shape we tried).
    if (static_cast<double>(nnz) > kMaxDensity * static_cast<double>(d.m * d.k)) {
      if (why) *why = fmt::format("libxsmm_spmdm is wrong on near-dense weights: density {:.3f} > {}",
                                  static_cast<double>(nnz) / static_cast<double>(d.m * d.k), kMaxDensity);
      return false;
    }
    return true;
  }
  std::unique_ptr<SpmmOp> initialize(const SpmmDesc& d, const SpmmWeight& w) const override {
    // createSparseSlice reads a dense A and keeps its non-zeros: hand it the masked weight.
    const float* dense = w.dense.data<float>();
    const std::uint8_t* mask = w.mask.defined() ? w.mask.data<std::uint8_t>() : nullptr;
    std::vector<float> a(static_cast<std::size_t>(d.m * d.k));
    for (std::int64_t i = 0; i < d.m * d.k; ++i) a[i] = peer_kept(w, dense, mask, i) ? dense[i] : 0.f;
    return std::make_unique<LibxsmmOp>(d, a.data(), sb::num_threads());
  }
};

}  // namespace

std::unique_ptr<SpmmImpl> make_libxsmm_peer() { return std::make_unique<LibxsmmPeer>(); }

}  // namespace sb::detail
