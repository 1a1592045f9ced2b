// Dense baselines: cuBLASLt with the fastest of the heuristic's top algorithms for the shape
// (timed once at initialize, cold, as every implementation times its candidates), and plain
// cublasGemmEx with the library's default choice.
// Row-major Y[m x n] = W[m x k] X[k x n] is the column-major Y^T[n x m] = X^T[n x k] W^T[k x m]:
// X, W and Y are passed as they are, with no transposition.
#include <cublasLt.h>
#include <cublas_v2.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"

namespace sb::gpu {
namespace {

#define SB_CUBLAS_CHECK(call)                                                                  \
  do {                                                                                         \
    const cublasStatus_t sb_st_ = (call);                                                      \
    if (sb_st_ != CUBLAS_STATUS_SUCCESS)                                                       \
      ::sb::fail(::fmt::format("{} failed: {} ({})", #call, cublasGetStatusName(sb_st_),       \
                               cublasGetStatusString(sb_st_)));                                \
  } while (0)

constexpr std::size_t kWorkspaceBytes = std::size_t{32} << 20;  // NVIDIA's advice for Hopper
constexpr int kAlgosTried = 16;  // the heuristic's top 16 (8 until session 14)

cudaDataType_t data_type(GpuDType t) {
  switch (t) {
    case GpuDType::f16: return CUDA_R_16F;
    case GpuDType::bf16: return CUDA_R_16BF;
    case GpuDType::i8: return CUDA_R_8I;
    default: return CUDA_R_32F;
  }
}

cublasComputeType_t compute_type(GpuDType t) {
  if (t == GpuDType::i8) return CUBLAS_COMPUTE_32I;
  return t == GpuDType::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

DeviceBuffer upload_dense(const SpmmWeight& w, GpuDType t) {
  const HostWeight h = host_weight(w, t);
  const std::vector<std::uint8_t> bytes = to_storage(h.values.data(), h.values.size(), t);
  DeviceBuffer buf(bytes.size());
  buf.upload(bytes.data(), bytes.size());
  return buf;
}

// The handle, layouts, chosen algorithm and workspace: one per initialize, shared by the clones.
struct LtPlan {
  cublasLtHandle_t lt = nullptr;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  DeviceBuffer ws;
  int best_index = -1, tried = 0;
  // i8: cuBLASLt's IMMA kernels take the "TN" form (op(A) = T), so X [k x n] is transposed into
  // xt [n x k] on the device in every call (counted in its time) and A = xt, seen column-major
  // as [k x n], transposed. Scales are int32 for the 32I compute type.
  bool transpose_x = false;
  std::int64_t k = 0, n = 0;
  DeviceBuffer xt;
  LtPlan() = default;
  LtPlan(const LtPlan&) = delete;
  LtPlan& operator=(const LtPlan&) = delete;
  ~LtPlan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (op) cublasLtMatmulDescDestroy(op);
    if (lt) cublasLtDestroy(lt);
  }
  cublasStatus_t matmul(const void* w, const void* x, void* y, cudaStream_t s) const {
    if (transpose_x) {
      if (launch_transpose_i8(x, xt.get(), k, n, s) != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
      const std::int32_t alpha = 1, beta = 0;
      return cublasLtMatmul(lt, op, &alpha, xt.get(), a, w, b, &beta, y, c, y, c, &algo, ws.get(), ws.bytes(), s);
    }
    const float alpha = 1.f, beta = 0.f;
    return cublasLtMatmul(lt, op, &alpha, x, a, w, b, &beta, y, c, y, c, &algo, ws.get(), ws.bytes(), s);
  }
};

std::shared_ptr<LtPlan> make_lt_plan(const GpuSpmmDesc& d, const DeviceBuffer& w) {
  auto p = std::make_shared<LtPlan>();
  p->ws = DeviceBuffer(kWorkspaceBytes);
  SB_CUBLAS_CHECK(cublasLtCreate(&p->lt));
  const cudaDataType_t dt = data_type(d.dtype);
  if (d.dtype == GpuDType::i8) {
    p->transpose_x = true;
    p->k = d.k;
    p->n = d.n;
    p->xt = DeviceBuffer(static_cast<std::size_t>(d.k * d.n));
    SB_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32I, CUDA_R_32I));
    const cublasOperation_t trans = CUBLAS_OP_T;
    SB_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof(trans)));
    SB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_8I, d.k, d.n, d.k));   // xt: k x n, ld k; op T
    SB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_8I, d.k, d.m, d.k));   // W^T: k x m, ld k
    SB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32I, d.n, d.m, d.n));  // Y^T: n x m, ld n
  } else {
    SB_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, compute_type(d.dtype), CUDA_R_32F));
    SB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, dt, d.n, d.k, d.n));  // X^T: n x k, ld n
    SB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, dt, d.k, d.m, d.k));  // W^T: k x m, ld k
    SB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, dt, d.n, d.m, d.n));  // Y^T: n x m, ld n
  }
  cublasLtMatmulPreference_t pref = nullptr;
  SB_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const std::uint64_t ws = kWorkspaceBytes;
  SB_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  cublasLtMatmulHeuristicResult_t res[kAlgosTried] = {};
  int returned = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(p->lt, p->op, p->a, p->b, p->c, p->c, pref, kAlgosTried, res, &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || returned == 0)
    fail(fmt::format("cublasLtMatmulAlgoGetHeuristic found no algorithm ({}) for {}x{}x{} {}", cublasGetStatusName(st), d.m,
                     d.k, d.n, gpu_dtype_name(d.dtype)));
  // Time each candidate on scratch X / Y as every implementation times its candidates
  // (time_candidate_us: cold, the median of 5; X filled with kCandidateFill).
  DeviceBuffer x(static_cast<std::size_t>(d.k * d.n) * x_elem_bytes(d.dtype));
  DeviceBuffer y(static_cast<std::size_t>(d.m * d.n) * y_elem_bytes(d.dtype));
  x.fill_bytes(kCandidateFill);
  double best = std::numeric_limits<double>::max();
  for (int i = 0; i < returned; ++i) {
    if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
    p->algo = res[i].algo;
    if (p->matmul(w.get(), x.get(), y.get(), nullptr) != CUBLAS_STATUS_SUCCESS) continue;
    const double us = time_candidate_us([&] { return p->matmul(w.get(), x.get(), y.get(), nullptr) == CUBLAS_STATUS_SUCCESS; });
    if (us >= 0 && us < best) {
      best = us;
      p->best_index = i;
    }
  }
  if (p->best_index < 0) fail(fmt::format("none of the {} cuBLASLt algorithms ran", returned));
  p->algo = res[p->best_index].algo;
  p->tried = returned;
  return p;
}

class LtOp final : public GpuSpmmOp {
 public:
  LtOp(const GpuSpmmDesc& d, const SpmmWeight& w) : w_(upload_dense(w, d.dtype)), plan_(make_lt_plan(d, w_)) {}
  LtOp(std::shared_ptr<LtPlan> plan, DeviceBuffer w) : w_(std::move(w)), plan_(std::move(plan)) {}

  void run(const void* x, void* y, void* stream) override {
    const cublasStatus_t st = plan_->matmul(w_.get(), x, y, as_stream(stream));
    if (st != CUBLAS_STATUS_SUCCESS) fail(fmt::format("cublasLtMatmul failed: {}", cublasGetStatusName(st)));
  }
  std::size_t weight_bytes() const override { return w_.bytes(); }
  std::size_t workspace_bytes() const override { return plan_->ws.bytes(); }
  std::string note() const override {
    return fmt::format("heuristic algorithm #{} of {} (fastest){}", plan_->best_index, plan_->tried,
                       plan_->transpose_x ? "; i8: X transposed on the device first (TN), in the time" : "");
  }
  std::unique_ptr<GpuSpmmOp> clone() const override { return std::make_unique<LtOp>(plan_, w_.copy()); }

 private:
  DeviceBuffer w_;
  std::shared_ptr<LtPlan> plan_;
};

struct BlasHandle {
  cublasHandle_t h = nullptr;
  BlasHandle() { SB_CUBLAS_CHECK(cublasCreate(&h)); }
  BlasHandle(const BlasHandle&) = delete;
  BlasHandle& operator=(const BlasHandle&) = delete;
  ~BlasHandle() { cublasDestroy(h); }
};

class GemmExOp final : public GpuSpmmOp {
 public:
  GemmExOp(const GpuSpmmDesc& d, const SpmmWeight& w)
      : d_(d), w_(upload_dense(w, d.dtype)), h_(std::make_shared<BlasHandle>()) {}
  GemmExOp(const GpuSpmmDesc& d, DeviceBuffer w, std::shared_ptr<BlasHandle> h) : d_(d), w_(std::move(w)), h_(std::move(h)) {}
  void run(const void* x, void* y, void* stream) override {
    cublasSetStream(h_->h, as_stream(stream));
    const float alpha = 1.f, beta = 0.f;
    const cudaDataType_t dt = data_type(d_.dtype);
    const cublasStatus_t st = cublasGemmEx(h_->h, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(d_.n), static_cast<int>(d_.m),
                                           static_cast<int>(d_.k), &alpha, x, dt, static_cast<int>(d_.n), w_.get(), dt,
                                           static_cast<int>(d_.k), &beta, y, dt, static_cast<int>(d_.n),
                                           compute_type(d_.dtype), CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) fail(fmt::format("cublasGemmEx failed: {}", cublasGetStatusName(st)));
  }
  std::size_t weight_bytes() const override { return w_.bytes(); }
  std::unique_ptr<GpuSpmmOp> clone() const override { return std::make_unique<GemmExOp>(d_, w_.copy(), h_); }

 private:
  GpuSpmmDesc d_;
  DeviceBuffer w_;
  std::shared_ptr<BlasHandle> h_;
};

template <class Op>
class DenseImpl final : public GpuSpmmImpl {
 public:
  explicit DenseImpl(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::string library() const override { return "cublas"; }
  std::string format() const override { return "dense"; }
  Role role() const override { return Role::baseline; }
  bool can_implement(const GpuSpmmDesc& d, const SpmmWeight& w, std::string* why) const override {
    if (!weight_matches(d, w, why)) return false;
    if (d.dtype == GpuDType::i8) {
      if constexpr (!std::is_same_v<Op, LtOp>) return reject(why, "i8 runs in cuBLASLt (cublaslt_gemm), not cublasGemmEx here");
      if (d.m % 16 || d.k % 16 || d.n % 16) return reject(why, "i8 (IMMA, TN) here needs m, k and n multiples of 16");
    }
    if (d.m > INT32_MAX || d.k > INT32_MAX || d.n > INT32_MAX) return reject(why, "a dimension exceeds int32");
    return true;
  }
  std::unique_ptr<GpuSpmmOp> initialize(const GpuSpmmDesc& d, const SpmmWeight& w) const override {
    return std::make_unique<Op>(d, w);
  }

 private:
  std::string name_;
};

}  // namespace

void add_cublas_impls(ImplList& out) {
  out.push_back(std::make_unique<DenseImpl<LtOp>>("cublaslt_gemm"));
  out.push_back(std::make_unique<DenseImpl<GemmExOp>>("cublas_gemmex"));
}

}  // namespace sb::gpu
