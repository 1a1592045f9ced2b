// Packing and registration of our balanced and N:M GPU kernels (spmm_balanced.cu): the weight is
// packed once into the device layout of BalancedDevice and uploaded.
#include <algorithm>

#include "kernels/cuda/autotune.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/spmm_balanced.cuh"

namespace sb::gpu {
namespace {

// The bank a pattern prunes with: balanced:bank=B -> B, nm:N:M -> M; 0 for other patterns.
int pattern_bank(const Pattern& p) {
  if (p.kind == Pattern::Kind::balanced) return p.bank;
  if (p.kind == Pattern::Kind::nm) return p.m;
  return 0;
}

class BalancedOp final : public GpuSpmmOp {
 public:
  BalancedOp(const GpuSpmmDesc& d, const SpmmWeight& w, BalancedVariant v) : variant_(v), bf16_(d.dtype == GpuDType::bf16) {
    const HostWeight h = host_weight(w, d.dtype);
    const int bank = static_cast<int>(std::min<std::int64_t>(pattern_bank(w.pattern), d.k));
    // kb: the largest number of kept entries in a bank (the pattern's k; at least 1).
    const int kb = max_kept_per_bank(d.m, d.k, bank, h.kept.data());
    if (v == BalancedVariant::gemv) {
      const GemvLayout layout = make_gemv_layout(d.k, bank, kb);
      upload(pack_gemv(layout, d.m, h.values.data(), h.kept.data()), d.dtype);
      gemv_.m = d.m;
      gemv_.layout = layout;
      point_at_buffers();
      return;
    }
    if (v == BalancedVariant::splitk) {
      const SplitkLayout layout = make_splitk_layout(d.k, bank, kb, d.n);
      upload(pack_splitk(layout, d.m, h.values.data(), h.kept.data()), d.dtype);
      workspace_ = DeviceBuffer(static_cast<std::size_t>(d.m * d.n) * sizeof(float));
      workspace_.fill_bytes(0);
      splitk_.m = d.m;
      splitk_.n = d.n;
      splitk_.layout = layout;
      point_at_buffers();
      return;
    }
    // The tensor-core kernel's tiles hold whole 16-byte chunks of at most 64 entries a row: kb
    // padded up where it must be (odd kb above 8; balanced_tc_layout.h).
    kept_per_bank_ = kb;
    dev_ = balanced_device_layout(d.m, d.k, d.n, bank, v == BalancedVariant::tc ? tc_padded_kb(kb) : kb);
    upload(pack_balanced_rows(dev_, h.values.data(), h.kept.data()), d.dtype);
    if (v == BalancedVariant::tc) {
      // The plan: the model's first guess, then the fastest of the candidates timed here.
      point_at_buffers();
      tuning_ = tune_tc(tc_plan(d.m, d.n, d.k, bank, dev_.kb), d.m, d.n, d.k, 2,
                        [&](const TcLayout& l, const void* x, void* y, float* ws) {
                          BalancedDevice t = dev_;
                          t.tc = l;
                          t.workspace = ws;
                          return launch_spmm_balanced(t, x, y, bf16_, BalancedVariant::tc, nullptr);
                        });
      dev_.tc = tuning_.best;
      if (const std::int64_t floats = tc_workspace_floats(dev_.tc, d.m, d.n); floats > 0)
        workspace_ = DeviceBuffer(static_cast<std::size_t>(floats) * sizeof(float));
    }
    if (v == BalancedVariant::staged) {
      // The block size: the rule's first guess, then the fastest of the candidates timed here.
      point_at_buffers();
      staged_tuning_ = tune_staged(dev_, dev_.row_stride / 8, 2, [&](const BalancedDevice& t, const void* x, void* y) {
        return launch_spmm_balanced(t, x, y, bf16_, BalancedVariant::staged, nullptr);
      });
      dev_.threads = staged_tuning_.best;
    }
    point_at_buffers();
  }
  void run(const void* x, void* y, void* stream) override {
    if (variant_ == BalancedVariant::gemv)
      SB_CUDA_CHECK(launch_spmm_balanced_gemv(gemv_, x, y, bf16_, as_stream(stream)));
    else if (variant_ == BalancedVariant::splitk)
      SB_CUDA_CHECK(launch_spmm_balanced_splitk(splitk_, x, y, bf16_, as_stream(stream)));
    else
      SB_CUDA_CHECK(launch_spmm_balanced(dev_, x, y, bf16_, variant_, as_stream(stream)));
  }
  std::size_t weight_bytes() const override { return values_.bytes() + offsets_.bytes(); }
  std::size_t workspace_bytes() const override { return workspace_.bytes(); }
  std::string note() const override {
    if (variant_ == BalancedVariant::gemv)
      return fmt::format("bank {}, {} per bank, {} groups of 128 banks + {} tail banks, {} KB shared memory",
                         gemv_.layout.bank, gemv_.layout.kb, gemv_.layout.groups, gemv_.layout.tail,
                         gemv_smem_bytes(gemv_.layout) / 1024);
    if (variant_ == BalancedVariant::splitk)
      return fmt::format("bank {}, {} per bank, {} k-slices of {} chunks of 32 banks, {} columns per tile, {} KB shared memory",
                         splitk_.layout.bank, splitk_.layout.kb, splitk_.layout.ktiles, splitk_.layout.ck,
                         splitk_.layout.nc, splitk_smem_bytes(splitk_.layout) / 1024);
    if (variant_ == BalancedVariant::tc) {
      const TcLayout& l = dev_.tc;
      return fmt::format("bank {}, {} per bank{}, tensor cores: tiles of {} banks ({} columns), {} warp groups per 64 rows, {}, {} KB shared memory; {}",
                         dev_.bank, kept_per_bank_,
                         dev_.kb > kept_per_bank_ ? fmt::format(" (padded to {} slots: whole 16-byte chunks per tile)", dev_.kb) : "",
                         l.g, l.kt, l.ksplit, tc_slices_note(l), (tc_smem_bytes(l) + 1023) / 1024, tc_tuning_note(tuning_));
    }
    if (variant_ == BalancedVariant::staged)
      return fmt::format("bank {}, {} per bank, row stride {}, X in {} KB of shared memory; {}", dev_.bank, dev_.kb,
                         dev_.row_stride, (staged_smem_bytes(dev_.k) + 1023) / 1024, staged_tuning_note(staged_tuning_));
    return fmt::format("bank {}, {} per bank, row stride {}", dev_.bank, dev_.kb, dev_.row_stride);
  }
  std::unique_ptr<GpuSpmmOp> clone() const override { return std::unique_ptr<GpuSpmmOp>(new BalancedOp(*this)); }

 private:
  // The clone: the same arrays, copied on the device, and the device view pointed at them.
  BalancedOp(const BalancedOp& o)
      : variant_(o.variant_), bf16_(o.bf16_), kept_per_bank_(o.kept_per_bank_), values_(o.values_.copy()), offsets_(o.offsets_.copy()),
        workspace_(o.workspace_.bytes()), dev_(o.dev_), tuning_(o.tuning_), staged_tuning_(o.staged_tuning_), gemv_(o.gemv_), splitk_(o.splitk_) {
    workspace_.fill_bytes(0);  // its own, zeroed: a clone may run right after the original
    point_at_buffers();
  }
  // Values in the storage type and offsets to the device (at least 16 bytes each: a weight with
  // no entry still has buffers to point at).
  void upload(const BalancedPacked& p, GpuDType t) {
    const std::vector<std::uint8_t> vb = to_storage(p.values.data(), p.values.size(), t);
    values_ = DeviceBuffer(std::max<std::size_t>(vb.size(), 16));
    values_.upload(vb.data(), vb.size());
    offsets_ = DeviceBuffer(std::max<std::size_t>(p.offsets.size(), 16));
    offsets_.upload(p.offsets.data(), p.offsets.size());
  }
  void point_at_buffers() {
    dev_.values = gemv_.values = splitk_.values = values_.get();
    dev_.offsets = gemv_.offsets = splitk_.offsets = static_cast<const std::uint8_t*>(offsets_.get());
    splitk_.workspace = dev_.workspace = static_cast<float*>(workspace_.get());
  }

  BalancedVariant variant_;
  bool bf16_;
  int kept_per_bank_ = 0;                       // simple / fast / staged / tc: the most a bank keeps
  DeviceBuffer values_, offsets_, workspace_;  // workspace: splitk, and tc where k is sliced
  BalancedDevice dev_;                          // simple / fast / staged / tc
  TcTuning tuning_;                             // tc: how its plan was chosen
  StagedTuning staged_tuning_;                  // staged: how its block size was chosen
  BalancedGemvDevice gemv_;                     // gemv
  BalancedSplitkDevice splitk_;                 // splitk
};

class BalancedImpl final : public GpuSpmmImpl {
 public:
  BalancedImpl(std::string name, bool nm, BalancedVariant v) : name_(std::move(name)), nm_(nm), variant_(v) {}
  std::string name() const override { return name_; }
  std::string library() const override { return "sparsebench"; }
  std::string format() const override { return nm_ ? "nm" : "balanced"; }
  Role role() const override { return Role::kernel; }
  bool can_implement(const GpuSpmmDesc& d, const SpmmWeight& w, std::string* why) const override {
    if (!weight_matches(d, w, why)) return false;
    if (d.dtype != GpuDType::f16 && d.dtype != GpuDType::bf16) return reject(why, "f16 and bf16 only");
    const Pattern::Kind want = nm_ ? Pattern::Kind::nm : Pattern::Kind::balanced;
    if (w.pattern.kind != want)
      return reject(why, fmt::format("the weight is not {}-pruned (pattern {})", nm_ ? "N:M" : "bank-balanced", w.pattern.to_string()));
    if (std::min<std::int64_t>(pattern_bank(w.pattern), d.k) > 256) return reject(why, "banks wider than 256 need u16 offsets");
    if (d.m * d.n >= (1LL << 31) * 256) return reject(why, "too large for the launch grid");
    if (d.k >= (1LL << 23)) return reject(why, "k of 2^23 or more (the kernel's bank division needs row length x bank < 2^32)");
    if (variant_ == BalancedVariant::splitk) {
      if (d.n % 8 != 0) return reject(why, "n a multiple of 8 only (16-byte units of X; other n run the fast kernel)");
      const int bank = static_cast<int>(std::min<std::int64_t>(pattern_bank(w.pattern), d.k));
      if (bank > 64) return reject(why, "banks of at most 64 (the X slice of 32 banks in shared memory)");
      const std::size_t smem = splitk_smem_bytes(make_splitk_layout(d.k, bank, 1, d.n));
      if (smem > smem_optin_limit())
        return reject(why, fmt::format("the X slice needs {} KB of shared memory, over the device's {} KB per block",
                                       smem / 1024, smem_optin_limit() / 1024));
    }
    if (variant_ == BalancedVariant::staged) {
      if (d.n != 1) return reject(why, "n = 1 only (X staged in shared memory; other n run the fast kernel)");
      if (staged_smem_bytes(d.k) > smem_optin_limit())
        return reject(why, fmt::format("X staged in shared memory needs {} KB, over the device's {} KB per block",
                                       staged_smem_bytes(d.k) / 1024, smem_optin_limit() / 1024));
    }
    if (variant_ == BalancedVariant::tc) {
      if (d.n < 8) return reject(why, "n >= 8 only (16 columns per block on tensor cores; smaller n run the fast kernel)");
      if (!tc_rows_fit(d.m))
        return reject(why, fmt::format("at most {} rows (blocks of {} rows in the grid's y)", kTcMaxRowBlocks * kTcRows, kTcRows));
      const int bank = static_cast<int>(std::min<std::int64_t>(pattern_bank(w.pattern), d.k));
      if (bank > kTcMaxBank) return reject(why, fmt::format("banks of at most {} (dense tiles of whole banks, at most 256 columns, in shared memory)", kTcMaxBank));
    }
    if (variant_ == BalancedVariant::gemv) {
      if (d.n != 1) return reject(why, "n = 1 only (the shared-memory GEMV; other n run the fast kernel)");
      const int bank = static_cast<int>(std::min<std::int64_t>(pattern_bank(w.pattern), d.k));
      const std::size_t smem = gemv_smem_bytes(make_gemv_layout(d.k, bank, 1));
      if (smem > smem_optin_limit())
        return reject(why, fmt::format("X staged in shared memory needs {} KB, over the device's {} KB per block", smem / 1024,
                                       smem_optin_limit() / 1024));
    }
    return true;
  }
  std::unique_ptr<GpuSpmmOp> initialize(const GpuSpmmDesc& d, const SpmmWeight& w) const override {
    return std::make_unique<BalancedOp>(d, w, variant_);
  }

 private:
  std::string name_;
  bool nm_;
  BalancedVariant variant_;
};

}  // namespace

void add_balanced_impls(ImplList& out) {
  out.push_back(std::make_unique<BalancedImpl>("spmm_balanced_fast__cuda", false, BalancedVariant::fast));
  out.push_back(std::make_unique<BalancedImpl>("spmm_nm_fast__cuda", true, BalancedVariant::fast));
  out.push_back(std::make_unique<BalancedImpl>("spmm_balanced_staged__cuda", false, BalancedVariant::staged));
  out.push_back(std::make_unique<BalancedImpl>("spmm_nm_staged__cuda", true, BalancedVariant::staged));
  out.push_back(std::make_unique<BalancedImpl>("spmm_balanced_tc__cuda", false, BalancedVariant::tc));
  out.push_back(std::make_unique<BalancedImpl>("spmm_nm_tc__cuda", true, BalancedVariant::tc));
  out.push_back(std::make_unique<BalancedImpl>("spmm_balanced_gemv__cuda", false, BalancedVariant::gemv));
  out.push_back(std::make_unique<BalancedImpl>("spmm_nm_gemv__cuda", true, BalancedVariant::gemv));
  out.push_back(std::make_unique<BalancedImpl>("spmm_balanced_splitk__cuda", false, BalancedVariant::splitk));
  out.push_back(std::make_unique<BalancedImpl>("spmm_nm_splitk__cuda", true, BalancedVariant::splitk));
  out.push_back(std::make_unique<BalancedImpl>("spmm_balanced_simple__cuda", false, BalancedVariant::simple));
  out.push_back(std::make_unique<BalancedImpl>("spmm_nm_simple__cuda", true, BalancedVariant::simple));
}

}  // namespace sb::gpu
