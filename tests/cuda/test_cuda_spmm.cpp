// Every GPU implementation (cuBLAS baselines, cuSPARSE, cuSPARSELt, our kernels in their simple and
// fast versions) against a double-accumulated reference on the same rounded inputs, on fresh
// random data per case, outputs poisoned (NaN) before the call, odd shapes (m, k, n off every
// tile, n = 1). Without a visible GPU each case skips with the CUDA runtime's reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "sparsebench/core/error.h"
#include "sparsebench/core/rng.h"
#include "sparsebench/kernels/cuda_spmm.h"
#include "sparsebench/prune/mask.h"

namespace sb::gpu {
namespace {

struct Shape3 {
  std::int64_t m, k, n;
};
// Off every tile (8-entry chunks, 2-column lanes, 16/32-row blocks, banks of 32) plus n = 1 (GEMV:
// tails alone, groups of 128 banks and tails), n = 2, exact multiples of 16/32 (so cuSPARSELt and
// Blocked-ELL run), k above one X tile, and n % 8 == 0 with several k-slices, a short last chunk
// and a short last slice (split-K).
const Shape3 kShapes[] = {{1, 1, 1},    {7, 13, 1},    {33, 67, 13},  {67, 129, 200}, {129, 67, 1},
                          {64, 64, 128}, {96, 256, 16}, {128, 128, 2}, {256, 512, 64}, {20, 520, 17},
                          {64, 9000, 3}, {32, 3072, 1}, {128, 768, 33}, {40, 4200, 1}, {300, 4096, 1},
                          {130, 4100, 16}};

struct PatternCase {
  const char* pattern;
  double sparsity;
};
const PatternCase kPatterns[] = {{"dense", 0.0},          {"unstructured", 0.5},   {"unstructured", 0.9},
                                 {"unstructured", 0.99},  {"balanced:bank=32", 0.9}, {"balanced:bank=8", 0.5},
                                 {"balanced:bank=256", 0.9}, {"nm:2:4", 0.5},         {"nm:1:8", 0.875},
                                 {"block:16x16", 0.7},
                                 // 13 kept a bank: the tensor-core kernel pads to 14 (tiles of 4 banks)
                                 {"balanced:bank=32", 0.6}};

const GpuDType kDtypes[] = {GpuDType::f32, GpuDType::tf32, GpuDType::f16, GpuDType::bf16, GpuDType::i8};

double tolerance(GpuDType t, std::int64_t k) {
  // Relative to max |ref|: the output's rounding in its storage type (half an ulp, with headroom)
  // plus fp32 accumulation error, which grows like sqrt(k) for random signs.
  const double accum = 4e-7 * std::sqrt(static_cast<double>(k));
  switch (t) {
    case GpuDType::f32: return 1e-5 + accum;
    case GpuDType::tf32: return 1e-4 + accum;  // inputs pre-rounded to tf32: exact products
    case GpuDType::f16: return 1e-3 + accum;   // 2^-11 = 4.9e-4 half an ulp at the top of the range
    case GpuDType::bf16: return 8e-3 + accum;  // 2^-8 = 3.9e-3
    case GpuDType::i8: return 0;               // exact integer arithmetic
  }
  return 0;
}

// The names the list must hold, so that a missing registration fails instead of passing silently.
const char* const kExpected[] = {"cublaslt_gemm",           "cublas_gemmex",          "cusparse_csr",
                                 "cusparse_blocked_ell",    "cusparselt_24",          "spmm_balanced_fast__cuda",
                                 "spmm_nm_fast__cuda",      "spmm_balanced_staged__cuda", "spmm_nm_staged__cuda",
                                 "spmm_balanced_tc__cuda",  "spmm_nm_tc__cuda",
                                 "spmm_balanced_gemv__cuda", "spmm_nm_gemv__cuda",
                                 "spmm_balanced_splitk__cuda", "spmm_nm_splitk__cuda",
                                 "spmm_balanced_simple__cuda", "spmm_nm_simple__cuda",
                                 "spmm_csr_fast__cuda",     "spmm_csr_staged__cuda",   "spmm_csr_splitk__cuda",   "spmm_csr_tc__cuda",
                                 "spmm_csr_simple__cuda"};

class EveryGpuImpl : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    // Our kernels' code is still checked without a GPU, on the CPU emulator (test_cuda_emu).
    if (const std::string why = gpu_unavailable_reason(); !why.empty())
      GTEST_SKIP() << why << " (our kernels run on the CPU emulator in test_cuda_emu)";
  }
};

TEST_P(EveryGpuImpl, MatchesReference) {
  const GpuSpmmImpl* impl = find_gpu_impl(GetParam());
  ASSERT_NE(impl, nullptr) << GetParam() << " is not registered";
  int ran = 0, case_index = 0;
  std::map<std::string, int> declined;
  for (const PatternCase& pc : kPatterns)
    for (const Shape3& s : kShapes)
      for (GpuDType dt : kDtypes) {
        const int c = case_index++;
        Rng rng(0xC0DA + c);
        const Pattern p = Pattern::parse(pc.pattern);
        Tensor w = Tensor::empty({s.m, s.k});
        // i8: small integers, so that the integer result is exact and comparable.
        rng.fill_uniform(w, -1.f, 1.f);
        if (dt == GpuDType::i8)
          for (std::int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = std::nearbyint(w.data<float>()[i] * 8.f);
        SpmmWeight weight;
        try {
          MaskResult mr = make_mask(w, p, pc.sparsity);
          apply_mask(w, mr.mask);
          weight = {w, mr.mask, p};
        } catch (const Error& e) {
          continue;  // the pattern does not fit the shape (a bank wider than k): nothing to test
        }
        const GpuSpmmDesc d{s.m, s.k, s.n, dt};
        std::string why;
        if (!impl->can_implement(d, weight, &why)) {
          ++declined[why];
          continue;
        }
        std::vector<float> x(static_cast<std::size_t>(s.k * s.n));
        for (float& v : x) v = round_to(dt == GpuDType::i8 ? std::nearbyint(rng.uniform(-4.f, 4.f)) : rng.uniform(-1.f, 1.f), dt);
        // Reference in double on the weight as the GPU stores it (rounded to the storage type).
        const float* wd = w.data<float>();
        std::vector<double> ref(static_cast<std::size_t>(s.m * s.n), 0.0);
        double max_ref = 0;
        for (std::int64_t i = 0; i < s.m; ++i) {
          for (std::int64_t j = 0; j < s.k; ++j) {
            const double v = round_to(wd[i * s.k + j], dt);
            if (v != 0)
              for (std::int64_t t = 0; t < s.n; ++t) ref[i * s.n + t] += v * x[j * s.n + t];
          }
        }
        for (double v : ref) max_ref = std::max(max_ref, std::fabs(v));
        std::vector<float> y(ref.size());
        const std::string label = ::testing::PrintToString(s.m) + "x" + std::to_string(s.k) + "x" + std::to_string(s.n) +
                                  " " + pc.pattern + " @" + std::to_string(pc.sparsity) + " " + gpu_dtype_name(dt);
        // The clone (CacheMode::stream's copies), which every implementation offers, is checked
        // too, and after its original is gone: it must own its weight and keep what it shares alive.
        std::vector<float> yc;
        try {
          auto op = impl->initialize(d, weight);
          run_on_host_data(*op, d, x.data(), y.data());
          if (auto copy = op->clone()) {
            op.reset();
            yc.resize(y.size());
            run_on_host_data(*copy, d, x.data(), yc.data());
          } else {
            ADD_FAILURE() << impl->name() << " " << label << ": no clone (stream mode would initialize it afresh per copy)";
          }
        } catch (const std::exception& e) {
          ADD_FAILURE() << impl->name() << " " << label << ": " << e.what();
          return;
        }
        // The clone is held to the same tolerance, not to bit equality: a split-K kernel's atomic
        // adds may sum in another order on every call.
        for (const std::vector<float>* out : {&y, &yc}) {
          if (out->empty()) continue;
          const char* which = out == &y ? "" : " (the clone)";
          double max_err = 0, norm = 0;
          for (std::size_t i = 0; i < ref.size(); ++i) {
            ASSERT_TRUE(std::isfinite((*out)[i])) << impl->name() << which << " " << label << ": output (" << i / s.n
                                                  << ", " << i % s.n << ") is " << (*out)[i] << " (unwritten?)";
            max_err = std::max(max_err, std::fabs((*out)[i] - ref[i]));
            norm += std::fabs((*out)[i]);
          }
          if (max_ref > 0) {
            EXPECT_GT(norm, 0) << impl->name() << which << " " << label << ": an all-zero output cannot pass";
            EXPECT_LE(max_err / max_ref, tolerance(dt, s.k) * impl->error_scale(dt)) << impl->name() << which << " " << label;
          } else {
            EXPECT_EQ(max_err, 0) << impl->name() << which << " " << label;
          }
        }
        if (::testing::Test::HasFailure()) return;  // one case's report is enough
        ++ran;
      }
  std::string summary;
  for (const auto& [why, count] : declined) summary += "\n  " + std::to_string(count) + "x " + why;
  // cuSPARSELt absent (no libcusparseLt.so.0 and no SB_CUSPARSELT_PATH): skip with the loader's reason.
  if (ran == 0 && impl->library() == "cusparselt") GTEST_SKIP() << impl->name() << " declined every case:" << summary;
  EXPECT_GT(ran, 0) << impl->name() << " ran no case; declined:" << summary;
  std::cout << "[ info ] " << impl->name() << ": " << ran << " cases ran; declined:" << summary << "\n";
}

INSTANTIATE_TEST_SUITE_P(Gpu, EveryGpuImpl, ::testing::ValuesIn(std::vector<std::string>(std::begin(kExpected), std::end(kExpected))),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// The GPU tests' double loop (W row-major [m x k], X [k x n], no bias) must agree with the
// project's own reference kernels (Role::reference): checked here, on the CPU, without a GPU.
TEST(GpuReference, DoubleLoopMatchesTheRegistryReference) {
  const std::int64_t m = 33, k = 67, n = 13;
  Rng rng(7);
  Tensor w = Tensor::empty({m, k});
  rng.fill_uniform(w, -1.f, 1.f);
  const Pattern p = Pattern::parse("unstructured");
  MaskResult mr = make_mask(w, p, 0.7);
  apply_mask(w, mr.mask);
  const SpmmWeight weight{w, mr.mask, p};
  const SpmmDesc d{m, k, n, false, false};
  const SpmmImpl* ref = nullptr;
  for (const auto& impl : SpmmRegistry::instance().all())
    if (impl->role() == Role::reference && impl->can_implement(d, weight, nullptr)) {
      ref = impl.get();
      break;
    }
  ASSERT_NE(ref, nullptr) << "no Role::reference implementation accepts an unstructured f32 case";
  std::vector<float> x(static_cast<std::size_t>(k * n)), y(static_cast<std::size_t>(m * n), NAN);
  for (float& v : x) v = rng.uniform(-1.f, 1.f);
  ref->initialize(d, weight)->run(x.data(), y.data(), nullptr);
  const float* wd = w.data<float>();
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t t = 0; t < n; ++t) {
      double acc = 0;
      for (std::int64_t j = 0; j < k; ++j) acc += static_cast<double>(wd[i * k + j]) * x[j * n + t];
      ASSERT_NEAR(y[i * n + t], acc, 1e-5 * (1 + std::fabs(acc))) << ref->name() << " at (" << i << ", " << t << ")";
    }
}

// A sequence of calls captured into a CUDA graph computes what the calls compute one by one:
// two different weights, each into its own (poisoned) Y, in one graph.
TEST(GpuTiming, GraphOfCallsComputesWhatTheCallsDo) {
  if (const std::string why = gpu_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  const GpuSpmmDesc d{96, 256, 16, GpuDType::f16};
  std::vector<const GpuSpmmImpl*> impls{find_gpu_impl("spmm_balanced_fast__cuda"), find_gpu_impl("cublaslt_gemm")};
  const Pattern p = Pattern::parse("balanced:bank=32");
  Rng rng(0x6a9);
  std::vector<float> x(static_cast<std::size_t>(d.k * d.n));
  for (float& v : x) v = round_to(rng.uniform(-1.f, 1.f), d.dtype);
  const std::vector<std::uint8_t> xb = to_storage(x.data(), x.size(), d.dtype);
  DeviceBuffer xd(xb.size());
  xd.upload(xb.data(), xb.size());
  std::vector<std::unique_ptr<GpuSpmmOp>> ops;
  std::vector<DeviceBuffer> ys;
  std::vector<std::vector<float>> expect;
  std::vector<GpuCall> calls;
  for (const GpuSpmmImpl* impl : impls) {
    ASSERT_NE(impl, nullptr);
    Tensor w = Tensor::empty({d.m, d.k});
    rng.fill_uniform(w, -1.f, 1.f);
    MaskResult mr = make_mask(w, p, 0.9);
    apply_mask(w, mr.mask);
    const SpmmWeight weight{w, mr.mask, p};
    ASSERT_TRUE(impl->can_implement(d, weight, nullptr)) << impl->name();
    ops.push_back(impl->initialize(d, weight));
    expect.emplace_back(static_cast<std::size_t>(d.m * d.n));
    run_on_host_data(*ops.back(), d, x.data(), expect.back().data());
    ys.emplace_back(static_cast<std::size_t>(d.m * d.n) * y_elem_bytes(d.dtype));
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    ys[i].fill_bytes(0xFF);
    calls.push_back({ops[i].get(), xd.get(), ys[i].get()});
  }
  std::string how;
  const Stats st = time_gpu_calls(calls, 1, 3, 0.0, true, &how);
  EXPECT_EQ(st.samples_ms.size(), 3u);
  EXPECT_NE(how.find("one CUDA graph"), std::string::npos) << how;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    std::vector<std::uint8_t> yb(ys[i].bytes());
    ys[i].download(yb.data(), yb.size());
    std::vector<float> y(expect[i].size());
    from_storage(yb.data(), y.size(), d.dtype, y.data());
    // The same computation as the eager call: equal up to one f16 rounding (a library may pick a
    // reduction order per call).
    double top = 0;
    for (float v : expect[i]) top = std::max(top, static_cast<double>(std::fabs(v)));
    for (std::size_t j = 0; j < y.size(); ++j)
      ASSERT_NEAR(y[j], expect[i][j], 2e-3 * top) << impls[i]->name() << ": element " << j << " of the graph's output";
  }
}

// --cache stream: every implementation that runs is timed over >= 8 copies; ours and cuBLAS in one
// CUDA graph (a library that cannot be captured is launched back to back and says so).
TEST(GpuTiming, StreamModeTimesCopiesInAGraph) {
  if (const std::string why = gpu_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  KernelBenchConfig cfg;
  cfg.shapes = {parse_shape("256x512x16")};
  cfg.patterns = {Pattern::parse("unstructured"), Pattern::parse("balanced:bank=32"), Pattern::parse("nm:2:4")};
  cfg.sparsities = {0.5};
  cfg.cache = CacheMode::stream;
  cfg.min_reps = 3;
  cfg.min_seconds = 0;
  cfg.warmup = 1;
  int ok = 0;
  for (const GpuKernelRecord& g : run_gpu_kernel_bench(cfg, GpuBenchOptions{})) {
    const KernelRecord& r = g.base;
    EXPECT_EQ(r.cache, CacheMode::stream);
    if (r.status.starts_with("skipped")) continue;
    ASSERT_TRUE(r.ok()) << r.impl << " " << r.pattern << ": " << r.status;
    ++ok;
    EXPECT_GE(r.copies, 8) << r.impl;
    EXPECT_GE(r.stats.samples_ms.size(), 3u) << r.impl;
    EXPECT_GT(r.stats.median_ms, 0) << r.impl;
    if (r.library == "sparsebench" || r.library == "cublas")
      EXPECT_NE(g.note.find("one CUDA graph"), std::string::npos) << r.impl << ": " << g.note;
    std::cout << "[ info ] " << r.impl << " " << r.pattern << ": " << g.note << "\n";
  }
  EXPECT_GT(ok, 0);
}

// The protocols' floors are measured (positive, finite); their sizes are for docs/PERFORMANCE.md.
TEST(GpuTiming, FloorIsMeasured) {
  if (const std::string why = gpu_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  const GpuTimingFloor f = measure_timing_floor(5);
  ASSERT_TRUE(f.why.empty()) << f.why;
  for (double v : {f.cold_us, f.hot_us, f.graph_us}) EXPECT_TRUE(std::isfinite(v) && v > 0) << v;
  std::cout << "[ info ] floor: cold " << f.cold_us << " us, hot " << f.hot_us << " us, graph " << f.graph_us << " us\n";
}

// Runs our CSR kernel with X at an address no allocation holds (64 TiB), then exits 0 if
// gpu_context_lost() names the error, 1 if not.
[[noreturn]] void lose_the_context() {
  const GpuSpmmDesc d{64, 64, 16, GpuDType::f16};
  Tensor w = Tensor::empty({d.m, d.k});
  Rng rng(0x10575);
  rng.fill_uniform(w, -1.f, 1.f);
  const Pattern p = Pattern::parse("unstructured");
  MaskResult mr = make_mask(w, p, 0.9);
  apply_mask(w, mr.mask);
  const std::unique_ptr<GpuSpmmOp> op = find_gpu_impl("spmm_csr_fast__cuda")->initialize(d, SpmmWeight{w, mr.mask, p});
  DeviceBuffer y(static_cast<std::size_t>(d.m * d.n) * y_elem_bytes(d.dtype));
  op->run(reinterpret_cast<const void*>(std::uintptr_t{1} << 46), y.get(), nullptr);
  const std::string lost = gpu_context_lost();
  std::fprintf(stderr, "lost: [%s]\n", lost.c_str());
  std::_Exit(lost.empty() ? 1 : 0);
}

// A kernel's illegal address is a sticky error: afterwards every CUDA call of the process fails.
// gpu_context_lost() names it, so that the sweep (run_gpu_kernel_bench) and the study stop there
// instead of writing every later case as failed, and the device script reruns without the kernel.
// In a child process (a death test runs this binary again), so that this one's context stays usable.
TEST(GpuContext, AnIllegalAddressIsReportedAsALostContext) {
  if (const std::string why = gpu_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  ASSERT_EQ(gpu_context_lost(), "");
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(lose_the_context(), ::testing::ExitedWithCode(0), "lost: \\[cudaError");
  EXPECT_EQ(gpu_context_lost(), "") << "this process's context, after the child's";
}

// cuDNN's convolution (the dense baseline of convolution layers in whole models) against a direct
// convolution in double (window, padding, dilation as PyTorch's Conv2d), on odd geometries, in
// every dtype whole models run in; Y poisoned before the call (run_conv_on_host_data), and read
// back in the lowered GEMM's [m x n] order. The op's own choice (layout, algorithm) is the one
// checked, as in the model benchmark.
TEST(GpuConv, CudnnMatchesADirectConvolution) {
  if (const std::string why = cudnn_unavailable_reason(); !why.empty()) GTEST_SKIP() << "cuDNN: " << why;
  struct Geo {
    std::int64_t b, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw;
  };
  const Geo geos[] = {
      {1, 3, 17, 17, 8, 3, 3, 2, 2, 1, 1, 1, 1},    // a stem: 3 channels, stride 2
      {2, 16, 7, 7, 24, 1, 1, 1, 1, 0, 0, 1, 1},    // pointwise, batch 2
      {1, 8, 9, 11, 5, 5, 3, 1, 2, 2, 1, 2, 1},     // non-square everything, dilation 2
      {1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1},  // a ResNet 3x3 block (Winograd territory)
      {3, 32, 8, 8, 40, 3, 3, 1, 1, 0, 0, 1, 1},    // no padding, batch 3
  };
  Rng rng(11);
  for (GpuDType dt : {GpuDType::f32, GpuDType::tf32, GpuDType::f16, GpuDType::bf16})
    for (const Geo& g : geos) {
      GpuConvDesc d;
      d.batch = g.b, d.in_channels = g.c, d.height = g.h, d.width = g.w, d.out_channels = g.o;
      d.kernel = {g.kh, g.kw}, d.stride = {g.sh, g.sw}, d.padding = {g.ph, g.pw}, d.dilation = {g.dh, g.dw};
      d.dtype = dt;
      ASSERT_EQ(check_conv_desc(d), "");
      std::vector<float> w(static_cast<std::size_t>(d.gemm_m() * d.gemm_k()));
      std::vector<float> img(static_cast<std::size_t>(d.input_elems()));
      for (float& v : w) v = round_to(rng.uniform(-1.f, 1.f), dt);
      for (float& v : img) v = round_to(rng.uniform(-1.f, 1.f), dt);
      const std::unique_ptr<GpuConvOp> op = make_cudnn_conv(d, w.data());
      const std::int64_t oh = d.out_h(), ow = d.out_w(), n = d.gemm_n();
      std::vector<float> y(static_cast<std::size_t>(d.gemm_m() * n));
      run_conv_on_host_data(*op, d, img.data(), y.data());
      double max_err = 0, max_ref = 0;
      for (std::int64_t b = 0; b < g.b; ++b)
        for (std::int64_t o = 0; o < g.o; ++o)
          for (std::int64_t i = 0; i < oh; ++i)
            for (std::int64_t j = 0; j < ow; ++j) {
              double acc = 0;
              for (std::int64_t c = 0; c < g.c; ++c)
                for (std::int64_t r = 0; r < g.kh; ++r)
                  for (std::int64_t s = 0; s < g.kw; ++s) {
                    const std::int64_t yy = i * g.sh - g.ph + r * g.dh, xx = j * g.sw - g.pw + s * g.dw;
                    if (yy >= 0 && yy < g.h && xx >= 0 && xx < g.w)
                      acc += static_cast<double>(w[((o * g.c + c) * g.kh + r) * g.kw + s]) *
                             img[((b * g.c + c) * g.h + yy) * g.w + xx];
                  }
              const float got = y[o * n + (b * oh + i) * ow + j];
              ASSERT_TRUE(std::isfinite(got)) << "unwritten output at (" << b << ", " << o << ", " << i << ", " << j
                                              << "): " << op->note();
              max_err = std::max(max_err, std::fabs(got - acc));
              max_ref = std::max(max_ref, std::fabs(acc));
            }
      EXPECT_LE(max_err / max_ref, tolerance(dt, d.gemm_k()) * op->error_scale())
          << gpu_dtype_name(dt) << " " << g.b << "x" << g.c << "x" << g.h << "x" << g.w << " -> " << g.o << ", "
          << g.kh << "x" << g.kw << ": " << op->note();
      EXPECT_EQ(op->weight_bytes(), static_cast<std::size_t>(d.gemm_m() * d.gemm_k()) * x_elem_bytes(dt));
    }
}

TEST(GpuList, HoldsEveryExpectedImplementation) {
  if (const std::string why = gpu_unavailable_reason(); why.find("built without CUDA") != std::string::npos)
    GTEST_SKIP() << why;
  for (const char* name : kExpected) EXPECT_NE(find_gpu_impl(name), nullptr) << name;
}

TEST(GpuList, NoGpuMeansSkipWithTheRuntimeReason) {
  const std::string why = gpu_unavailable_reason();
  if (why.empty()) GTEST_SKIP() << "a GPU is visible";
  // The reason names what failed, so a skipped suite says why (not an empty "unavailable").
  EXPECT_GT(why.size(), std::string("unavailable: ").size()) << why;
}

}  // namespace
}  // namespace sb::gpu
