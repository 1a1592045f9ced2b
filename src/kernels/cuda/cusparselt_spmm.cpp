// cuSPARSELt 2:4 (sparse tensor cores), loaded at run time: dlopen of $SB_CUSPARSELT_PATH, else
// "libcusparseLt.so.0" (the PyTorch wheel carries one under site-packages/nvidia/cusparselt/lib;
// scripts/gpu/run-on-device.sh puts it on LD_LIBRARY_PATH). No cuSPARSELt header is needed: the
// few types are declared below from the documented 0.5+ ABI (caller-allocated opaque objects,
// enums), and a library older than 0.5 (other enum values and signatures) is refused by version.
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include <cusparse.h>  // cusparseStatus_t, cusparseOperation_t, cusparseOrder_t

#include "kernels/cuda/cuda_check.h"

namespace sb::gpu {
namespace {

// Opaque objects: 512 bytes in the ABI; 4 KiB here is harmless headroom (the caller owns them).
struct alignas(16) LtOpaque {
  std::uint8_t data[4096];
};
enum LtComputeType : int { kCompute32I = 0, kCompute16F = 1, kCompute32F = 2 };  // 0.5+ values
constexpr int kSparsity50 = 0;   // CUSPARSELT_SPARSITY_50_PERCENT
constexpr int kAlgDefault = 0;   // CUSPARSELT_MATMUL_ALG_DEFAULT
constexpr int kMinVersion = 500; // 0.5.0 (version = major * 1000 + minor * 100 + patch)

using InitFn = cusparseStatus_t (*)(LtOpaque*);
using DestroyFn = cusparseStatus_t (*)(const LtOpaque*);
using VersionFn = cusparseStatus_t (*)(const LtOpaque*, int*);
using DenseInitFn = cusparseStatus_t (*)(const LtOpaque*, LtOpaque*, std::int64_t, std::int64_t, std::int64_t,
                                         std::uint32_t, cudaDataType, cusparseOrder_t);
using StructInitFn = cusparseStatus_t (*)(const LtOpaque*, LtOpaque*, std::int64_t, std::int64_t, std::int64_t,
                                          std::uint32_t, cudaDataType, cusparseOrder_t, int);
using MatmulInitFn = cusparseStatus_t (*)(const LtOpaque*, LtOpaque*, cusparseOperation_t, cusparseOperation_t,
                                          const LtOpaque*, const LtOpaque*, const LtOpaque*, const LtOpaque*, int);
using AlgInitFn = cusparseStatus_t (*)(const LtOpaque*, LtOpaque*, const LtOpaque*, int);
using PlanInitFn = cusparseStatus_t (*)(const LtOpaque*, LtOpaque*, const LtOpaque*, const LtOpaque*);
using WorkspaceFn = cusparseStatus_t (*)(const LtOpaque*, const LtOpaque*, std::size_t*);
using CompressedSizeFn = cusparseStatus_t (*)(const LtOpaque*, const LtOpaque*, std::size_t*, std::size_t*);
using CompressFn = cusparseStatus_t (*)(const LtOpaque*, const LtOpaque*, const void*, void*, void*, cudaStream_t);
using MatmulFn = cusparseStatus_t (*)(const LtOpaque*, const LtOpaque*, const void*, const void*, const void*,
                                      const void*, const void*, void*, void*, cudaStream_t*, std::int32_t);
using SearchFn = cusparseStatus_t (*)(const LtOpaque*, LtOpaque*, const void*, const void*, const void*, const void*,
                                      const void*, void*, void*, cudaStream_t*, std::int32_t);

// The loaded library, once per process; `why` says why it is unusable.
struct LtLib {
  void* lib = nullptr;
  std::string why, path;
  int version = 0;
  InitFn init = nullptr;
  DestroyFn destroy = nullptr, plan_destroy = nullptr, desc_destroy = nullptr, alg_destroy = nullptr;
  VersionFn get_version = nullptr;
  DenseInitFn dense_init = nullptr;
  StructInitFn struct_init = nullptr;
  MatmulInitFn matmul_init = nullptr;
  AlgInitFn alg_init = nullptr;
  PlanInitFn plan_init = nullptr;
  WorkspaceFn workspace = nullptr;
  CompressedSizeFn compressed_size = nullptr;
  CompressFn compress = nullptr;
  MatmulFn matmul = nullptr;
  SearchFn search = nullptr;

  LtLib() {
    lib = open_library("SB_CUSPARSELT_PATH", "libcusparseLt.so.0", &path, &why);
    if (!lib) return;
    auto sym = [&](const char* n) {
      void* p = dlsym(lib, n);
      if (!p && why.empty()) why = fmt::format("unavailable: {} lacks {}", path, n);
      return p;
    };
    init = reinterpret_cast<InitFn>(sym("cusparseLtInit"));
    destroy = reinterpret_cast<DestroyFn>(sym("cusparseLtDestroy"));
    get_version = reinterpret_cast<VersionFn>(sym("cusparseLtGetVersion"));
    dense_init = reinterpret_cast<DenseInitFn>(sym("cusparseLtDenseDescriptorInit"));
    struct_init = reinterpret_cast<StructInitFn>(sym("cusparseLtStructuredDescriptorInit"));
    desc_destroy = reinterpret_cast<DestroyFn>(sym("cusparseLtMatDescriptorDestroy"));
    matmul_init = reinterpret_cast<MatmulInitFn>(sym("cusparseLtMatmulDescriptorInit"));
    alg_init = reinterpret_cast<AlgInitFn>(sym("cusparseLtMatmulAlgSelectionInit"));
    plan_init = reinterpret_cast<PlanInitFn>(sym("cusparseLtMatmulPlanInit"));
    plan_destroy = reinterpret_cast<DestroyFn>(sym("cusparseLtMatmulPlanDestroy"));
    workspace = reinterpret_cast<WorkspaceFn>(sym("cusparseLtMatmulGetWorkspace"));
    compressed_size = reinterpret_cast<CompressedSizeFn>(sym("cusparseLtSpMMACompressedSize"));
    compress = reinterpret_cast<CompressFn>(sym("cusparseLtSpMMACompress"));
    matmul = reinterpret_cast<MatmulFn>(sym("cusparseLtMatmul"));
    search = reinterpret_cast<SearchFn>(sym("cusparseLtMatmulSearch"));
    alg_destroy = reinterpret_cast<DestroyFn>(dlsym(lib, "cusparseLtMatmulAlgSelectionDestroy"));  // 0.6+
    if (!why.empty()) return;
    LtOpaque h;
    if (init(&h) != CUSPARSE_STATUS_SUCCESS) {
      why = fmt::format("unavailable: cusparseLtInit failed ({})", path);
      return;
    }
    get_version(&h, &version);
    destroy(&h);
    if (version < kMinVersion)
      why = fmt::format("unavailable: {} is version {}, 0.5 or newer is needed (its ABI)", path, version);
  }
};

const LtLib& lt() {
  static const LtLib lib;
  return lib;
}

#define SB_LT_CHECK(call)                                                                            \
  do {                                                                                               \
    const cusparseStatus_t sb_st_ = (call);                                                          \
    if (sb_st_ != CUSPARSE_STATUS_SUCCESS)                                                           \
      ::sb::fail(::fmt::format("{} failed: status {} ({})", #call, static_cast<int>(sb_st_),         \
                               cusparseGetErrorString(sb_st_)));                                     \
  } while (0)

cudaDataType value_type(GpuDType t) {
  switch (t) {
    case GpuDType::f16: return CUDA_R_16F;
    case GpuDType::bf16: return CUDA_R_16BF;
    case GpuDType::i8: return CUDA_R_8I;
    default: return CUDA_R_32F;
  }
}

// The handle, descriptors, plan (with the configuration its search chose) and workspace: one per
// initialize, shared by the clones, which differ only in their compressed weight.
struct LtState {
  const LtLib& L;
  LtOpaque h{}, a{}, b{}, c{}, mm{}, alg{}, plan{};
  bool live = false, descs = false, alg_live = false, plan_live = false;
  DeviceBuffer ws;
  // i8: the library's i8 kernels take op(B) = T, so X [k x n] is transposed into xt [n x k] first.
  bool transpose_x = false;
  std::int64_t k = 0, n = 0;
  DeviceBuffer xt;
  explicit LtState(const LtLib& lib) : L(lib) {}
  LtState(const LtState&) = delete;
  LtState& operator=(const LtState&) = delete;
  ~LtState() {
    if (plan_live) L.plan_destroy(&plan);
    if (alg_live && L.alg_destroy) L.alg_destroy(&alg);
    if (descs) {
      L.desc_destroy(&a);
      L.desc_destroy(&b);
      L.desc_destroy(&c);
    }
    if (live) L.destroy(&h);
  }
};

class LtOp final : public GpuSpmmOp {
 public:
  LtOp(const GpuSpmmDesc& d, const SpmmWeight& w) : st_(std::make_shared<LtState>(lt())) {
    LtState& S = *st_;
    const LtLib& L = S.L;
    const cudaDataType vt = value_type(d.dtype);
    const cudaDataType ct = d.dtype == GpuDType::i8 ? CUDA_R_32I : vt;
    const int compute = d.dtype == GpuDType::i8 ? kCompute32I : kCompute32F;
    SB_LT_CHECK(L.init(&S.h));
    S.live = true;
    // Row-major throughout: A = W (m x k, structured), B = X (k x n), C = D = Y (m x n).
    SB_LT_CHECK(L.struct_init(&S.h, &S.a, d.m, d.k, d.k, 16, vt, CUSPARSE_ORDER_ROW, kSparsity50));
    // f16 / bf16: B = X as it is. i8: the library refuses op(B) = N (CUSPARSE_STATUS_NOT_SUPPORTED
    // from cusparseLtMatmulDescriptorInit on the H100, session 3); B = X^T [n x k] with op(B) = T,
    // as in NVIDIA's cuSPARSELt sample, X transposed on the device in every call (counted in its time).
    S.transpose_x = d.dtype == GpuDType::i8;
    S.k = d.k;
    S.n = d.n;
    if (S.transpose_x) {
      SB_LT_CHECK(L.dense_init(&S.h, &S.b, d.n, d.k, d.k, 16, vt, CUSPARSE_ORDER_ROW));
      S.xt = DeviceBuffer(static_cast<std::size_t>(d.k * d.n));
    } else {
      SB_LT_CHECK(L.dense_init(&S.h, &S.b, d.k, d.n, d.n, 16, vt, CUSPARSE_ORDER_ROW));
    }
    SB_LT_CHECK(L.dense_init(&S.h, &S.c, d.m, d.n, d.n, 16, ct, CUSPARSE_ORDER_ROW));
    S.descs = true;
    SB_LT_CHECK(L.matmul_init(&S.h, &S.mm, CUSPARSE_OPERATION_NON_TRANSPOSE,
                              S.transpose_x ? CUSPARSE_OPERATION_TRANSPOSE : CUSPARSE_OPERATION_NON_TRANSPOSE, &S.a, &S.b,
                              &S.c, &S.c, compute));
    SB_LT_CHECK(L.alg_init(&S.h, &S.alg, &S.mm, kAlgDefault));
    S.alg_live = true;
    SB_LT_CHECK(L.plan_init(&S.h, &S.plan, &S.mm, &S.alg));
    S.plan_live = true;
    // The pruned dense weight, uploaded, then compressed by the library into its own layout.
    const HostWeight hw = host_weight(w, d.dtype);
    const std::vector<std::uint8_t> dense = to_storage(hw.values.data(), hw.values.size(), d.dtype);
    DeviceBuffer dense_dev(dense.size());
    dense_dev.upload(dense.data(), dense.size());
    std::size_t csize = 0, cbuf = 0;
    SB_LT_CHECK(L.compressed_size(&S.h, &S.plan, &csize, &cbuf));
    compressed_ = DeviceBuffer(csize);
    DeviceBuffer scratch(cbuf);
    SB_LT_CHECK(L.compress(&S.h, &S.plan, dense_dev.get(), compressed_.get(), scratch.get(), nullptr));
    std::size_t ws = 0;
    SB_LT_CHECK(L.workspace(&S.h, &S.plan, &ws));
    S.ws = DeviceBuffer(ws);
    // The library's own search over its kernel configurations, on scratch X / Y.
    DeviceBuffer xs(static_cast<std::size_t>(d.k * d.n) * x_elem_bytes(d.dtype));
    DeviceBuffer ys(static_cast<std::size_t>(d.m * d.n) * y_elem_bytes(d.dtype));
    xs.fill_bytes(0);
    const float alpha = 1.f, beta = 0.f;
    SB_LT_CHECK(L.search(&S.h, &S.plan, &alpha, compressed_.get(), xs.get(), &beta, ys.get(), ys.get(), S.ws.get(), nullptr, 0));
    SB_LT_CHECK(L.workspace(&S.h, &S.plan, &ws));  // the chosen configuration may need more
    if (ws > S.ws.bytes()) S.ws = DeviceBuffer(ws);
    SB_CUDA_CHECK(cudaDeviceSynchronize());
  }
  LtOp(std::shared_ptr<LtState> st, DeviceBuffer compressed) : st_(std::move(st)), compressed_(std::move(compressed)) {}

  void run(const void* x, void* y, void* stream) override {
    const float alpha = 1.f, beta = 0.f;
    cudaStream_t s = as_stream(stream);
    LtState& S = *st_;
    if (S.transpose_x) {
      SB_CUDA_CHECK(launch_transpose_i8(x, S.xt.get(), S.k, S.n, s));
      x = S.xt.get();
    }
    SB_LT_CHECK(S.L.matmul(&S.h, &S.plan, &alpha, compressed_.get(), x, &beta, y, y, S.ws.get(), &s, 1));
  }
  std::size_t weight_bytes() const override { return compressed_.bytes(); }
  std::size_t workspace_bytes() const override { return st_->ws.bytes(); }
  std::string note() const override {
    return fmt::format("{} (version {}){}", st_->L.path, st_->L.version,
                       st_->transpose_x ? "; i8: X transposed on the device first (op(B) = T), in the time" : "");
  }
  std::unique_ptr<GpuSpmmOp> clone() const override { return std::make_unique<LtOp>(st_, compressed_.copy()); }

 private:
  std::shared_ptr<LtState> st_;
  DeviceBuffer compressed_;
};

class LtImpl final : public GpuSpmmImpl {
 public:
  std::string name() const override { return "cusparselt_24"; }
  std::string library() const override { return "cusparselt"; }
  std::string format() const override { return "2:4"; }
  Role role() const override { return Role::peer; }
  bool can_implement(const GpuSpmmDesc& d, const SpmmWeight& w, std::string* why) const override {
    if (!weight_matches(d, w, why)) return false;
    if (d.dtype != GpuDType::f16 && d.dtype != GpuDType::bf16 && d.dtype != GpuDType::i8)
      return reject(why, "cuSPARSELt 2:4 runs f16, bf16 and i8 here");
    if (!(w.pattern.kind == Pattern::Kind::nm && w.pattern.n <= 2 && w.pattern.m == 4))
      return reject(why, fmt::format("needs a 2:4 (or sparser 1:4) pattern, not {}", w.pattern.to_string()));
    const int align = d.dtype == GpuDType::i8 ? 32 : 16;
    if (d.m % align || d.k % align || d.n % align)
      return reject(why, fmt::format("cuSPARSELt needs m, k and n multiples of {} (row-major)", align));
    if (!lt().why.empty()) return reject(why, lt().why);
    return true;
  }
  std::unique_ptr<GpuSpmmOp> initialize(const GpuSpmmDesc& d, const SpmmWeight& w) const override {
    return std::make_unique<LtOp>(d, w);
  }
};

}  // namespace

void add_cusparselt_impls(ImplList& out) { out.push_back(std::make_unique<LtImpl>()); }

}  // namespace sb::gpu
