// Packing and registration of our CSR GPU kernels (spmm_csr.cu): rows padded to 8 entries, u16
// column indices, the row order sorted by length (longest first) for load balance (csr_pack.h).
#include <algorithm>

#include "kernels/cuda/autotune.h"
#include "kernels/cuda/csr_pack.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/spmm_csr.cuh"

namespace sb::gpu {
namespace {

class CsrKernelOp final : public GpuSpmmOp {
 public:
  CsrKernelOp(const GpuSpmmDesc& d, const SpmmWeight& w, CsrVariant v) : variant_(v), bf16_(d.dtype == GpuDType::bf16) {
    const HostWeight h = host_weight(w, d.dtype);
    if (v == CsrVariant::splitk) {
      const CsrSplitkLayout layout = make_csr_splitk_layout(d.m, d.k, d.n);
      const CsrSplitkPacked p = pack_csr_splitk(layout, h.values.data(), h.kept.data());
      const std::size_t entry_bytes = upload_entries(p.values, p.cols, d.dtype);
      ptr_ = DeviceBuffer(p.ptr.size() * 4);
      ptr_.upload(p.ptr.data(), p.ptr.size() * 4);
      workspace_ = DeviceBuffer(static_cast<std::size_t>(d.m * d.n) * sizeof(float));
      workspace_.fill_bytes(0);
      split_.n = d.n;
      split_.layout = layout;
      bytes_ = entry_bytes + p.ptr.size() * 4;
      point_at_buffers();
      return;
    }
    if (v == CsrVariant::tc) {
      const CsrTcPacked p = pack_csr_tc(d.m, d.k, h.values.data(), h.kept.data());
      const std::size_t entry_bytes = upload_entries(p.values, p.places, d.dtype);
      ptr_ = DeviceBuffer(p.ptr.size() * 4);
      ptr_.upload(p.ptr.data(), p.ptr.size() * 4);
      tc_.m = d.m;
      tc_.k = d.k;
      tc_.n = d.n;
      tc_.kt = p.kt;
      tc_.max_chunks = p.max_chunks;
      point_at_buffers();
      // The plan: the model's first guess, then the fastest of the candidates timed here.
      tuning_ = tune_tc(csr_tc_plan(d.m, d.n, d.k, p.kt), d.m, d.n, d.k, 2,
                        [&](const TcLayout& l, const void* x, void* y, float* ws) {
                          CsrTcDevice t = tc_;
                          t.layout = l;
                          t.workspace = ws;
                          return launch_spmm_csr_tc(t, x, y, bf16_, nullptr);
                        });
      tc_.layout = tuning_.best;
      if (const std::int64_t floats = tc_workspace_floats(tc_.layout, d.m, d.n); floats > 0)
        workspace_ = DeviceBuffer(static_cast<std::size_t>(floats) * sizeof(float));
      bytes_ = entry_bytes + p.ptr.size() * 4;
      point_at_buffers();
      return;
    }
    const CsrPadded p = pack_csr_padded(d.m, d.k, h.values.data(), h.kept.data());
    const std::size_t entry_bytes = upload_entries(p.values, p.cols, d.dtype);
    ptr_ = DeviceBuffer(p.row_ptr.size() * 4);
    ptr_.upload(p.row_ptr.data(), p.row_ptr.size() * 4);
    order_ = DeviceBuffer(p.order.size() * 4);
    order_.upload(p.order.data(), p.order.size() * 4);
    point_at_buffers();
    dev_.m = d.m;
    dev_.k = d.k;
    dev_.n = d.n;
    dev_.mean_row = p.mean_row;
    bytes_ = entry_bytes + p.row_ptr.size() * 4 + p.order.size() * 4;
    if (v == CsrVariant::staged) {
      // The block size: the rule's first guess, then the fastest of the candidates timed here.
      staged_tuning_ = tune_staged(dev_, dev_.mean_row / 8, 2, [&](const CsrDevice& t, const void* x, void* y) {
        return launch_spmm_csr(t, x, y, bf16_, CsrVariant::staged, nullptr);
      });
      dev_.threads = staged_tuning_.best;
    }
  }
  void run(const void* x, void* y, void* stream) override {
    if (variant_ == CsrVariant::splitk)
      SB_CUDA_CHECK(launch_spmm_csr_splitk(split_, x, y, bf16_, as_stream(stream)));
    else if (variant_ == CsrVariant::tc)
      SB_CUDA_CHECK(launch_spmm_csr_tc(tc_, x, y, bf16_, as_stream(stream)));
    else
      SB_CUDA_CHECK(launch_spmm_csr(dev_, x, y, bf16_, variant_, as_stream(stream)));
  }
  std::size_t workspace_bytes() const override { return workspace_.bytes(); }
  std::size_t weight_bytes() const override { return bytes_; }
  std::string note() const override {
    if (variant_ == CsrVariant::splitk)
      return fmt::format("{} k-slices of {} columns, {} columns per tile, {} KB shared memory", split_.layout.ktiles,
                         split_.layout.ks, split_.layout.nc, csr_splitk_smem_bytes(split_.layout) / 1024);
    if (variant_ == CsrVariant::tc) {
      const TcLayout& l = tc_.layout;
      return fmt::format("tensor cores: tiles of 16 rows x {} columns (at most {} entries), {} warp groups per 64 rows, {}, {} KB shared memory; {}",
                         l.kt, 8 * tc_.max_chunks, l.ksplit, tc_slices_note(l), (tc_smem_bytes(l) + 1023) / 1024,
                         tc_tuning_note(tuning_));
    }
    if (variant_ == CsrVariant::staged)
      return fmt::format("mean padded row {} entries, X in {} KB of shared memory; {}", dev_.mean_row,
                         (staged_smem_bytes(dev_.k) + 1023) / 1024, staged_tuning_note(staged_tuning_));
    return fmt::format("mean padded row {} entries", dev_.mean_row);
  }
  std::unique_ptr<GpuSpmmOp> clone() const override { return std::unique_ptr<GpuSpmmOp>(new CsrKernelOp(*this)); }

 private:
  // The clone: the same arrays, copied on the device, and the device view pointed at them.
  CsrKernelOp(const CsrKernelOp& o)
      : variant_(o.variant_), bf16_(o.bf16_), values_(o.values_.copy()), cols_(o.cols_.copy()), ptr_(o.ptr_.copy()),
        order_(o.order_.copy()), workspace_(o.workspace_.bytes()), dev_(o.dev_), split_(o.split_), tc_(o.tc_), tuning_(o.tuning_), staged_tuning_(o.staged_tuning_),
        bytes_(o.bytes_) {
    workspace_.fill_bytes(0);  // its own, zeroed
    point_at_buffers();
  }
  // Values in the storage type and u16 columns to the device (at least 16 bytes each: a weight
  // with no entry still has buffers to point at); returns the bytes they hold.
  std::size_t upload_entries(const std::vector<float>& values, const std::vector<std::uint16_t>& cols, GpuDType t) {
    const std::vector<std::uint8_t> vb = to_storage(values.data(), values.size(), t);
    values_ = DeviceBuffer(std::max<std::size_t>(vb.size(), 16));
    values_.upload(vb.data(), vb.size());
    cols_ = DeviceBuffer(std::max<std::size_t>(cols.size() * 2, 16));
    cols_.upload(cols.data(), cols.size() * 2);
    return vb.size() + cols.size() * 2;
  }
  void point_at_buffers() {
    dev_.values = split_.values = values_.get();
    dev_.cols = split_.cols = static_cast<const std::uint16_t*>(cols_.get());
    dev_.row_ptr = split_.ptr = static_cast<const std::int32_t*>(ptr_.get());
    dev_.row_order = static_cast<const std::int32_t*>(order_.get());
    split_.workspace = tc_.workspace = static_cast<float*>(workspace_.get());
    tc_.values = values_.get();
    tc_.places = static_cast<const std::uint16_t*>(cols_.get());
    tc_.ptr = static_cast<const std::uint32_t*>(ptr_.get());
  }

  CsrVariant variant_;
  bool bf16_;
  DeviceBuffer values_, cols_, ptr_, order_, workspace_;  // order_: fast / simple; workspace_: splitk, tc (k sliced)
  CsrDevice dev_;                                          // fast / simple / staged
  CsrSplitkDevice split_;                                  // splitk
  CsrTcDevice tc_;                                         // tc (cols_ holds its places)
  TcTuning tuning_;                                        // tc: how its plan was chosen
  StagedTuning staged_tuning_;                             // staged: how its block size was chosen
  std::size_t bytes_ = 0;
};

class CsrKernelImpl final : public GpuSpmmImpl {
 public:
  CsrKernelImpl(std::string name, CsrVariant v) : name_(std::move(name)), variant_(v) {}
  std::string name() const override { return name_; }
  std::string library() const override { return "sparsebench"; }
  std::string format() const override { return "csr"; }
  Role role() const override { return Role::kernel; }
  bool can_implement(const GpuSpmmDesc& d, const SpmmWeight& w, std::string* why) const override {
    if (!weight_matches(d, w, why)) return false;
    if (d.dtype != GpuDType::f16 && d.dtype != GpuDType::bf16) return reject(why, "f16 and bf16 only");
    if (d.k > 65536) return reject(why, "k > 65536 needs u32 column indices");
    if (d.m * (d.k + 8) >= INT32_MAX) return reject(why, "padded nnz could exceed int32");
    if (variant_ == CsrVariant::staged) {
      if (d.n != 1) return reject(why, "n = 1 only (X staged in shared memory; other n run the fast kernel)");
      if (staged_smem_bytes(d.k) > smem_optin_limit())
        return reject(why, fmt::format("X staged in shared memory needs {} KB, over the device's {} KB per block",
                                       staged_smem_bytes(d.k) / 1024, smem_optin_limit() / 1024));
    }
    if (variant_ == CsrVariant::tc && d.n < 8)
      return reject(why, "n >= 8 only (16 columns per block on tensor cores; smaller n run the fast kernel)");
    if (variant_ == CsrVariant::tc && !tc_rows_fit(d.m))
      return reject(why, fmt::format("at most {} rows (blocks of {} rows in the grid's y)", kTcMaxRowBlocks * kTcRows, kTcRows));
    if (variant_ == CsrVariant::splitk && d.n % 8 != 0)
      return reject(why, "n a multiple of 8 only (16-byte units of X; other n run the fast kernel)");
    return true;
  }
  std::unique_ptr<GpuSpmmOp> initialize(const GpuSpmmDesc& d, const SpmmWeight& w) const override {
    return std::make_unique<CsrKernelOp>(d, w, variant_);
  }

 private:
  std::string name_;
  CsrVariant variant_;
};

}  // namespace

void add_csr_impls(ImplList& out) {
  out.push_back(std::make_unique<CsrKernelImpl>("spmm_csr_fast__cuda", CsrVariant::fast));
  out.push_back(std::make_unique<CsrKernelImpl>("spmm_csr_staged__cuda", CsrVariant::staged));
  out.push_back(std::make_unique<CsrKernelImpl>("spmm_csr_splitk__cuda", CsrVariant::splitk));
  out.push_back(std::make_unique<CsrKernelImpl>("spmm_csr_tc__cuda", CsrVariant::tc));
  out.push_back(std::make_unique<CsrKernelImpl>("spmm_csr_simple__cuda", CsrVariant::simple));
}

}  // namespace sb::gpu
