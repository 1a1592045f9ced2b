// Our GPU kernels (balanced / N:M simple, fast, GEMV, split-K; CSR simple, fast, split-K; the i8
// transpose of the library i8 paths) run on the
// CPU emulator (tests/cuda/emu/cuda_emu.h): the kernel sources and launchers exactly as the GPU
// build compiles them, every thread of every block, checked against a double-accumulated
// reference on fresh random data with NaN-poisoned outputs and shapes off every tile. This runs in
// CI, which has no GPU; test_cuda runs the same kernels on a GPU where there is one. Built with
// AddressSanitizer where the compiler has it, so an out-of-bounds read or write fails the test.
#include "emu/cuda_emu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/csr_pack.h"
#include "kernels/cuda/spmm_balanced.cuh"
#include "kernels/cuda/spmm_common.cuh"  // launch_kernel, dynamic_smem, allow_smem
#include "kernels/cuda/spmm_csr.cuh"
#include "cuda/random_weights.h"

#if defined(__SANITIZE_ADDRESS__)
// The fibers' stacks are mapped once and kept: nothing to report at exit.
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
#endif

namespace sb::gpu {

// transpose.cu (declared for the library wrappers in cuda_check.h, which needs the CUDA runtime).
cudaError_t launch_transpose_i8(const void* in, void* out, long long rows, long long cols, cudaStream_t stream);

namespace {

template <class T>
struct Storage;
template <>
struct Storage<__half> {
  static constexpr const char* name = "f16";
  static constexpr bool bf16 = false;
  static __half from(float v) { return __float2half_rn(v); }
  static float to(__half v) { return __half2float(v); }
  static double tolerance(std::int64_t k) { return 1e-3 + 4e-7 * std::sqrt(static_cast<double>(k)); }
};
template <>
struct Storage<__nv_bfloat16> {
  static constexpr const char* name = "bf16";
  static constexpr bool bf16 = true;
  static __nv_bfloat16 from(float v) { return __float2bfloat16_rn(v); }
  static float to(__nv_bfloat16 v) { return __bfloat162float(v); }
  static double tolerance(std::int64_t k) { return 8e-3 + 4e-7 * std::sqrt(static_cast<double>(k)); }
};

template <class T>
float round_to(float v) {
  return Storage<T>::to(Storage<T>::from(v));
}

template <class T>
std::vector<T> to_storage(const std::vector<float>& v, std::size_t at_least = 0) {
  std::vector<T> out(std::max(v.size(), at_least), Storage<T>::from(0.f));
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = Storage<T>::from(v[i]);
  return out;
}

// NaN in f16 and bf16 alike (all bits set): an output the kernel leaves unwritten shows.
template <class T>
std::vector<T> poisoned(std::size_t count) {
  std::vector<T> y(count);
  std::memset(static_cast<void*>(y.data()), 0xFF, count * sizeof(T));
  return y;
}

// A weight already rounded to T, with its mask (row-major m x k).
struct Weight {
  std::int64_t m = 0, k = 0;
  std::vector<float> values;
  std::vector<std::uint8_t> kept;
};

// Bank-balanced (random_weights.h), one bank in eight keeping fewer, values rounded to T.
template <class T>
Weight balanced_weight(std::int64_t m, std::int64_t k, int bank, int kb, std::mt19937_64& rng) {
  test_data::BalancedWeight bw = test_data::random_balanced(m, k, bank, kb, rng, 8);
  for (float& v : bw.w) v = round_to<T>(v);
  return Weight{m, k, std::move(bw.w), std::move(bw.kept)};
}

// Unstructured at `density`, with rows of very different lengths (some empty, one full).
template <class T>
Weight unstructured_weight(std::int64_t m, std::int64_t k, double density, std::mt19937_64& rng) {
  Weight w{m, k, std::vector<float>(static_cast<std::size_t>(m * k), 0.f), std::vector<std::uint8_t>(static_cast<std::size_t>(m * k), 0)};
  std::uniform_real_distribution<float> val(-1.f, 1.f);
  std::uniform_real_distribution<double> u(0., 1.);
  for (std::int64_t r = 0; r < m; ++r) {
    const double d = r % 7 == 3 ? 0.0 : r == m / 2 ? 1.0 : density * (0.25 + 1.5 * u(rng));
    for (std::int64_t j = 0; j < k; ++j)
      if (u(rng) < d) {
        w.kept[r * k + j] = 1;
        w.values[r * k + j] = round_to<T>(val(rng));
      }
  }
  return w;
}

template <class T>
std::vector<float> random_x(std::int64_t k, std::int64_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> val(-1.f, 1.f);
  std::vector<float> x(static_cast<std::size_t>(k * n));
  for (float& v : x) v = round_to<T>(val(rng));
  return x;
}

std::vector<double> reference(const Weight& w, const std::vector<float>& x, std::int64_t n) {
  std::vector<double> y(static_cast<std::size_t>(w.m * n), 0.0);
  for (std::int64_t r = 0; r < w.m; ++r)
    for (std::int64_t j = 0; j < w.k; ++j)
      if (w.kept[r * w.k + j])
        for (std::int64_t c = 0; c < n; ++c) y[r * n + c] += double(w.values[r * w.k + j]) * x[j * n + c];
  return y;
}

// max |y - ref| / max |ref| (infinite where y has a NaN: a poisoned output left unwritten).
template <class T>
double relative_error(const std::vector<double>& ref, const std::vector<T>& y) {
  double top = 1e-30, err = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double v = Storage<T>::to(y[i]);
    if (!std::isfinite(v)) return std::numeric_limits<double>::infinity();
    top = std::max(top, std::fabs(ref[i]));
    err = std::max(err, std::fabs(v - ref[i]));
  }
  return err / top;
}

struct Shape {
  std::int64_t m, k, n;
};
// Off every tile: n = 1 (GEMV: tails alone, one and two groups of 128 banks), n = 2, 3, 13, 17,
// 33 (skinny column counts and scalar tails), n = 200 and 130 (CSR's tiled kernel), n % 8 == 0
// with several k-slices and short last slices (split-K), a partial last bank everywhere k allows;
// k = 11008 as in the device script's LLM-class layers (the GEMV's X above 48 KB of shared memory).
const Shape kShapes[] = {{1, 1, 1},      {7, 13, 1},     {33, 67, 13},  {67, 129, 200}, {129, 67, 1},
                         {96, 256, 16},  {128, 128, 2},  {20, 520, 17}, {24, 9000, 3},  {32, 3072, 1},
                         {40, 4200, 1},  {300, 4096, 1}, {130, 4100, 16}, {50, 3000, 24}, {64, 2500, 8},
                         {17, 9000, 1},  {45, 700, 130}, {9, 33000, 1},  {50, 11008, 1}, {70, 11008, 16},
                         // k under the bank, n >= 8: banks of 20 and 9 columns, so the tensor-core
                         // kernels' tiles are 160 and 144 columns wide (at 3 kept a bank)
                         {19, 20, 9},    {5, 9, 8}};

struct BalancedCase {
  int bank, kb;
  const char* what;
};
const BalancedCase kBalanced[] = {{32, 3, "balanced bank 32 at 90 %"},  {8, 4, "balanced bank 8 at 50 %"},
                                  {256, 26, "balanced bank 256 at 90 %"}, {64, 6, "balanced bank 64 at 90 %"},
                                  {4, 2, "N:M 2:4"},                     {8, 1, "N:M 1:8"},
                                  // odd kb above 8: the tensor-core kernel pads it (13 -> 14 slots)
                                  // and takes tiles of 4 banks (128 columns, 56 entries a row)
                                  {32, 13, "balanced bank 32, 13 kept"}};

std::mt19937_64 fresh_rng(std::uint64_t* seed) {
  *seed = (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  return std::mt19937_64(*seed);
}

enum class Kernels { simple_fast, gemv, splitk };

template <class T>
void check_balanced(const Shape& s, const BalancedCase& c, Kernels which, bool every_plan = false) {
  std::uint64_t seed = 0;
  std::mt19937_64 rng = fresh_rng(&seed);
  SCOPED_TRACE(::testing::Message() << Storage<T>::name << " " << c.what << " m " << s.m << " k " << s.k << " n "
                                    << s.n << " seed " << seed);
  const int bank = static_cast<int>(std::min<std::int64_t>(c.bank, s.k));
  const Weight w = balanced_weight<T>(s.m, s.k, bank, c.kb, rng);
  const std::vector<float> xf = random_x<T>(s.k, s.n, rng);
  const std::vector<double> ref = reference(w, xf, s.n);
  const std::vector<T> x = to_storage<T>(xf);
  const int kb = max_kept_per_bank(s.m, s.k, bank, w.kept.data());
  const double tol = Storage<T>::tolerance(s.k);

  // simple and fast (any n), staged (n = 1) and tc (n >= 8), as BalancedOp packs them.
  if (which == Kernels::simple_fast) {
    // The fast layout with `per_bank` slots a bank (the storage d points at: values, offsets).
    auto pack = [&](int per_bank, std::vector<T>* values, std::vector<std::uint8_t>* offsets) {
      BalancedDevice d = balanced_device_layout(s.m, s.k, s.n, bank, per_bank);
      const BalancedPacked p = pack_balanced_rows(d, w.values.data(), w.kept.data());
      *values = to_storage<T>(p.values, 16 / sizeof(T));
      *offsets = p.offsets;
      offsets->resize(std::max<std::size_t>(offsets->size(), 16), 0);
      d.values = values->data();
      d.offsets = offsets->data();
      return d;
    };
    std::vector<T> values;
    std::vector<std::uint8_t> offsets;
    const BalancedDevice d = pack(kb, &values, &offsets);
    for (BalancedVariant v : {BalancedVariant::simple, BalancedVariant::fast}) {
      SCOPED_TRACE(v == BalancedVariant::simple ? "simple" : "fast");
      std::vector<T> y = poisoned<T>(static_cast<std::size_t>(s.m * s.n));
      ASSERT_EQ(launch_spmm_balanced(d, x.data(), y.data(), Storage<T>::bf16, v, nullptr), cudaSuccess) << emu::last_failure();
      EXPECT_LE(relative_error(ref, y), tol);
    }
    // tc (n >= 8, banks of at most 32: tensor cores, the MMA emulated from its fragment layout),
    // packed as BalancedOp packs it: kb padded by tc_padded_kb.
    if (s.n >= 8 && bank <= kTcMaxBank) {
      SCOPED_TRACE(::testing::Message() << "tc, " << tc_padded_kb(kb) << " slots a bank");
      std::vector<T> tc_values;
      std::vector<std::uint8_t> tc_offsets;
      BalancedDevice tc_d = pack(tc_padded_kb(kb), &tc_values, &tc_offsets);
      // As BalancedOp plans it (the model's plan, or with every_plan each plan it times at
      // initialize); a sliced k's workspace poisoned: every block must write its part.
      const TcLayout model = tc_plan(s.m, s.n, s.k, bank, tc_d.kb);
      for (const TcLayout& plan : every_plan ? tc_candidates(model, s.m, s.n, emu::device().smem_optin, INT64_MAX)
                                             : std::vector<TcLayout>{model}) {
        tc_d.tc = plan;
        SCOPED_TRACE(::testing::Message() << tc_slices_note(tc_d.tc) << ", " << tc_d.tc.ksplit << " warp groups");
        std::vector<float> ws(static_cast<std::size_t>(tc_workspace_floats(tc_d.tc, s.m, s.n)),
                              std::numeric_limits<float>::quiet_NaN());
        tc_d.workspace = ws.empty() ? nullptr : ws.data();
        std::vector<T> y = poisoned<T>(static_cast<std::size_t>(s.m * s.n));
        ASSERT_EQ(launch_spmm_balanced(tc_d, x.data(), y.data(), Storage<T>::bf16, BalancedVariant::tc, nullptr), cudaSuccess)
            << emu::last_failure();
        EXPECT_LE(relative_error(ref, y), tol);
      }
    }
    // staged (n = 1), where its X fits the device's shared memory (as the implementation checks).
    if (s.n == 1 && staged_smem_bytes(s.k) <= emu::device().smem_optin) {
      // The rule's block size (threads 0), or with every_plan each size the op times.
      for (int threads : every_plan ? staged_thread_candidates(s.m, staged_lanes(d.row_stride / 8), emu::device().sm_count)
                                    : std::vector<int>{0}) {
        SCOPED_TRACE(::testing::Message() << "staged, blocks of " << threads << " threads (0: the rule's)");
        BalancedDevice t = d;
        t.threads = threads;
        std::vector<T> y = poisoned<T>(static_cast<std::size_t>(s.m));
        ASSERT_EQ(launch_spmm_balanced(t, x.data(), y.data(), Storage<T>::bf16, BalancedVariant::staged, nullptr), cudaSuccess)
            << emu::last_failure();
        EXPECT_LE(relative_error(ref, y), tol);
      }
    }
  }
  // GEMV (n = 1), where its X fits the device's shared memory (as the implementation checks).
  if (which == Kernels::gemv && s.n == 1) {
    const GemvLayout l = make_gemv_layout(s.k, bank, kb);
    if (gemv_smem_bytes(l) <= emu::device().smem_optin) {
      SCOPED_TRACE("gemv");
      const BalancedPacked p = pack_gemv(l, s.m, w.values.data(), w.kept.data());
      const std::vector<T> values = to_storage<T>(p.values, 16 / sizeof(T));
      std::vector<std::uint8_t> offsets = p.offsets;
      offsets.resize(std::max<std::size_t>(offsets.size(), 16), 0);
      BalancedGemvDevice d;
      d.values = values.data();
      d.offsets = offsets.data();
      d.m = s.m;
      d.layout = l;
      std::vector<T> y = poisoned<T>(static_cast<std::size_t>(s.m));
      ASSERT_EQ(launch_spmm_balanced_gemv(d, x.data(), y.data(), Storage<T>::bf16, nullptr), cudaSuccess) << emu::last_failure();
      EXPECT_LE(relative_error(ref, y), tol);
    }
  }
  // Split-K (n % 8 == 0, banks of at most 64): twice, the workspace zero again after each call.
  if (which == Kernels::splitk && s.n % 8 == 0 && bank <= 64) {
    SCOPED_TRACE("splitk");
    const SplitkLayout l = make_splitk_layout(s.k, bank, kb, s.n);
    const BalancedPacked p = pack_splitk(l, s.m, w.values.data(), w.kept.data());
    const std::vector<T> values = to_storage<T>(p.values, 16 / sizeof(T));
    std::vector<std::uint8_t> offsets = p.offsets;
    offsets.resize(std::max<std::size_t>(offsets.size(), 16), 0);
    std::vector<float> workspace(static_cast<std::size_t>(s.m * s.n), 0.f);
    BalancedSplitkDevice d;
    d.values = values.data();
    d.offsets = offsets.data();
    d.workspace = workspace.data();
    d.m = s.m;
    d.n = s.n;
    d.layout = l;
    for (int call = 0; call < 2; ++call) {
      std::vector<T> y = poisoned<T>(static_cast<std::size_t>(s.m * s.n));
      ASSERT_EQ(launch_spmm_balanced_splitk(d, x.data(), y.data(), Storage<T>::bf16, nullptr), cudaSuccess)
          << emu::last_failure();
      EXPECT_LE(relative_error(ref, y), tol) << "call " << call;
      EXPECT_TRUE(std::all_of(workspace.begin(), workspace.end(), [](float v) { return v == 0.f; }))
          << "the workspace is not zero after call " << call;
    }
  }
}

template <class T>
void check_csr(const Shape& s, double density, Kernels which, bool every_plan = false) {
  std::uint64_t seed = 0;
  std::mt19937_64 rng = fresh_rng(&seed);
  SCOPED_TRACE(::testing::Message() << Storage<T>::name << " unstructured density " << density << " m " << s.m << " k "
                                    << s.k << " n " << s.n << " seed " << seed);
  const Weight w = unstructured_weight<T>(s.m, s.k, density, rng);
  const std::vector<float> xf = random_x<T>(s.k, s.n, rng);
  const std::vector<double> ref = reference(w, xf, s.n);
  const std::vector<T> x = to_storage<T>(xf);
  const double tol = Storage<T>::tolerance(s.k);
  if (which == Kernels::simple_fast) {
    const CsrPadded p = pack_csr_padded(s.m, s.k, w.values.data(), w.kept.data());
    const std::vector<T> values = to_storage<T>(p.values, 16 / sizeof(T));
    std::vector<std::uint16_t> cols = p.cols;
    cols.resize(std::max<std::size_t>(cols.size(), 8), 0);
    CsrDevice d;
    d.values = values.data();
    d.cols = cols.data();
    d.row_ptr = p.row_ptr.data();
    d.row_order = p.order.data();
    d.m = s.m;
    d.k = s.k;
    d.n = s.n;
    d.mean_row = p.mean_row;
    std::vector<CsrVariant> variants = {CsrVariant::simple, CsrVariant::fast};
    if (s.n == 1 && staged_smem_bytes(s.k) <= emu::device().smem_optin) variants.push_back(CsrVariant::staged);
    for (CsrVariant v : variants) {
      SCOPED_TRACE(v == CsrVariant::simple ? "simple" : v == CsrVariant::fast ? "fast" : "staged");
      // staged: the rule's block size (threads 0), or with every_plan each size the op times.
      for (int threads : v == CsrVariant::staged && every_plan
                             ? staged_thread_candidates(s.m, staged_lanes(d.mean_row / 8), emu::device().sm_count)
                             : std::vector<int>{0}) {
        SCOPED_TRACE(::testing::Message() << "blocks of " << threads << " threads (0: the rule's)");
        CsrDevice t = d;
        t.threads = threads;
        std::vector<T> y = poisoned<T>(static_cast<std::size_t>(s.m * s.n));
        ASSERT_EQ(launch_spmm_csr(t, x.data(), y.data(), Storage<T>::bf16, v, nullptr), cudaSuccess) << emu::last_failure();
        EXPECT_LE(relative_error(ref, y), tol);
      }
    }
  }
  if (which == Kernels::simple_fast && s.n >= 8) {
    SCOPED_TRACE("tc");
    const CsrTcPacked p = pack_csr_tc(s.m, s.k, w.values.data(), w.kept.data());
    const std::vector<T> values = to_storage<T>(p.values, 16 / sizeof(T));
    std::vector<std::uint16_t> places = p.places;
    places.resize(std::max<std::size_t>(places.size(), 8), 0);
    CsrTcDevice d;
    d.values = values.data();
    d.places = places.data();
    d.ptr = p.ptr.data();
    d.m = s.m;
    d.k = s.k;
    d.n = s.n;
    d.kt = p.kt;
    d.max_chunks = p.max_chunks;
    const TcLayout model = csr_tc_plan(s.m, s.n, s.k, p.kt);
    for (const TcLayout& plan : every_plan ? tc_candidates(model, s.m, s.n, emu::device().smem_optin, INT64_MAX)
                                           : std::vector<TcLayout>{model}) {
      d.layout = plan;
      SCOPED_TRACE(::testing::Message() << tc_slices_note(d.layout) << ", " << d.layout.ksplit << " warp groups");
      std::vector<float> ws(static_cast<std::size_t>(tc_workspace_floats(d.layout, s.m, s.n)), std::numeric_limits<float>::quiet_NaN());
      d.workspace = ws.empty() ? nullptr : ws.data();
      std::vector<T> y = poisoned<T>(static_cast<std::size_t>(s.m * s.n));
      ASSERT_EQ(launch_spmm_csr_tc(d, x.data(), y.data(), Storage<T>::bf16, nullptr), cudaSuccess) << emu::last_failure();
      EXPECT_LE(relative_error(ref, y), tol);
    }
  }
  if (which == Kernels::splitk && s.n % 8 == 0) {
    SCOPED_TRACE("splitk");
    const CsrSplitkLayout l = make_csr_splitk_layout(s.m, s.k, s.n);
    const CsrSplitkPacked p = pack_csr_splitk(l, w.values.data(), w.kept.data());
    const std::vector<T> values = to_storage<T>(p.values, 16 / sizeof(T));
    std::vector<std::uint16_t> cols = p.cols;
    cols.resize(std::max<std::size_t>(cols.size(), 8), 0);
    std::vector<float> workspace(static_cast<std::size_t>(s.m * s.n), 0.f);
    CsrSplitkDevice d;
    d.values = values.data();
    d.cols = cols.data();
    d.ptr = p.ptr.data();
    d.workspace = workspace.data();
    d.n = s.n;
    d.layout = l;
    for (int call = 0; call < 2; ++call) {
      std::vector<T> y = poisoned<T>(static_cast<std::size_t>(s.m * s.n));
      ASSERT_EQ(launch_spmm_csr_splitk(d, x.data(), y.data(), Storage<T>::bf16, nullptr), cudaSuccess) << emu::last_failure();
      EXPECT_LE(relative_error(ref, y), tol) << "call " << call;
      EXPECT_TRUE(std::all_of(workspace.begin(), workspace.end(), [](float v) { return v == 0.f; }))
          << "the workspace is not zero after call " << call;
    }
  }
}

void check_balanced_all(Kernels which) {
  for (const Shape& s : kShapes)
    for (const BalancedCase& c : kBalanced) {
      check_balanced<__half>(s, c, which);
      check_balanced<__nv_bfloat16>(s, c, which);
    }
}

void check_csr_all(Kernels which) {
  for (const Shape& s : kShapes)
    for (double density : {0.5, 0.1, 0.01}) {
      if (s.k > 65536) continue;  // u16 columns (the implementation declines larger k)
      check_csr<__half>(s, density, which);
      check_csr<__nv_bfloat16>(s, density, which);
    }
}

TEST(GpuEmu, BalancedSimpleAndFastMatchTheReference) { check_balanced_all(Kernels::simple_fast); }
TEST(GpuEmu, BalancedGemvMatchesTheReference) { check_balanced_all(Kernels::gemv); }
TEST(GpuEmu, BalancedSplitKMatchesTheReference) { check_balanced_all(Kernels::splitk); }
TEST(GpuEmu, CsrSimpleAndFastMatchTheReference) { check_csr_all(Kernels::simple_fast); }
TEST(GpuEmu, CsrSplitKMatchesTheReference) { check_csr_all(Kernels::splitk); }

// The layers of the device script's sweeps (BERT-base, and LLM-class k with fewer rows), its
// patterns (balanced bank 32 and N:M 1:8 at 90 %, unstructured at 90 %), f16, every variant. ctest
// also runs this case with SB_EMU_SMS=132, so that the launchers pick the grids an H100 gets.
TEST(GpuEmu, DeviceScriptLayers) {
  const Shape shapes[] = {{768, 768, 1},  {3072, 768, 1},  {768, 3072, 1},  {768, 768, 16}, {3072, 768, 16},
                          {768, 3072, 16}, {96, 4096, 1},  {96, 11008, 1},  {96, 4096, 16}, {96, 11008, 16}};
  const BalancedCase patterns[] = {{32, 3, "balanced bank 32 at 90 %"}, {8, 1, "N:M 1:8"}};
  SCOPED_TRACE(::testing::Message() << emu::device().sm_count << " SMs");
  for (const Shape& s : shapes) {
    for (const BalancedCase& c : patterns)
      for (Kernels which : {Kernels::simple_fast, Kernels::gemv, Kernels::splitk}) check_balanced<__half>(s, c, which);
    for (Kernels which : {Kernels::simple_fast, Kernels::splitk}) check_csr<__half>(s, 0.1, which);
  }
}

// Every plan our ops time at initialize (autotune.h), not only the launchers' models: the
// tensor-core kernels' (tc_candidates: k in 1 to 12 slices, 1 to 4 warp groups) and the staged
// kernels' block sizes (staged_thread_candidates). The op keeps whichever is fastest on the device,
// so each must compute the product.
TEST(GpuEmu, TimedPlansAllComputeTheProduct) {
  for (const Shape& s : {Shape{130, 3000, 16}, Shape{300, 4096, 1}, Shape{40, 11008, 1}}) {  // 130 x 3000: 12 tiles, 14 plans
    check_balanced<__half>(s, {32, 3, "balanced bank 32 at 90 %"}, Kernels::simple_fast, true);
    check_balanced<__nv_bfloat16>(s, {8, 1, "N:M 1:8"}, Kernels::simple_fast, true);
    check_csr<__half>(s, 0.1, Kernels::simple_fast, true);
  }
}

TEST(GpuEmu, I8TransposeIsExact) {
  std::uint64_t seed = 0;
  std::mt19937_64 rng = fresh_rng(&seed);
  for (const auto& [rows, cols] : std::vector<std::pair<long long, long long>>{{1, 1}, {33, 65}, {100, 7}, {64, 32}, {4096, 16}, {5, 300}}) {
    SCOPED_TRACE(::testing::Message() << rows << " x " << cols << " seed " << seed);
    std::vector<std::int8_t> in(static_cast<std::size_t>(rows * cols)), out(in.size(), 0x5A);
    for (auto& v : in) v = static_cast<std::int8_t>(rng());
    ASSERT_EQ(launch_transpose_i8(in.data(), out.data(), rows, cols, nullptr), cudaSuccess) << emu::last_failure();
    long long wrong = 0;
    for (long long r = 0; r < rows; ++r)
      for (long long c = 0; c < cols; ++c) wrong += out[c * rows + r] != in[r * cols + c];
    EXPECT_EQ(wrong, 0);
  }
}

// The emulator itself: what it must report rather than pass or hang.

__global__ void shuffle_kernel(int* out, int width) {
  const int lane = threadIdx.x % 32;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1, width) * 100 +
                     __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 16, width) - lane;
}

TEST(GpuEmu, ShufflesFollowCuda) {
  std::vector<int> out(64, -1);
  for (int width : {32, 8}) {
    ASSERT_EQ(launch_kernel(shuffle_kernel, 1, 64, 0, nullptr, out.data(), width), cudaSuccess) << emu::last_failure();
    for (int t = 0; t < 64; ++t) {
      const int lane = t % 32;
      // With width 8, xor 16 may read an earlier group of 8 lanes but not a later one: CUDA returns
      // the lane's own value then (PTX shfl.bfly: the source must not pass the segment's end).
      const int far = width == 8 && (lane ^ 16) / 8 > lane / 8 ? t : t ^ 16;
      EXPECT_EQ(out[t], (t ^ 1) * 100 + far - lane) << "thread " << t << " width " << width;
    }
  }
}

__global__ void divergent_barrier(int* out) {
  if (threadIdx.x < 40) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void early_exit_shuffle(float* out) {
  if (threadIdx.x % 32 == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.f, 1);
}

TEST(GpuEmu, UndefinedSynchronizationIsReportedNotHung) {
  std::vector<int> out(128, 0);
  EXPECT_EQ(launch_kernel(divergent_barrier, 1, 128, 0, nullptr, out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(emu::last_failure().find("__syncthreads"), std::string::npos) << emu::last_failure();
  std::vector<float> f(64, 0.f);
  EXPECT_EQ(launch_kernel(early_exit_shuffle, 1, 64, 0, nullptr, f.data()), cudaErrorLaunchFailure);
  EXPECT_NE(emu::last_failure().find("exited"), std::string::npos) << emu::last_failure();
}

__global__ void read_smem(float* out) {
  float* s = dynamic_smem<float>();
  if (threadIdx.x == 0) s[0] = 1.f;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}

__global__ void vector_load(const std::uint8_t* p, unsigned* out) {
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
  out[threadIdx.x] = v.x;
}

TEST(GpuEmu, LaunchRulesAndPoisonedSharedMemory) {
  std::vector<float> out(64, 0.f);
  ASSERT_EQ(launch_kernel(read_smem, 1, 64, 64 * sizeof(float), nullptr, out.data()), cudaSuccess) << emu::last_failure();
  EXPECT_EQ(out[0], 1.f);
  EXPECT_TRUE(std::isnan(out[1])) << "shared memory nobody wrote must read as NaN";
  // Above 48 KB only with the opt-in attribute, and never above the device's limit.
  const std::size_t big = 100 << 10;
  EXPECT_EQ(launch_kernel(read_smem, 1, 64, big, nullptr, out.data()), cudaErrorInvalidValue);
  EXPECT_EQ(allow_smem(read_smem, big), cudaSuccess);
  EXPECT_EQ(launch_kernel(read_smem, 1, 64, big, nullptr, out.data()), cudaSuccess) << emu::last_failure();
  EXPECT_NE(allow_smem(read_smem, emu::device().smem_optin + 16), cudaSuccess);
  EXPECT_EQ(launch_kernel(read_smem, dim3(1, 70000), 64, 0, nullptr, out.data()), cudaErrorInvalidConfiguration);
  EXPECT_EQ(launch_kernel(read_smem, 1, 2048, 0, nullptr, out.data()), cudaErrorInvalidConfiguration);
  // A 16-byte load from an address that is not a multiple of 16 faults on a GPU.
  alignas(16) std::uint8_t bytes[48] = {};
  std::vector<unsigned> u(32, 0);
  EXPECT_EQ(launch_kernel(vector_load, 1, 32, 0, nullptr, bytes + 16, u.data()), cudaSuccess) << emu::last_failure();
  EXPECT_EQ(launch_kernel(vector_load, 1, 32, 0, nullptr, bytes + 8, u.data()), cudaErrorLaunchFailure);
  EXPECT_NE(emu::last_failure().find("misaligned"), std::string::npos) << emu::last_failure();
}

}  // namespace
}  // namespace sb::gpu
