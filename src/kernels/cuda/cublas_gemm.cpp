// Dense baselines: cuBLASLt with the fastest of the heuristic's top algorithms for the shape
// (timed once at initialize), and plain cublasGemmEx with the library's default choice.
// Row-major Y[m x n] = W[m x k] X[k x n] is the column-major Y^T[n x m] = X^T[n x k] W^T[k x m]:
// X, W and Y are passed as they are, with no transposition.
#include <cublasLt.h>
#include <cublas_v2.h>

#include <algorithm>
#include <limits>

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
constexpr int kAlgosTried = 8;

cudaDataType_t data_type(GpuDType t) {
  switch (t) {
    case GpuDType::f16: return CUDA_R_16F;
    case GpuDType::bf16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

cublasComputeType_t compute_type(GpuDType t) {
  return t == GpuDType::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

DeviceBuffer upload_dense(const SpmmWeight& w, GpuDType t) {
  const HostWeight h = host_weight(w, t);
  const std::vector<std::uint8_t> bytes = to_storage(h.values.data(), h.values.size(), t);
  DeviceBuffer buf(bytes.size());
  buf.upload(bytes.data(), bytes.size());
  return buf;
}

class LtOp final : public GpuSpmmOp {
 public:
  LtOp(const GpuSpmmDesc& d, const SpmmWeight& w) : d_(d), w_(upload_dense(w, d.dtype)), ws_(kWorkspaceBytes) {
    SB_CUBLAS_CHECK(cublasLtCreate(&lt_));
    const cudaDataType_t dt = data_type(d.dtype);
    SB_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op_, compute_type(d.dtype), CUDA_R_32F));
    SB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&a_, dt, d.n, d.k, d.n));  // X^T: n x k, ld n
    SB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&b_, dt, d.k, d.m, d.k));  // W^T: k x m, ld k
    SB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c_, dt, d.n, d.m, d.n));  // Y^T: n x m, ld n
    cublasLtMatmulPreference_t pref = nullptr;
    SB_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const std::uint64_t ws = kWorkspaceBytes;
    SB_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    cublasLtMatmulHeuristicResult_t res[kAlgosTried] = {};
    int returned = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt_, op_, a_, b_, c_, c_, pref, kAlgosTried, res, &returned);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || returned == 0) {
      destroy();
      fail(fmt::format("cublasLtMatmulAlgoGetHeuristic found no algorithm ({}) for {}x{}x{} {}", cublasGetStatusName(st),
                       d.m, d.k, d.n, gpu_dtype_name(d.dtype)));
    }
    // Time each candidate on scratch X / Y (values do not change the speed of a dense GEMM).
    DeviceBuffer x(static_cast<std::size_t>(d.k * d.n) * x_elem_bytes(d.dtype));
    DeviceBuffer y(static_cast<std::size_t>(d.m * d.n) * y_elem_bytes(d.dtype));
    x.fill_bytes(0);
    cudaEvent_t e0, e1;
    SB_CUDA_CHECK(cudaEventCreate(&e0));
    SB_CUDA_CHECK(cudaEventCreate(&e1));
    float best = std::numeric_limits<float>::max();
    for (int i = 0; i < returned; ++i) {
      if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
      algo_ = res[i].algo;
      if (matmul(x.get(), y.get(), nullptr) != CUBLAS_STATUS_SUCCESS) continue;
      cudaEventRecord(e0);
      for (int r = 0; r < 10; ++r) matmul(x.get(), y.get(), nullptr);
      cudaEventRecord(e1);
      cudaEventSynchronize(e1);
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      if (ms < best) {
        best = ms;
        best_index_ = i;
      }
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    if (best_index_ < 0) {
      destroy();
      fail(fmt::format("none of the {} cuBLASLt algorithms ran", returned));
    }
    algo_ = res[best_index_].algo;
    tried_ = returned;
  }
  ~LtOp() override { destroy(); }

  void run(const void* x, void* y, void* stream) override {
    const cublasStatus_t st = matmul(x, y, as_stream(stream));
    if (st != CUBLAS_STATUS_SUCCESS) fail(fmt::format("cublasLtMatmul failed: {}", cublasGetStatusName(st)));
  }
  std::size_t weight_bytes() const override { return w_.bytes(); }
  std::size_t workspace_bytes() const override { return ws_.bytes(); }
  std::string note() const override { return fmt::format("heuristic algorithm #{} of {} (fastest)", best_index_, tried_); }

 private:
  cublasStatus_t matmul(const void* x, void* y, cudaStream_t s) {
    const float alpha = 1.f, beta = 0.f;
    return cublasLtMatmul(lt_, op_, &alpha, x, a_, w_.get(), b_, &beta, y, c_, y, c_, &algo_, ws_.get(), ws_.bytes(), s);
  }
  void destroy() {
    if (a_) cublasLtMatrixLayoutDestroy(a_);
    if (b_) cublasLtMatrixLayoutDestroy(b_);
    if (c_) cublasLtMatrixLayoutDestroy(c_);
    if (op_) cublasLtMatmulDescDestroy(op_);
    if (lt_) cublasLtDestroy(lt_);
    a_ = b_ = c_ = nullptr;
    op_ = nullptr;
    lt_ = nullptr;
  }

  GpuSpmmDesc d_;
  DeviceBuffer w_, ws_;
  cublasLtHandle_t lt_ = nullptr;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  int best_index_ = -1, tried_ = 0;
};

class GemmExOp final : public GpuSpmmOp {
 public:
  GemmExOp(const GpuSpmmDesc& d, const SpmmWeight& w) : d_(d), w_(upload_dense(w, d.dtype)) {
    SB_CUBLAS_CHECK(cublasCreate(&h_));
  }
  ~GemmExOp() override { cublasDestroy(h_); }
  void run(const void* x, void* y, void* stream) override {
    cublasSetStream(h_, as_stream(stream));
    const float alpha = 1.f, beta = 0.f;
    const cudaDataType_t dt = data_type(d_.dtype);
    const cublasStatus_t st = cublasGemmEx(h_, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(d_.n), static_cast<int>(d_.m),
                                           static_cast<int>(d_.k), &alpha, x, dt, static_cast<int>(d_.n), w_.get(), dt,
                                           static_cast<int>(d_.k), &beta, y, dt, static_cast<int>(d_.n),
                                           compute_type(d_.dtype), CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) fail(fmt::format("cublasGemmEx failed: {}", cublasGetStatusName(st)));
  }
  std::size_t weight_bytes() const override { return w_.bytes(); }

 private:
  GpuSpmmDesc d_;
  DeviceBuffer w_;
  cublasHandle_t h_ = nullptr;
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
    if (d.dtype == GpuDType::i8) return reject(why, "i8 dense GEMM is not wired (cuSPARSELt i8 is compared with f16 cuBLAS)");
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
