// cuDNN's forward convolution: the dense baseline a convolution layer is held to beside cuBLAS on
// its lowered GEMM (cuda_spmm.h, GpuConvOp). Loaded at run time (dlopen of $SB_CUDNN_PATH, else
// libcudnn.so.9), so that the binary starts and runs everything else where cuDNN is missing; the
// header is needed at build time only for the types (the legacy convolution API, present in cuDNN
// 8 and 9; version 9 is required, the header's). Without the header this file reports cuDNN
// unavailable.
#include <dlfcn.h>

#include <cstdlib>
#include <limits>
#include <memory>

#include "kernels/cuda/cuda_check.h"

#if __has_include(<cudnn.h>)
#include <cudnn.h>
#define SB_HAVE_CUDNN_HEADER 1
#else
#define SB_HAVE_CUDNN_HEADER 0
#endif

namespace sb::gpu {

#if SB_HAVE_CUDNN_HEADER
namespace {

// Workspace an algorithm may ask for (cuBLASLt gets 32 MB; FFT algorithms ask for far more on big
// layers, and a network would not give them that per layer).
constexpr std::size_t kWorkspaceCap = std::size_t{256} << 20;

struct DnnLib {
  void* lib = nullptr;
  std::string why, path;
  std::size_t version = 0;
#define SB_DNN_FN(fn) decltype(&::fn) fn = nullptr;
  SB_DNN_FN(cudnnGetVersion)
  SB_DNN_FN(cudnnGetErrorString)
  SB_DNN_FN(cudnnCreate)
  SB_DNN_FN(cudnnDestroy)
  SB_DNN_FN(cudnnSetStream)
  SB_DNN_FN(cudnnCreateTensorDescriptor)
  SB_DNN_FN(cudnnDestroyTensorDescriptor)
  SB_DNN_FN(cudnnSetTensor4dDescriptor)
  SB_DNN_FN(cudnnCreateFilterDescriptor)
  SB_DNN_FN(cudnnDestroyFilterDescriptor)
  SB_DNN_FN(cudnnSetFilter4dDescriptor)
  SB_DNN_FN(cudnnCreateConvolutionDescriptor)
  SB_DNN_FN(cudnnDestroyConvolutionDescriptor)
  SB_DNN_FN(cudnnSetConvolution2dDescriptor)
  SB_DNN_FN(cudnnSetConvolutionMathType)
  SB_DNN_FN(cudnnGetConvolution2dForwardOutputDim)
  SB_DNN_FN(cudnnGetConvolutionForwardAlgorithm_v7)
  SB_DNN_FN(cudnnGetConvolutionForwardWorkspaceSize)
  SB_DNN_FN(cudnnConvolutionForward)
#undef SB_DNN_FN

  DnnLib() {
    lib = open_library("SB_CUDNN_PATH", "libcudnn.so.9", &path, &why);
    if (!lib) return;
    auto sym = [&](auto& fn, const char* n) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, n));
      if (!fn && why.empty()) why = fmt::format("unavailable: {} lacks {}", path, n);
    };
#define SB_DNN_SYM(fn) sym(fn, #fn);
    SB_DNN_SYM(cudnnGetVersion)
    SB_DNN_SYM(cudnnGetErrorString)
    SB_DNN_SYM(cudnnCreate)
    SB_DNN_SYM(cudnnDestroy)
    SB_DNN_SYM(cudnnSetStream)
    SB_DNN_SYM(cudnnCreateTensorDescriptor)
    SB_DNN_SYM(cudnnDestroyTensorDescriptor)
    SB_DNN_SYM(cudnnSetTensor4dDescriptor)
    SB_DNN_SYM(cudnnCreateFilterDescriptor)
    SB_DNN_SYM(cudnnDestroyFilterDescriptor)
    SB_DNN_SYM(cudnnSetFilter4dDescriptor)
    SB_DNN_SYM(cudnnCreateConvolutionDescriptor)
    SB_DNN_SYM(cudnnDestroyConvolutionDescriptor)
    SB_DNN_SYM(cudnnSetConvolution2dDescriptor)
    SB_DNN_SYM(cudnnSetConvolutionMathType)
    SB_DNN_SYM(cudnnGetConvolution2dForwardOutputDim)
    SB_DNN_SYM(cudnnGetConvolutionForwardAlgorithm_v7)
    SB_DNN_SYM(cudnnGetConvolutionForwardWorkspaceSize)
    SB_DNN_SYM(cudnnConvolutionForward)
#undef SB_DNN_SYM
    if (!why.empty()) return;
    version = cudnnGetVersion();
    if (version / 10000 != CUDNN_MAJOR)
      why = fmt::format("unavailable: {} is version {}; this build uses cuDNN {}'s API", path, version, CUDNN_MAJOR);
  }
};

const DnnLib& dnn() {
  static const DnnLib lib;
  return lib;
}

#define SB_DNN_CHECK(call)                                                                            \
  do {                                                                                                \
    const cudnnStatus_t sb_st_ = (dnn().call);                                                        \
    if (sb_st_ != CUDNN_STATUS_SUCCESS)                                                               \
      ::sb::fail(::fmt::format("{} failed: {}", #call, dnn().cudnnGetErrorString(sb_st_)));          \
  } while (0)

// One handle per process (cudnnCreate loads the library's kernels: slow), made on first use.
cudnnHandle_t handle() {
  static cudnnHandle_t h = [] {
    cudnnHandle_t made = nullptr;
    SB_DNN_CHECK(cudnnCreate(&made));
    return made;
  }();
  return h;
}

cudnnDataType_t data_type(GpuDType t) {
  switch (t) {
    case GpuDType::f16: return CUDNN_DATA_HALF;
    case GpuDType::bf16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
  }
}

const char* algo_name(cudnnConvolutionFwdAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "implicit_gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "implicit_precomp_gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "direct";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "fft";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "fft_tiling";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "winograd";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "winograd_nonfused";
    default: return "unknown";
  }
}

bool transforms(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}

// The descriptors of one layout, with its weight uploaded in that layout.
struct Layout {
  bool nhwc = false;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  DeviceBuffer weight;
  Layout() = default;
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;
  ~Layout() {
    if (x) dnn().cudnnDestroyTensorDescriptor(x);
    if (y) dnn().cudnnDestroyTensorDescriptor(y);
    if (w) dnn().cudnnDestroyFilterDescriptor(w);
    if (conv) dnn().cudnnDestroyConvolutionDescriptor(conv);
  }
};

std::unique_ptr<Layout> make_layout(const GpuConvDesc& d, bool nhwc, const float* weight_oihw) {
  auto l = std::make_unique<Layout>();
  l->nhwc = nhwc;
  const cudnnTensorFormat_t fmt = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  const cudnnDataType_t dt = data_type(d.dtype);
  auto i = [](std::int64_t v) { return static_cast<int>(v); };
  SB_DNN_CHECK(cudnnCreateTensorDescriptor(&l->x));
  SB_DNN_CHECK(cudnnCreateTensorDescriptor(&l->y));
  SB_DNN_CHECK(cudnnCreateFilterDescriptor(&l->w));
  SB_DNN_CHECK(cudnnCreateConvolutionDescriptor(&l->conv));
  SB_DNN_CHECK(cudnnSetTensor4dDescriptor(l->x, fmt, dt, i(d.batch), i(d.in_channels), i(d.height), i(d.width)));
  SB_DNN_CHECK(cudnnSetFilter4dDescriptor(l->w, dt, fmt, i(d.out_channels), i(d.in_channels), i(d.kernel[0]),
                                          i(d.kernel[1])));
  SB_DNN_CHECK(cudnnSetConvolution2dDescriptor(l->conv, i(d.padding[0]), i(d.padding[1]), i(d.stride[0]),
                                               i(d.stride[1]), i(d.dilation[0]), i(d.dilation[1]),
                                               CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  // f32: strict fp32 FMAs (cuBLAS's f32 baseline does not use TF32 either); the others: tensor cores.
  SB_DNN_CHECK(cudnnSetConvolutionMathType(l->conv, d.dtype == GpuDType::f32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
  int n = 0, c = 0, h = 0, w = 0;
  SB_DNN_CHECK(cudnnGetConvolution2dForwardOutputDim(l->conv, l->x, l->w, &n, &c, &h, &w));
  if (n != d.batch || c != d.out_channels || h != d.out_h() || w != d.out_w())
    fail(fmt::format("cuDNN's output {}x{}x{}x{} differs from the expected {}x{}x{}x{}", n, c, h, w, d.batch,
                     d.out_channels, d.out_h(), d.out_w()));
  SB_DNN_CHECK(cudnnSetTensor4dDescriptor(l->y, fmt, dt, n, c, h, w));
  // The weight: OIHW as given, or OHWI (KRSC) for NHWC.
  const std::int64_t o = d.out_channels, ci = d.in_channels, kh = d.kernel[0], kw = d.kernel[1];
  std::vector<float> wv(weight_oihw, weight_oihw + o * ci * kh * kw);
  if (nhwc) wv = nchw_to_nhwc(weight_oihw, o, ci, kh, kw);
  const std::vector<std::uint8_t> bytes = to_storage(wv.data(), wv.size(), d.dtype);
  l->weight = DeviceBuffer(bytes.size());
  l->weight.upload(bytes.data(), bytes.size());
  return l;
}

class CudnnConvOp final : public GpuConvOp {
 public:
  CudnnConvOp(std::unique_ptr<Layout> l, cudnnConvolutionFwdAlgo_t algo, DeviceBuffer ws, std::string note)
      : l_(std::move(l)), algo_(algo), ws_(std::move(ws)), note_(std::move(note)) {}

  void run(const void* x, void* y, void* stream) override {
    SB_DNN_CHECK(cudnnSetStream(handle(), as_stream(stream)));
    const float alpha = 1.f, beta = 0.f;
    SB_DNN_CHECK(cudnnConvolutionForward(handle(), &alpha, l_->x, x, l_->w, l_->weight.get(), l_->conv, algo_,
                                         ws_.get(), ws_.bytes(), &beta, l_->y, y));
  }
  std::size_t weight_bytes() const override { return l_->weight.bytes(); }
  std::size_t workspace_bytes() const override { return ws_.bytes(); }
  std::string note() const override { return note_; }
  std::string layout() const override { return l_->nhwc ? "nhwc" : "nchw"; }
  double error_scale() const override { return transforms(algo_) ? 4.0 : 1.0; }

 private:
  std::unique_ptr<Layout> l_;
  cudnnConvolutionFwdAlgo_t algo_;
  DeviceBuffer ws_;
  std::string note_;
};

}  // namespace

std::string cudnn_unavailable_reason() {
  if (const std::string why = gpu_unavailable_reason(); !why.empty()) return why;
  return dnn().why;
}

std::string cudnn_library_status() {
  const DnnLib& l = dnn();
  if (!l.lib) return l.why;
  const std::string v = fmt::format("{}.{}.{} ({})", l.version / 10000, l.version / 100 % 100, l.version % 100, l.path);
  return l.why.empty() ? v : fmt::format("{}: {}", v, l.why);
}

std::unique_ptr<GpuConvOp> make_cudnn_conv(const GpuConvDesc& d, const float* weight_oihw) {
  if (const std::string why = cudnn_unavailable_reason(); !why.empty()) fail(fmt::format("cuDNN: {}", why));
  if (const std::string bad = check_conv_desc(d); !bad.empty()) fail(bad);
  SB_CHECK(d.dtype != GpuDType::i8, "cuDNN convolutions here run in f32, tf32, f16 or bf16, not i8");
  const cudnnHandle_t h = handle();
  SB_DNN_CHECK(cudnnSetStream(h, nullptr));
  // Scratch image and output, filled as every implementation's candidates are timed on.
  DeviceBuffer x(static_cast<std::size_t>(d.input_elems()) * x_elem_bytes(d.dtype));
  DeviceBuffer y(static_cast<std::size_t>(d.gemm_m() * d.gemm_n()) * y_elem_bytes(d.dtype));
  x.fill_bytes(kCandidateFill);
  struct Best {
    double us = std::numeric_limits<double>::max();
    std::unique_ptr<Layout> layout;
    cudnnConvolutionFwdAlgo_t algo{};
    std::size_t ws = 0;
    std::string label;
  } best, second;
  int tried = 0;
  std::string refused;
  for (const bool nhwc : {false, true}) {
    std::unique_ptr<Layout> l = make_layout(d, nhwc, weight_oihw);
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;
    SB_DNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, l->x, l->w, l->conv, l->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                        &returned, perf));
    bool kept = false;
    for (int i = 0; i < returned; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
      std::size_t ws_bytes = 0;
      if (dnn().cudnnGetConvolutionForwardWorkspaceSize(h, l->x, l->w, l->conv, l->y, perf[i].algo, &ws_bytes) !=
              CUDNN_STATUS_SUCCESS ||
          ws_bytes > kWorkspaceCap) {
        if (ws_bytes > kWorkspaceCap)
          refused += fmt::format("{}{} {} ({} MB of workspace)", refused.empty() ? "" : ", ", nhwc ? "nhwc" : "nchw",
                                 algo_name(perf[i].algo), ws_bytes >> 20);
        continue;
      }
      DeviceBuffer ws(ws_bytes);
      auto call = [&] {
        const float alpha = 1.f, beta = 0.f;
        return dnn().cudnnConvolutionForward(h, &alpha, l->x, x.get(), l->w, l->weight.get(), l->conv, perf[i].algo,
                                             ws.get(), ws_bytes, &beta, l->y, y.get()) == CUDNN_STATUS_SUCCESS;
      };
      if (!call() || cudaDeviceSynchronize() != cudaSuccess) {
        cudaGetLastError();
        continue;
      }
      ++tried;
      const double us = time_candidate_us(call);
      if (us < 0) continue;
      const std::string label = fmt::format("{} {}", nhwc ? "nhwc" : "nchw", algo_name(perf[i].algo));
      if (us < best.us) {
        second = Best{best.us, nullptr, best.algo, best.ws, best.label};
        best = Best{us, nullptr, perf[i].algo, ws_bytes, label};
        kept = true;
      } else if (us < second.us) {
        second = Best{us, nullptr, perf[i].algo, ws_bytes, label};
      }
    }
    if (kept) best.layout = std::move(l);
  }
  if (!best.layout)
    fail(fmt::format("cuDNN ran none of its forward algorithms for {}x{}x{}x{} -> {} channels, {}x{} window{}",
                     d.batch, d.in_channels, d.height, d.width, d.out_channels, d.kernel[0], d.kernel[1],
                     refused.empty() ? "" : "; over the workspace cap: " + refused));
  std::string note = fmt::format("cuDNN {} {}, the fastest of {} algorithm and layout pairs timed at initialize (cold): "
                                 "{:.1f} us",
                                 dnn().version, best.label, tried, best.us);
  if (second.us < std::numeric_limits<double>::max()) note += fmt::format("; next {}: {:.1f} us", second.label, second.us);
  if (!refused.empty()) note += "; over the workspace cap: " + refused;
  return std::make_unique<CudnnConvOp>(std::move(best.layout), best.algo, DeviceBuffer(best.ws), std::move(note));
}

#else  // no cudnn.h at build time

std::string cudnn_unavailable_reason() {
  if (const std::string why = gpu_unavailable_reason(); !why.empty()) return why;
  return "unavailable: built without cuDNN's header (cudnn.h)";
}
std::string cudnn_library_status() { return "unavailable: built without cuDNN's header (cudnn.h)"; }
std::unique_ptr<GpuConvOp> make_cudnn_conv(const GpuConvDesc&, const float*) {
  fail("cuDNN: " + cudnn_unavailable_reason());
}

#endif

void run_conv_on_host_data(GpuConvOp& op, const GpuConvDesc& d, const float* image_nchw, float* y_gemm) {
  std::vector<float> img(image_nchw, image_nchw + d.input_elems());
  if (op.layout() == "nhwc") img = nchw_to_nhwc(image_nchw, d.batch, d.in_channels, d.height, d.width);
  const std::vector<std::uint8_t> xb = to_storage(img.data(), img.size(), d.dtype);
  const std::size_t ycount = static_cast<std::size_t>(d.gemm_m() * d.gemm_n());
  DeviceBuffer x(xb.size()), y(ycount * y_elem_bytes(d.dtype));
  x.upload(xb.data(), xb.size());
  y.fill_bytes(0xFF);  // NaN in every storage type
  op.run(x.get(), y.get(), nullptr);
  gpu_synchronize();
  std::vector<std::uint8_t> yb(y.bytes());
  y.download(yb.data(), yb.size());
  std::vector<float> out(ycount);
  from_storage(yb.data(), ycount, d.dtype, out.data());
  const std::vector<float> g = conv_output_to_gemm(d, op.layout(), out.data());
  std::copy(g.begin(), g.end(), y_gemm);
}

}  // namespace sb::gpu
