// The GPU backend's device-independent parts: storage conversions, rounding, summaries, the
// unavailable paths. These run on every machine (no GPU needed).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "sparsebench/core/error.h"
#include "kernels/cuda/balanced_gemv_layout.h"
#include "kernels/cuda/balanced_splitk_layout.h"
#include "kernels/cuda/balanced_tc_layout.h"
#include "kernels/cuda/csr_tc_layout.h"
#include "kernels/cuda/csr_splitk_layout.h"
#include "kernels/cuda/fast_div.h"
#include "kernels/cuda/staged_x.h"
#include "sparsebench/kernels/cuda_spmm.h"
#include "cuda/random_weights.h"

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

TEST(GpuHost, SpeedupCeilingIsTheBaselineOverTheProtocolsFloor) {
  GpuKernelRecord r;
  r.base.status = "ok";
  r.base.stats.median_ms = 0.004;  // 4 us at 1.5x: cuBLAS took 6 us
  r.base.speedup = 1.5;
  GpuTimingFloor floor;
  floor.cold_us = 3.0;
  floor.hot_us = 5.0;
  floor.graph_us = 1.0;
  r.base.cache = CacheMode::cold;
  EXPECT_NEAR(speedup_ceiling(r, floor), 2.0, 1e-12);
  r.base.cache = CacheMode::hot;
  EXPECT_NEAR(speedup_ceiling(r, floor), 1.2, 1e-12);
  r.base.cache = CacheMode::stream;
  EXPECT_NEAR(speedup_ceiling(r, floor), 6.0, 1e-12);
  floor.why = "unavailable: no GPU";
  EXPECT_EQ(speedup_ceiling(r, floor), 0.0);  // unknown, never invented
  floor.why.clear();
  r.base.status = "failed: mismatch";
  EXPECT_EQ(speedup_ceiling(r, floor), 0.0);
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
TEST(GpuHost, TimingFloorSaysWhyWithoutAGpu) {
  if (gpu_unavailable_reason().empty()) GTEST_SKIP() << "a GPU is visible: the unavailable path is not exercised";
  const GpuTimingFloor f = measure_timing_floor(3);
  EXPECT_EQ(f.why.rfind("unavailable: ", 0), 0u) << f.why;
  EXPECT_EQ(to_json(f)["status"], f.why);
}

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

using test_data::BalancedWeight;
using test_data::random_balanced;

// Y(r, col) of W [m x k] times X [k x n] (row-major) in double, and the sum of its terms' magnitudes
// (what the accumulated rounding error scales with).
struct RefValue {
  double value = 0, scale = 0;
};
RefValue reference_at(const std::vector<float>& w, const std::vector<float>& x, std::int64_t k, std::int64_t n,
                      std::int64_t r, std::int64_t col) {
  RefValue out;
  for (std::int64_t j = 0; j < k; ++j) {
    const double t = static_cast<double>(w[r * k + j]) * x[j * n + col];
    out.value += t;
    out.scale += std::fabs(t);
  }
  return out;
}

// The balanced GEMV kernel (spmm_balanced.cu, variant gemv) run on the host: its layout, packing,
// X staging and per-lane loops, step by step as the kernel does them, on random bank-balanced
// weights (full and partial last banks, banks of 2 to 256, tails with and without full groups of
// 128 banks), against a double reference; and the property the layout exists for: at every step
// the 32 lanes gather X from 32 different shared-memory banks.
TEST(GpuHost, BalancedGemvLayoutComputesTheProduct) {
  struct Case {
    std::int64_t m, k;
    int bank, keep;
  };
  const Case cases[] = {{1, 1, 1, 1},     {7, 13, 4, 2},     {33, 768, 32, 3},  {5, 3072, 8, 1},  {3, 4200, 32, 3},
                        {4, 4200, 8, 2},  {2, 4200, 256, 26}, {9, 300, 16, 16}, {6, 1000, 2, 1},  {3, 9000, 4, 2},
                        {2, 16384, 32, 4}, {1, 130, 7, 3}};
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  for (const Case& c : cases) {
    const int bank = static_cast<int>(std::min<std::int64_t>(c.bank, c.k));
    const BalancedWeight bw = random_balanced(c.m, c.k, bank, c.keep, rng);
    const std::vector<float>& w = bw.w;
    const std::vector<std::uint8_t>& kept = bw.kept;
    const int kb = bw.kb;
    std::vector<float> x(static_cast<std::size_t>(c.k));
    for (float& v : x) v = uni(rng);
    const GemvLayout l = make_gemv_layout(c.k, bank, kb);
    ASSERT_EQ(l.smem_stride % 32, 0);
    ASSERT_GE(l.smem_stride, l.banks);
    ASSERT_EQ(l.row_stride % 4, 0);
    ASSERT_EQ(l.main % kGemvGroup, 0);
    const BalancedPacked p = pack_gemv(l, c.m, w.data(), kept.data());
    const std::string label = std::to_string(c.m) + "x" + std::to_string(c.k) + " bank " + std::to_string(bank);

    // X staging, warp by warp and lane by lane: every (offset, bank) slot written exactly once.
    const int seg = gemv_stage_seg(l), segs = gemv_stage_segs(l), jobs = gemv_stage_jobs(l);
    std::vector<float> xs(static_cast<std::size_t>(l.bank) * l.smem_stride, std::numeric_limits<float>::quiet_NaN());
    std::vector<int> writes(xs.size(), 0);
    for (int job = 0; job < jobs; ++job) {
      std::vector<float> stage(static_cast<std::size_t>(32 * (seg + 1)), std::numeric_limits<float>::quiet_NaN());
      for (int lane = 0; lane < 32; ++lane)
        for (int e = 0; e < seg; ++e) {
          const int pe = lane + 32 * e;
          const int b = 32 * (job / segs) + pe / seg;
          const int o = seg * (job % segs) + pe % seg;
          const long long col = static_cast<long long>(b) * l.bank + o;
          stage[(pe / seg) * (seg + 1) + pe % seg] = (b < l.banks && o < l.bank && col < l.k) ? x[col] : 0.f;
        }
      const int b0 = 32 * (job / segs), o0 = seg * (job % segs);
      for (int lane = 0; lane < 32; ++lane)
        for (int cc = 0; cc < seg && o0 + cc < l.bank; ++cc) {
          const int idx = gemv_smem_index(l, o0 + cc, b0 + lane);
          xs[idx] = stage[lane * (seg + 1) + cc];
          ++writes[idx];
        }
    }
    for (int o = 0; o < l.bank; ++o)
      for (int b = 0; b < l.smem_stride; ++b) {
        const int idx = gemv_smem_index(l, o, b);
        ASSERT_EQ(writes[idx], 1) << label << ": xs(" << o << ", " << b << ") written " << writes[idx] << " times";
        const long long col = static_cast<long long>(b) * l.bank + o;
        ASSERT_EQ(xs[idx], b < l.banks && col < l.k ? x[col] : 0.f) << label << ": xs(" << o << ", " << b << ")";
      }

    // The rows: the kernel's loops, lane by lane; at each step the lanes' shared-memory banks differ.
    for (std::int64_t r = 0; r < c.m; ++r) {
      const float* vr = p.values.data() + r * l.row_stride;
      const std::uint8_t* orow = p.offsets.data() + r * l.row_stride;
      double acc = 0;
      for (int g = 0; g < l.groups; ++g)
        for (int i = 0; i < l.kb; ++i)
          for (int q = 0; q < 4; ++q) {
            std::vector<int> used(32, 0);
            for (int lane = 0; lane < 32; ++lane) {
              const int pos = gemv_main_pos(l, i, g, lane, 0) + q;  // the q-th of the lane's 4-entry load
              ASSERT_EQ((gemv_main_pos(l, i, g, lane, 0) % 4), 0);
              const int idx = gemv_smem_index(l, orow[pos], gemv_main_bank(g, lane, q));
              ASSERT_EQ(used[idx % 32]++, 0) << label << ": a shared-memory bank conflict";
              acc += static_cast<double>(vr[pos]) * xs[idx];
            }
          }
      for (int lane = 0; lane < 32; ++lane)
        for (int t = lane; t < l.tail; t += 32)
          for (int i = 0; i < l.kb; ++i) {
            const int pos = gemv_tail_pos(l, i, t);
            ASSERT_EQ(gemv_smem_index(l, orow[pos], l.main + t) % 32, lane) << label << ": a tail bank conflict";
            acc += static_cast<double>(vr[pos]) * xs[gemv_smem_index(l, orow[pos], l.main + t)];
          }
      const RefValue ref = reference_at(w, x, c.k, 1, r, 0);
      ASSERT_NEAR(acc, ref.value, 1e-9 * (ref.scale + 1)) << label << " row " << r;
    }
  }
}

// The split-K kernel (variant splitk) run on the host block by block, warp by warp, lane by lane:
// layout, packing, X staging (every slot unit written once), the reads (the 8 lanes of each 128-bit
// phase in 8 different 16-byte groups whatever their offsets), the reduce-scatter (emulated
// shuffles) and the atomic adds, against a double reference; n of 8 and 16 per tile, several
// tiles, short last chunks and k-slices, banks of 2 to 64.
TEST(GpuHost, BalancedSplitKLayoutComputesTheProduct) {
  struct Case {
    std::int64_t m, k, n;
    int bank, keep;
  };
  const Case cases[] = {{3, 768, 16, 32, 3},  {5, 3072, 8, 8, 1},   {2, 4200, 16, 32, 3}, {4, 1000, 24, 4, 2},
                        {3, 130, 16, 64, 7},  {2, 9000, 32, 16, 2}, {1, 13, 8, 2, 1},     {6, 4096, 16, 8, 1},
                        {2, 2050, 40, 64, 6}};
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  for (const Case& c : cases) {
    const int bank = static_cast<int>(std::min<std::int64_t>(c.bank, c.k));
    const BalancedWeight bw = random_balanced(c.m, c.k, bank, c.keep, rng);
    const std::vector<float>& w = bw.w;
    const std::vector<std::uint8_t>& kept = bw.kept;
    const int kb = bw.kb;
    std::vector<float> x(static_cast<std::size_t>(c.k * c.n));
    for (float& v : x) v = uni(rng);
    const SplitkLayout l = make_splitk_layout(c.k, bank, kb, c.n);
    const BalancedPacked p = pack_splitk(l, c.m, w.data(), kept.data());
    const std::string label = std::to_string(c.m) + "x" + std::to_string(c.k) + "x" + std::to_string(c.n) + " bank " +
                              std::to_string(bank);
    ASSERT_GE(l.ck, 1);
    ASSERT_LE(splitk_smem_bytes(l), std::size_t{64} << 10) << label;
    const int units = l.nc / 8;
    std::vector<double> ws(static_cast<std::size_t>(c.m * c.n), 0.0);
    const int coltiles = static_cast<int>((c.n + l.nc - 1) / l.nc);
    for (int kt = 0; kt < l.ktiles; ++kt)
      for (int ct = 0; ct < coltiles; ++ct) {
        // Staging: units of 8 columns (NaN where never written).
        const int c0 = kt * l.ck, cend = std::min(c0 + l.ck, l.chunks);
        const long long col0 = static_cast<long long>(ct) * l.nc;
        std::vector<float> xs(splitk_smem_bytes(l) / 2, std::numeric_limits<float>::quiet_NaN());  // 8 per unit
        std::vector<int> writes(xs.size() / 8, 0);
        const int slice_rows = (cend - c0) * 32 * l.bank;
        const long long row0 = static_cast<long long>(c0) * 32 * l.bank;
        for (int u = 0; u < slice_rows * units; ++u) {
          const int lr = u / units, h = u % units;
          const long long xr = row0 + lr;
          const int unit = splitk_unit(l, lr % l.bank, lr / l.bank, h);
          ASSERT_GE(unit, 0);
          ASSERT_LT(static_cast<std::size_t>(unit), writes.size()) << label;
          ++writes[unit];
          for (int e = 0; e < 8; ++e)
            xs[static_cast<std::size_t>(unit) * 8 + e] = (xr < c.k && col0 + 8 * h < c.n) ? x[xr * c.n + col0 + 8 * h + e] : 0.f;
        }
        for (int u = 0; u < slice_rows * units; ++u) ASSERT_LE(writes[u], 1) << label;
        for (std::int64_t r = 0; r < c.m; ++r) {
          std::vector<std::vector<float>> acc(32, std::vector<float>(static_cast<std::size_t>(l.nc), 0.f));
          for (int ch = c0; ch < cend; ++ch) {
            const int width = splitk_width(l, ch);
            for (int i = 0; i < l.kb; ++i)
              for (int h = 0; h < units; ++h) {
                std::vector<int> used(8 * 4, 0);  // per 8-lane phase, its 8 groups
                for (int lane = 0; lane < width; ++lane) {
                  const int pos = splitk_pos(l, ch, i, lane);
                  const float v = p.values[r * l.row_stride + pos];
                  const int o = p.offsets[r * l.row_stride + pos];
                  const int unit = splitk_unit(l, o, 32 * (ch - c0) + lane, h);
                  ASSERT_EQ(writes[unit], 1) << label << ": a read of an unwritten unit";
                  ASSERT_EQ(used[(lane / 8) * 8 + unit % 8]++, 0) << label << ": a shared-memory conflict";
                  for (int e = 0; e < 8; ++e) acc[lane][8 * h + e] += v * xs[static_cast<std::size_t>(unit) * 8 + e];
                }
              }
          }
          // The reduce-scatter, lane by lane as the shuffles do it.
          auto step = [&](int half, int s) {
            std::vector<std::vector<float>> next = acc;
            for (int lane = 0; lane < 32; ++lane) {
              const bool upper = (lane & s) != 0;
              const int partner = lane ^ s;
              const bool pupper = (partner & s) != 0;
              for (int j = 0; j < half; ++j) {
                const float keep = upper ? acc[lane][j + half] : acc[lane][j];
                const float recv = pupper ? acc[partner][j] : acc[partner][j + half];
                next[lane][j] = keep + recv;
              }
            }
            acc = next;
          };
          auto sum0 = [&](int s) {
            std::vector<std::vector<float>> next = acc;
            for (int lane = 0; lane < 32; ++lane) next[lane][0] = acc[lane][0] + acc[lane ^ s][0];
            acc = next;
          };
          if (l.nc == 16) {
            step(8, 16), step(4, 8), step(2, 4), step(1, 2), sum0(1);
          } else {
            step(4, 16), step(2, 8), step(1, 4), sum0(2), sum0(1);
          }
          std::vector<int> stored(static_cast<std::size_t>(l.nc), 0);
          for (int lane = 0; lane < 32; ++lane) {
            const long long col = col0 + splitk_reduce_col(l.nc, lane);
            if (!splitk_stores(l.nc, lane)) continue;
            ++stored[splitk_reduce_col(l.nc, lane)];
            if (col < c.n) ws[r * c.n + col] += acc[lane][0];
          }
          for (int j = 0; j < l.nc; ++j) ASSERT_EQ(stored[j], 1) << label << ": column " << j << " stored " << stored[j];
        }
      }
    for (std::int64_t r = 0; r < c.m; ++r)
      for (std::int64_t col = 0; col < c.n; ++col) {
        const RefValue ref = reference_at(w, x, c.k, c.n, r, col);
        ASSERT_NEAR(ws[r * c.n + col], ref.value, 1e-5 * (ref.scale + 1)) << label << " (" << r << ", " << col << ")";
      }
  }
}

// The CSR split-K kernel (spmm_csr_splitk__cuda) run on the host slice by slice: packing (every
// kept entry exactly once, in its slice, columns local), staging (every unit of the slice written
// once, inside the shared memory), lane-strided entries, and the sums, against a double reference.
TEST(GpuHost, CsrSplitKLayoutComputesTheProduct) {
  struct Case {
    std::int64_t m, k, n;
    double density;
  };
  const Case cases[] = {{5, 768, 16, 0.1}, {3, 3000, 8, 0.3}, {7, 2049, 24, 0.05}, {2, 13, 16, 1.0}, {4, 5000, 40, 0.02},
                        {1, 1, 8, 1.0}};
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  for (const Case& c : cases) {
    std::vector<float> w(static_cast<std::size_t>(c.m * c.k), 0.f), x(static_cast<std::size_t>(c.k * c.n));
    std::vector<std::uint8_t> kept(w.size(), 0);
    std::int64_t nnz = 0;
    for (std::size_t i = 0; i < w.size(); ++i)
      if (std::uniform_real_distribution<double>(0, 1)(rng) < c.density) {
        kept[i] = 1;
        w[i] = uni(rng);
        ++nnz;
      }
    for (float& v : x) v = uni(rng);
    const CsrSplitkLayout l = make_csr_splitk_layout(c.m, c.k, c.n);
    const CsrSplitkPacked p = pack_csr_splitk(l, w.data(), kept.data());
    const std::string label = std::to_string(c.m) + "x" + std::to_string(c.k) + "x" + std::to_string(c.n);
    ASSERT_EQ(static_cast<std::int64_t>(p.values.size()), nnz) << label;
    ASSERT_LE(csr_splitk_smem_bytes(l), std::size_t{32} << 10);
    const int units = l.nc / 8;
    std::vector<double> ws(static_cast<std::size_t>(c.m * c.n), 0.0);
    const int coltiles = static_cast<int>((c.n + l.nc - 1) / l.nc);
    for (int s = 0; s < l.ktiles; ++s)
      for (int ct = 0; ct < coltiles; ++ct) {
        const long long k0 = static_cast<long long>(s) * l.ks;
        const int kn = static_cast<int>(std::min<long long>(l.ks, c.k - k0));
        const long long col0 = static_cast<long long>(ct) * l.nc;
        std::vector<float> xs(csr_splitk_smem_bytes(l) / 2, std::numeric_limits<float>::quiet_NaN());
        std::vector<int> writes(xs.size() / 8, 0);
        for (int u = 0; u < kn * units; ++u) {
          const int cc = u / units, h = u % units;
          const int unit = csr_splitk_unit(l.nc, cc, h);
          ASSERT_LT(static_cast<std::size_t>(unit), writes.size()) << label;
          ++writes[unit];
          for (int e = 0; e < 8; ++e)
            xs[static_cast<std::size_t>(unit) * 8 + e] = col0 + 8 * h < c.n ? x[(k0 + cc) * c.n + col0 + 8 * h + e] : 0.f;
        }
        for (int u = 0; u < kn * units; ++u) ASSERT_EQ(writes[u], 1) << label;
        const std::int32_t* ptr = p.ptr.data() + static_cast<std::size_t>(s) * (c.m + 1);
        for (std::int64_t r = 0; r < c.m; ++r) {
          std::vector<double> acc(static_cast<std::size_t>(l.nc), 0.0);
          for (int lane = 0; lane < 32; ++lane)
            for (int e = ptr[r] + lane; e < ptr[r + 1]; e += 32) {
              const int cc = p.cols[e];
              ASSERT_LT(cc, kn) << label;
              for (int h = 0; h < units; ++h) {
                const int unit = csr_splitk_unit(l.nc, cc, h);
                ASSERT_EQ(writes[unit], 1) << label << ": a read of an unwritten unit";
                for (int q = 0; q < 8; ++q)
                  acc[8 * h + q] += static_cast<double>(p.values[e]) * xs[static_cast<std::size_t>(unit) * 8 + q];
              }
            }
          for (int j = 0; j < l.nc; ++j)
            if (col0 + j < c.n) ws[r * c.n + col0 + j] += acc[j];
        }
      }
    for (std::int64_t r = 0; r < c.m; ++r)
      for (std::int64_t col = 0; col < c.n; ++col) {
        const RefValue ref = reference_at(w, x, c.k, c.n, r, col);
        ASSERT_NEAR(ws[r * c.n + col], ref.value, 1e-9 * (ref.scale + 1)) << label << " (" << r << ", " << col << ")";
      }
  }
}


// The tensor-core kernels' tiles: whole 16-byte chunks, at most 256 columns, and few enough entries
// that a lane holds its share in registers (4 chunks: 8 spilled, ptxas sm_90a), for every bank up
// to 32 and every kb (padded as the implementation pads it); the widest tile that allows.
TEST(GpuHost, TensorCoreTilesFitTheLanesRegisters) {
  for (int bank = 1; bank <= kTcMaxBank; ++bank)
    for (int kb = 1; kb <= bank; ++kb) {
      const int padded = tc_padded_kb(kb);
      const TcLayout l = make_tc_layout(100 * bank + 3, bank, padded, 1);
      SCOPED_TRACE(::testing::Message() << "bank " << bank << ", kb " << kb << " -> " << padded << ", " << l.g << " banks a tile");
      EXPECT_GE(padded, kb);
      EXPECT_LE(padded - kb, 3);  // 9 -> 10, 17 -> 20 at most
      EXPECT_EQ(l.e % 8, 0);
      EXPECT_LE(l.e, kTcMaxTileEntries);
      EXPECT_LE(l.kt, kTcMaxCols);
      EXPECT_LE(tc_chunks_per_lane(l), kTcMaxChunksPerLane);
      const int banks = (100 * bank + 3 + bank - 1) / bank;
      EXPECT_EQ(l.tiles, (banks + l.g - 1) / l.g);
      // Widest: one more unit of banks would break a bound.
      const int unit = tc_bank_unit(padded);
      EXPECT_TRUE((l.g + unit) * bank > kTcMaxCols || (l.g + unit) * padded > kTcMaxTileEntries);
    }
  // The study's points on banks of 32: 90 % keeps 3 (8 banks, 256 columns), 70 % 10 (4 banks, 40
  // entries), 50 % 16 (4 banks); N:M 2:4 is bank 4, 2 kept (32 banks, 128 columns).
  EXPECT_EQ(make_tc_layout(4096, 32, tc_padded_kb(3), 1).kt, 256);
  EXPECT_EQ(make_tc_layout(4096, 32, tc_padded_kb(10), 1).kt, 128);
  EXPECT_EQ(make_tc_layout(4096, 32, tc_padded_kb(16), 1).kt, 128);
  EXPECT_EQ(make_tc_layout(4096, 4, tc_padded_kb(2), 1).kt, 128);
  EXPECT_EQ(make_tc_layout(4096, 8, tc_padded_kb(1), 1).kt, 256);
}

// Slices of k over blocks (the grid's z): every slice holds at least one tile and together they
// hold each tile once, for any shape; and on an H100's 132 SMs the target layers at batch 16 take
// two slices (64 or 172 blocks of 64 rows alone leave SMs idle or loaded twice), while the small
// BERT layers and the wide batches keep k whole.
TEST(GpuHost, TensorCoreSlicesOfKCoverEveryTileOnce) {
  for (std::int64_t m : {1, 16, 64, 96, 768, 4096, 11008, 100000})
    for (std::int64_t n : {8, 16, 256})
      for (int tiles : {1, 2, 3, 7, 16, 43, 200})
        for (int sms : {1, 3, 132}) {
          TcLayout l;
          l.tiles = tiles;
          tc_set_slices(l, tc_pick_kz(m, n, tiles, sms));
          SCOPED_TRACE(::testing::Message() << m << " x " << n << ", " << tiles << " tiles, " << sms << " SMs: " << l.kz
                                            << " slices of " << l.slice);
          ASSERT_GE(l.kz, 1);
          ASSERT_LE(l.kz, kTcMaxKz);
          EXPECT_LT(static_cast<std::int64_t>(l.kz - 1) * l.slice, tiles);  // the last slice is not empty
          EXPECT_GE(static_cast<std::int64_t>(l.kz) * l.slice, tiles);      // and the slices cover k
          EXPECT_EQ(tc_workspace_floats(l, m, n), l.kz > 1 ? l.kz * m * n : 0);
        }
  auto kz = [](std::int64_t m, std::int64_t k, std::int64_t n) {
    return tc_pick_kz(m, n, make_tc_layout(k, 32, tc_padded_kb(3), 1).tiles, 132);
  };
  EXPECT_EQ(kz(4096, 4096, 16), 2);
  EXPECT_EQ(kz(11008, 4096, 16), 2);
  EXPECT_EQ(kz(4096, 11008, 16), 2);
  EXPECT_EQ(kz(768, 768, 16), 1);
  EXPECT_EQ(kz(3072, 768, 16), 1);
  EXPECT_EQ(kz(4096, 4096, 256), 1);
}

// The plans the tensor-core ops time at initialize: the model's first, each (slices, groups) once,
// every one a plan the launcher takes (no empty slice, a tile for every group, shared memory within
// the limit, the workspace within its cap); and the pick: the fastest, the model's where it is
// within 2 %, failed runs skipped, the model's where none ran.
TEST(GpuHost, TensorCorePlansTimedAtInitializeAreValidAndTheFastestIsKept) {
  const std::size_t smem = 227 << 10;
  for (std::int64_t k : {256, 768, 3000, 4096, 11008})
    for (std::int64_t m : {64, 768, 4096, 11008})
      for (std::int64_t n : {8, 16, 256}) {
        TcLayout model = make_tc_layout(k, 32, tc_padded_kb(3), 1);
        tc_set_slices(model, tc_pick_kz(m, n, model.tiles, 132));
        const std::int64_t cap = std::max<std::int64_t>(tc_workspace_floats(model, m, n), std::int64_t{16} << 20);
        const std::vector<TcLayout> c = tc_candidates(model, m, n, smem, cap);
        SCOPED_TRACE(::testing::Message() << m << " x " << k << " x " << n << ": " << c.size() << " plans");
        ASSERT_FALSE(c.empty());
        EXPECT_EQ(c[0].kz, model.kz);
        EXPECT_EQ(c[0].ksplit, model.ksplit);
        bool unsliced = false;
        for (std::size_t i = 0; i < c.size(); ++i) {
          unsliced = unsliced || c[i].kz == 1;
          EXPECT_EQ(c[i].tiles, model.tiles);
          EXPECT_GE(c[i].kz, 1);
          EXPECT_LE(c[i].kz, kTcMaxKz);
          EXPECT_LT(static_cast<std::int64_t>(c[i].kz - 1) * c[i].slice, c[i].tiles);
          EXPECT_GE(static_cast<std::int64_t>(c[i].kz) * c[i].slice, c[i].tiles);
          if (i > 0) {
            EXPECT_LE(c[i].ksplit, c[i].slice);
            EXPECT_LE(tc_smem_bytes(c[i]), smem);
            EXPECT_LE(tc_workspace_floats(c[i], m, n), cap);
          }
          for (std::size_t j = 0; j < i; ++j) EXPECT_FALSE(c[i].kz == c[j].kz && c[i].ksplit == c[j].ksplit) << i << " repeats " << j;
        }
        EXPECT_TRUE(unsliced);
      }
  // The pick, with made-up times.
  TcLayout model = make_tc_layout(11008, 32, tc_padded_kb(3), 1);
  tc_set_slices(model, 2);
  const std::vector<TcLayout> c = tc_candidates(model, 4096, 16, smem, std::int64_t{16} << 20);
  ASSERT_GE(c.size(), 4u);
  auto pick = [&](auto time) { return tc_tune(c, time); };
  auto at = [&](const TcTuning& t) {
    for (std::size_t i = 0; i < c.size(); ++i)
      if (c[i].kz == t.best.kz && c[i].ksplit == t.best.ksplit) return static_cast<int>(i);
    return -1;
  };
  TcTuning t = pick([&](const TcLayout& l) { return &l == &c[3] ? 5.0 : 10.0; });
  EXPECT_EQ(at(t), 3);
  EXPECT_EQ(t.ran, static_cast<int>(c.size()));
  EXPECT_DOUBLE_EQ(t.best_us, 5.0);
  EXPECT_DOUBLE_EQ(t.first_us, 10.0);
  EXPECT_NE(tc_tuning_note(t).find("the model's (k in 2 slices, 1 warp group): 10.0 us"), std::string::npos) << tc_tuning_note(t);
  t = pick([&](const TcLayout& l) { return &l == &c[3] ? 9.9 : 10.0; });  // within 2 %: the model's
  EXPECT_EQ(at(t), 0);
  EXPECT_DOUBLE_EQ(t.best_us, 10.0);
  t = pick([&](const TcLayout& l) { return &l == &c[0] ? -1.0 : (&l == &c[2] ? 7.0 : 8.0); });  // the model's failed
  EXPECT_EQ(at(t), 2);
  EXPECT_EQ(t.ran, static_cast<int>(c.size()) - 1);
  EXPECT_LT(t.first_us, 0);
  t = pick([](const TcLayout&) { return -1.0; });
  EXPECT_EQ(at(t), 0);
  EXPECT_EQ(t.ran, 0);
  EXPECT_NE(tc_tuning_note(t).find("no candidate ran"), std::string::npos);
  EXPECT_NE(tc_tuning_note(TcTuning{}).find("untimed: SB_GPU_TIMED_PLANS=0"), std::string::npos);  // timing off
}

// The staged kernels' block sizes timed at initialize: the rule's first, each once, a whole number
// of rows within the kernels' bound; the lanes as the launcher takes them; the pick as for the
// tensor-core plans.
TEST(GpuHost, StagedBlockSizesTimedAtInitializeAreValid) {
  for (std::int64_t chunks : {0, 1, 3, 4, 5, 8, 17, 48, 64, 128, 129, 138, 1000}) {
    const int lanes = staged_lanes(chunks);
    EXPECT_GE(lanes, 1);
    EXPECT_LE(lanes, 32);
    EXPECT_EQ(lanes & (lanes - 1), 0) << lanes;
    if (lanes < 32) EXPECT_GE(4 * lanes, chunks) << chunks;  // about four chunks a lane
    if (lanes > 1) EXPECT_LT(4 * (lanes / 2), chunks) << chunks;
    for (std::int64_t rows : {1, 7, 768, 4096, 11008})
      for (int sms : {3, 132}) {
        const std::vector<int> c = staged_thread_candidates(rows, lanes, sms);
        ASSERT_FALSE(c.empty());
        EXPECT_EQ(c[0], staged_threads(rows, lanes, sms));
        for (std::size_t i = 0; i < c.size(); ++i) {
          EXPECT_EQ(c[i] % lanes, 0) << c[i];
          EXPECT_LE(c[i], kStagedMaxThreads);
          for (std::size_t j = 0; j < i; ++j) EXPECT_NE(c[i], c[j]);
        }
      }
  }
  const std::vector<int> c = staged_thread_candidates(4096, 32, 132);
  EXPECT_EQ(c[0], 256);  // the rule at 4096 rows of 32 lanes: 512 blocks of 8 rows
  StagedTuning t = tune(c, [](int threads) { return threads == 512 ? 8.0 : 10.0; });
  EXPECT_EQ(t.best, 512);
  EXPECT_EQ(t.first, 256);
  EXPECT_NE(staged_tuning_note(t).find("the rule's 256: 10.0 us"), std::string::npos) << staged_tuning_note(t);
  t = tune(c, [](int threads) { return threads == 512 ? 9.9 : 10.0; });  // within 2 %
  EXPECT_EQ(t.best, 256);
  EXPECT_NE(staged_tuning_note(t).find(", the rule's"), std::string::npos) << staged_tuning_note(t);
  t = tune(c, [](int) { return -1.0; });
  EXPECT_EQ(t.best, 256);
  EXPECT_EQ(t.ran, 0);
  EXPECT_NE(staged_tuning_note(t).find("no candidate ran"), std::string::npos) << staged_tuning_note(t);
  // SB_VERBOSE=plans: every candidate's time in one line.
  std::string line;
  ::setenv("SB_VERBOSE", "plans", 1);
  t = tune(c, logged<int>(&line, [](int threads) { return std::to_string(threads); },
                          [](int threads) { return threads == 64 ? -1.0 : threads / 100.0; }));
  ::unsetenv("SB_VERBOSE");
  EXPECT_EQ(line, "256 2.6 us; 64 failed; 128 1.3 us; 512 5.1 us") << line;
  EXPECT_EQ(t.best, 128);
  StagedTuning off;
  off.best = off.first = 256;
  EXPECT_NE(staged_tuning_note(off).find("untimed: SB_GPU_TIMED_PLANS=0"), std::string::npos) << staged_tuning_note(off);
}

// The tiled-CSL tile width: 256 columns for a sparse weight, narrower as it fills, so that the
// fullest tile stays within 4 chunks a lane; every kept entry packed once, at its place.
TEST(GpuHost, CsrTensorCoreTilesNarrowAsTheWeightFills) {
  std::mt19937_64 rng(7);
  for (double density : {0.02, 0.1, 0.3, 0.5, 1.0}) {
    const std::int64_t m = 37, k = 1000;
    std::vector<float> values(static_cast<std::size_t>(m * k));
    std::vector<std::uint8_t> kept(values.size());
    std::bernoulli_distribution keep(density);
    for (std::size_t i = 0; i < values.size(); ++i) {
      kept[i] = keep(rng) ? 1 : 0;
      values[i] = kept[i] ? static_cast<float>(i % 97 + 1) : 0.f;
    }
    const CsrTcPacked p = pack_csr_tc(m, k, values.data(), kept.data());
    SCOPED_TRACE(::testing::Message() << "density " << density << ": tiles of " << p.kt << " columns");
    EXPECT_LE(p.max_chunks, 32 * kTcMaxChunksPerLane);
    if (p.kt < kTcCsrKt) {  // the next width up would not have fitted: its fullest tile, counted here
      const int kt = 2 * p.kt;
      int most = 0;
      for (std::int64_t g = 0; g < (m + 15) / 16; ++g)
        for (std::int64_t t = 0; t < (k + kt - 1) / kt; ++t) {
          int n = 0;
          for (std::int64_t r = g * 16; r < std::min(m, g * 16 + 16); ++r)
            for (std::int64_t c = t * kt; c < std::min(k, t * kt + kt); ++c) n += kept[r * k + c];
          most = std::max(most, n);
        }
      EXPECT_GT((most + 7) / 8, 32 * kTcMaxChunksPerLane);
    }
    if (density <= 0.1) EXPECT_EQ(p.kt, kTcCsrKt);
    if (density == 1.0) EXPECT_EQ(p.kt, kTcCsrMinKt * 2);  // 16 x 64 = 1024 entries: 128 chunks, 4 a lane
    // Unpack: every kept entry once, at its place.
    std::vector<float> back(values.size(), 0.f);
    const std::int64_t tiles = (k + p.kt - 1) / p.kt;
    for (std::int64_t g = 0; g < (m + 15) / 16; ++g)
      for (std::int64_t t = 0; t < tiles; ++t)
        for (std::uint32_t e = 8 * p.ptr[g * tiles + t]; e < 8 * p.ptr[g * tiles + t + 1]; ++e) {
          if (p.values[e] == 0.f) continue;
          const std::int64_t r = g * 16 + (p.places[e] >> 8), c = t * p.kt + (p.places[e] & 0xFF);
          ASSERT_LT(r, m);
          ASSERT_LT(c, k);
          ASSERT_EQ(back[r * k + c], 0.f) << "entry packed twice";
          back[r * k + c] = p.values[e];
        }
    EXPECT_EQ(back, values);
  }
}


// The lowering the whole-model benchmarks and the cuDNN check rest on: im2col then the GEMM is the
// convolution, computed directly (double loops over the window, padding and dilation as PyTorch's
// Conv2d defines them), on odd geometries; and the layout conversions invert what cuDNN's NHWC and
// NCHW outputs hold.
TEST(GpuHostConv, Im2colThenGemmIsTheConvolution) {
  struct Geo {
    std::int64_t b, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw;
  };
  const Geo geos[] = {{1, 3, 17, 17, 8, 3, 3, 2, 2, 1, 1, 1, 1}, {2, 4, 7, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1},
                      {1, 2, 9, 11, 5, 5, 3, 1, 2, 2, 1, 2, 1}, {3, 2, 6, 6, 3, 3, 3, 3, 3, 0, 0, 1, 1},
                      {1, 1, 1, 1, 2, 1, 1, 1, 1, 0, 0, 1, 1},  {1, 2, 4, 4, 3, 7, 7, 1, 1, 3, 3, 1, 1}};
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (const Geo& g : geos) {
    GpuConvDesc d;
    d.batch = g.b, d.in_channels = g.c, d.height = g.h, d.width = g.w, d.out_channels = g.o;
    d.kernel = {g.kh, g.kw}, d.stride = {g.sh, g.sw}, d.padding = {g.ph, g.pw}, d.dilation = {g.dh, g.dw};
    ASSERT_EQ(check_conv_desc(d), "");
    const std::int64_t oh = d.out_h(), ow = d.out_w(), m = d.gemm_m(), k = d.gemm_k(), n = d.gemm_n();
    ASSERT_EQ(oh, (g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1);
    std::vector<float> img(static_cast<std::size_t>(d.input_elems())), w(static_cast<std::size_t>(m * k));
    for (float& v : img) v = u(gen);
    for (float& v : w) v = u(gen);
    const std::vector<float> x = im2col(d, img.data());
    ASSERT_EQ(x.size(), static_cast<std::size_t>(k * n));
    std::vector<float> nchw(static_cast<std::size_t>(m * n)), nhwc(nchw.size());  // the direct convolution
    for (std::int64_t b = 0; b < g.b; ++b)
      for (std::int64_t o = 0; o < m; ++o)
        for (std::int64_t i = 0; i < oh; ++i)
          for (std::int64_t j = 0; j < ow; ++j) {
            double direct = 0, lowered = 0;
            for (std::int64_t c = 0; c < g.c; ++c)
              for (std::int64_t r = 0; r < g.kh; ++r)
                for (std::int64_t s = 0; s < g.kw; ++s) {
                  const std::int64_t yy = i * g.sh - g.ph + r * g.dh, xx = j * g.sw - g.pw + s * g.dw;
                  const double wv = w[((o * g.c + c) * g.kh + r) * g.kw + s];
                  if (yy >= 0 && yy < g.h && xx >= 0 && xx < g.w) direct += wv * img[((b * g.c + c) * g.h + yy) * g.w + xx];
                  lowered += wv * x[((c * g.kh + r) * g.kw + s) * n + (b * oh + i) * ow + j];
                }
            ASSERT_NEAR(lowered, direct, 1e-9) << "geometry " << &g - geos << " at (" << b << ", " << o << ", " << i
                                               << ", " << j << ")";
            nchw[((b * m + o) * oh + i) * ow + j] = static_cast<float>(direct);
            nhwc[((b * oh + i) * ow + j) * m + o] = static_cast<float>(direct);
          }
    // Both output layouts map back to the GEMM's [m x n], column (b, oh, ow).
    const std::vector<float> from_nchw = conv_output_to_gemm(d, "nchw", nchw.data());
    const std::vector<float> from_nhwc = conv_output_to_gemm(d, "nhwc", nhwc.data());
    EXPECT_EQ(from_nchw, from_nhwc);
    for (std::int64_t b = 0; b < g.b; ++b)
      for (std::int64_t o = 0; o < m; ++o)
        EXPECT_EQ(from_nchw[o * n + b * oh * ow], nchw[(b * m + o) * oh * ow]);
    // NCHW -> NHWC of the image puts channel c of pixel p at p * C + c.
    const std::vector<float> img_nhwc = nchw_to_nhwc(img.data(), g.b, g.c, g.h, g.w);
    for (std::int64_t b = 0; b < g.b; ++b)
      for (std::int64_t c = 0; c < g.c; ++c)
        for (std::int64_t p = 0; p < g.h * g.w; ++p)
          ASSERT_EQ(img_nhwc[(b * g.h * g.w + p) * g.c + c], img[(b * g.c + c) * g.h * g.w + p]);
  }
}

TEST(GpuHostConv, BadGeometriesAreRefusedInOneLine) {
  GpuConvDesc ok;
  ok.in_channels = 3, ok.height = 8, ok.width = 8, ok.out_channels = 4, ok.kernel = {3, 3};
  EXPECT_EQ(check_conv_desc(ok), "");
  auto bad = [&](auto change, const char* expect) {
    GpuConvDesc d = ok;
    change(d);
    const std::string why = check_conv_desc(d);
    EXPECT_NE(why.find(expect), std::string::npos) << why;
    EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  };
  bad([](GpuConvDesc& d) { d.in_channels = 0; }, "must be positive");
  bad([](GpuConvDesc& d) { d.stride = {0, 1}; }, "expected positive");
  bad([](GpuConvDesc& d) { d.padding = {-1, 0}; }, "padding >= 0");
  bad([](GpuConvDesc& d) { d.kernel = {9, 9}; }, "has no output");
  bad([](GpuConvDesc& d) { d.dilation = {4, 1}; }, "has no output");
  bad([](GpuConvDesc& d) { d.batch = 1 << 20, d.in_channels = 64, d.height = d.width = 64; }, "cuDNN takes at most");
}

TEST(GpuHostConv, CudnnIsUnavailableWithAReasonOrLoads) {
  const std::string why = cudnn_unavailable_reason();
  if (why.empty()) GTEST_SKIP() << "cuDNN is usable here: GpuConv.CudnnMatchesTheLoweredGemmReference checks it";
  EXPECT_EQ(why.rfind("unavailable: ", 0), 0u) << why;
  GpuConvDesc d;
  d.in_channels = 3, d.height = 8, d.width = 8, d.out_channels = 4;
  const std::vector<float> w(12, 1.f);
  try {
    make_cudnn_conv(d, w.data());
    ADD_FAILURE() << "make_cudnn_conv ran although cuDNN is " << why;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unavailable"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sb::gpu
