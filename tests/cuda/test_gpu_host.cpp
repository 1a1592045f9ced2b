// The GPU backend's device-independent parts: storage conversions, rounding, summaries, the
// unavailable paths. These run on every machine (no GPU needed).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>

#include "sparsebench/core/error.h"
#include "kernels/cuda/fast_div.h"
#include "sparsebench/kernels/cuda_spmm.h"

namespace sb::gpu {
namespace {

TEST(GpuHost, DTypeNamesRoundTrip) {
  for (GpuDType t : {GpuDType::f32, GpuDType::tf32, GpuDType::f16, GpuDType::bf16, GpuDType::i8})
    EXPECT_EQ(parse_gpu_dtype(gpu_dtype_name(t)), t);
  EXPECT_THROW(parse_gpu_dtype("fp16"), Error);
}

TEST(GpuHost, StorageRoundTripIsRounding) {
  const float src[] = {0.f, 1.f, -2.5f, 3.14159265f, 1e-3f, 65504.f, -0.3333333f};
  for (GpuDType t : {GpuDType::f32, GpuDType::tf32, GpuDType::f16, GpuDType::bf16}) {
    const auto bytes = to_storage(src, std::size(src), t);
    ASSERT_EQ(bytes.size(), std::size(src) * x_elem_bytes(t));
    float back[std::size(src)];
    from_storage(bytes.data(), std::size(src), t, back);
    for (std::size_t i = 0; i < std::size(src); ++i) {
      // tf32 is stored as f32: the rounding to 10 bits happens in the tensor cores.
      const float want = t == GpuDType::tf32 ? src[i] : round_to(src[i], t);
      EXPECT_EQ(back[i], want) << gpu_dtype_name(t) << " element " << i;
      const double rel = std::fabs(round_to(src[i], t) - src[i]) / std::max(1e-30, std::fabs(double(src[i])));
      const double ulp = t == GpuDType::f32 ? 0 : t == GpuDType::bf16 ? 1.0 / 256 : 1.0 / 2048;
      EXPECT_LE(rel, ulp) << gpu_dtype_name(t) << " element " << i;
    }
  }
}

TEST(GpuHost, Tf32RoundsToTenMantissaBits) {
  const float v = 1.f + 1.f / 4096.f;  // below half an ulp of tf32 (2^-10): rounds to 1
  EXPECT_EQ(round_to(v, GpuDType::tf32), 1.f);
  EXPECT_EQ(round_to(1.f + 1.f / 1024.f, GpuDType::tf32), 1.f + 1.f / 1024.f);
}

TEST(GpuHost, I8ClampsAndRounds) {
  const float src[] = {1.4f, -1.6f, 300.f, -300.f};
  const auto bytes = to_storage(src, 4, GpuDType::i8);
  EXPECT_EQ(static_cast<std::int8_t>(bytes[0]), 1);
  EXPECT_EQ(static_cast<std::int8_t>(bytes[1]), -2);
  EXPECT_EQ(static_cast<std::int8_t>(bytes[2]), 127);
  EXPECT_EQ(static_cast<std::int8_t>(bytes[3]), -127);
}

TEST(GpuHost, GeometricMeansPerSet) {
  std::vector<GpuKernelRecord> recs;
  for (double s : {2.0, 8.0}) {
    GpuKernelRecord r;
    r.base.set = "rn50/magnitude_pruning/0.9";
    r.base.pattern = "unstructured";
    r.base.impl = "spmm_csr_fast__cuda";
    r.base.status = "ok";
    r.base.speedup = s;
    r.speedup_vs_cusparse = s / 2;
    r.dtype = "f16";
    recs.push_back(r);
  }
  const auto sums = summarize_gpu_speedups(recs);
  ASSERT_EQ(sums.size(), 1u);
  EXPECT_EQ(sums[0].count, 2);
  EXPECT_NEAR(sums[0].geomean_vs_cublas, 4.0, 1e-12);
  EXPECT_NEAR(sums[0].geomean_vs_cusparse, 2.0, 1e-12);
  const auto j = to_json(sums[0]);
  EXPECT_EQ(j["dtype"], "f16");
}

TEST(GpuHost, UnavailableIsReportedNotThrown) {
  const std::string why = gpu_unavailable_reason();
  if (why.empty()) GTEST_SKIP() << "a GPU is visible: the unavailable path is not exercised";
  EXPECT_EQ(why.rfind("unavailable: ", 0), 0u) << why;
  KernelBenchConfig cfg;
  cfg.shapes.push_back({8, 8, 8, "", ""});
  cfg.patterns.push_back(Pattern::parse("unstructured"));
  cfg.sparsities = {0.5};
  EXPECT_THROW(run_gpu_kernel_bench(cfg, GpuBenchOptions{}), Error);
}

TEST(GpuHost, EnergyMeterNeverThrows) {
  EnergyMeter meter;
  if (!meter.available()) {
    EXPECT_EQ(meter.why().rfind("unavailable: ", 0), 0u) << meter.why();
    std::uint64_t mj = 0;
    EXPECT_FALSE(meter.total_energy_mj(&mj));
  } else {
    std::uint64_t a = 0;
    EXPECT_TRUE(meter.total_energy_mj(&a));
  }
}

// The balanced kernel finds an entry's bank by fast_div: it must equal n / d over the kernel's whole
// domain (n * d < 2^32, d = entries kept per bank, 1 to 256): every n below 2^16, the top of the
// domain, and random n in between.
TEST(GpuHost, FastDivisionIsExactOverItsDomain) {
  std::mt19937_64 rng(7);
  for (std::uint32_t d = 1; d <= 256; ++d) {
    const FastDiv f = make_fast_div(d);
    const std::uint32_t limit = static_cast<std::uint32_t>(((std::uint64_t{1} << 32) - 1) / d);  // n * d < 2^32
    auto check = [&](std::uint32_t n) {
      ASSERT_EQ(fast_div(n, f), n / d) << "n " << n << " d " << d;
    };
    for (std::uint32_t n = 0; n < (1u << 16); ++n) check(n);
    for (std::uint32_t n = limit > 4096 ? limit - 4096 : 0; n < limit; ++n) check(n);
    check(limit);
    for (int i = 0; i < 20000; ++i) check(static_cast<std::uint32_t>(rng() % (std::uint64_t{limit} + 1)));
  }
}

}  // namespace
}  // namespace sb::gpu
