// sb_spmm_quick: a quick timing sanity check of our SpMM kernels against oneDNN dense, measured
// interleaved in one process (sgemm, matmul, sparse, repeated), medians of per-call times.
// Not the benchmark (that is `sparsebench kernels`); for kernel development only.
//   sb_spmm_quick [--reps R] [--threads 1,2] [--only SUBSTRING] [--all-isa]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "sparsebench/core/cpu_info.h"
#include "sparsebench/core/rng.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/kernels/spmm.h"
#include "sparsebench/prune/mask.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  std::int64_t m, k, n;
  std::string pattern;
  double sparsity;
  sb::Format format;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds per call of `op`, over a batch long enough (~3 ms) to swamp the clock.
double time_batch(sb::SpmmOp& op, const float* x, float* y, const float* b, int iters) {
  const auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) op.run(x, y, b);
  return std::chrono::duration<double>(Clock::now() - t0).count() / iters;
}

// Single-core FMA peak, measured: 12 independent zmm FMA chains (latency 4 x 2 pipes -> 8 would
// do; 12 leaves slack). Compiled for AVX-512 through the target attribute and called only when
// the CPU has it. GFLOP/s = 2 x 16 x FMAs / s.
__attribute__((target("avx512f"))) double fma_peak_gflops() {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(1.f + i * 1e-3f);
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  const long iters = 20'000'000;
  const auto t0 = Clock::now();
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  float sink = 0;
  for (int i = 0; i < 12; ++i) sink += _mm512_reduce_add_ps(a[i]);
  if (sink == 12345.f) std::printf(" ");
  return 2.0 * 16 * 12 * iters / s * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 15;
  std::vector<int> thread_counts = {1, 2};
  std::string only;
  bool all_isa = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      thread_counts.clear();
      for (const char* p = argv[++i]; *p;) {
        thread_counts.push_back(std::atoi(p));
        while (*p && *p != ',') ++p;
        if (*p == ',') ++p;
      }
    } else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
  }
  if (sb::max_isa() == sb::Isa::avx512)
    std::printf("# single-core AVX-512 FMA peak, measured: %.1f GFLOP/s\n", fma_peak_gflops());
  std::vector<Case> cases;
  const std::int64_t shapes[][3] = {{768, 768, 128}, {3072, 768, 128}, {768, 3072, 128}, {256, 2304, 196}};
  for (auto& s : shapes) {
    for (double sp : {0.7, 0.9, 0.95}) cases.push_back({s[0], s[1], s[2], "unstructured", sp, sb::Format::csr});
    for (double sp : {0.7, 0.9}) cases.push_back({s[0], s[1], s[2], "balanced:bank=32", sp, sb::Format::balanced});
    cases.push_back({s[0], s[1], s[2], "nm:1:8", 0.875, sb::Format::balanced});
    for (const char* blk : {"block:1x4", "block:4x1", "block:4x4", "block:8x8", "block:16x16"})
      cases.push_back({s[0], s[1], s[2], blk, 0.9, sb::Format::bsr});
  }
  for (double sp : {0.7, 0.9, 0.95}) cases.push_back({4096, 4096, 1, "unstructured", sp, sb::Format::csr});

  const auto& reg = sb::SpmmRegistry::instance();
  std::printf("%-16s %-18s %5s %3s %-34s %9s %9s %9s %8s %8s %8s %8s\n", "shape", "pattern", "sp",
              "thr", "kernel", "sgemm_ms", "matmul_ms", "sparse_ms", "speedup", "dGFLOP/s", "spd_min",
              "dGF_min");
  for (const Case& c : cases) {
    const std::string shape = std::to_string(c.m) + "x" + std::to_string(c.k) + "x" + std::to_string(c.n);
    if (!only.empty() && (shape + " " + c.pattern).find(only) == std::string::npos) continue;
    sb::Rng rng(42);
    sb::SpmmWeight w;
    w.dense = sb::Tensor::empty({c.m, c.k});
    rng.fill_normal(w.dense, 0.f, 1.f);
    w.pattern = sb::Pattern::parse(c.pattern);
    w.mask = sb::make_mask(w.dense, w.pattern, c.sparsity).mask;
    sb::apply_mask(w.dense, w.mask);
    sb::Tensor x = sb::Tensor::empty({c.k, c.n}), y = sb::Tensor::empty({c.m, c.n}),
               b = sb::Tensor::empty({c.m});
    rng.fill_uniform(x, -1.f, 1.f);
    rng.fill_uniform(b, -1.f, 1.f);
    const sb::SpmmDesc desc{c.m, c.k, c.n, true, true};
    for (int nt : thread_counts) {
      sb::set_num_threads(nt);
      // oneDNN both ways, then every kernel of the format that accepts the case (AVX-512 ones
      // only unless --all-isa), all timed interleaved.
      std::vector<const sb::SpmmImpl*> impls = {reg.find("onednn_sgemm"), reg.find("onednn_matmul")};
      for (const auto& impl : reg.all())
        if (impl->role() == sb::Role::kernel && impl->format() == c.format &&
            (all_isa || impl->name().find("__avx512") != std::string::npos) &&
            impl->can_implement(desc, w, nullptr))
          impls.push_back(impl.get());
      std::vector<std::unique_ptr<sb::SpmmOp>> ops;
      std::vector<int> iters;
      for (const sb::SpmmImpl* impl : impls) {
        ops.push_back(impl->initialize(desc, w));
        ops.back()->run(x.data<float>(), y.data<float>(), b.data<float>());  // warm up
        const double t = time_batch(*ops.back(), x.data<float>(), y.data<float>(), b.data<float>(), 3);
        iters.push_back(std::max(1, static_cast<int>(3e-3 / std::max(t, 1e-7))));  // ~3 ms batches
      }
      std::vector<std::vector<double>> t(ops.size());
      for (int r = 0; r < reps; ++r)
        for (std::size_t i = 0; i < ops.size(); ++i)
          t[i].push_back(time_batch(*ops[i], x.data<float>(), y.data<float>(), b.data<float>(), iters[i]));
      // On a shared machine the minimum is the least disturbed sample: both are printed.
      auto lowest = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
      const double g = median(t[0]), mm = median(t[1]);
      const double dense = std::min(g, mm), dense_min = std::min(lowest(t[0]), lowest(t[1]));
      for (std::size_t i = 2; i < ops.size(); ++i) {
        const double s = median(t[i]);
        std::printf("%-16s %-18s %5.3f %3d %-34s %9.4f %9.4f %9.4f %7.2fx %8.1f %7.2fx %8.1f\n",
                    shape.c_str(), c.pattern.c_str(), c.sparsity, nt, impls[i]->name().c_str(),
                    g * 1e3, mm * 1e3, s * 1e3, dense / s, 2.0 * c.m * c.k * c.n / dense * 1e-9,
                    dense_min / lowest(t[i]), 2.0 * c.m * c.k * c.n / dense_min * 1e-9);
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
