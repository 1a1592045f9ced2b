// The device-independent half of the GPU backend, built with or without CUDA: storage types, the
// host view of weights, and the sweep behind `sparsebench kernels --device cuda` (verification
// against the CPU reference, event timing, speedups against cuBLAS and cuSPARSE of the same run).
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "kernels/cuda/gpu_internal.h"
#include "sparsebench/core/dtype.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/rng.h"
#include "sparsebench/formats/csr.h"
#include "sparsebench/formats/smtx.h"
#include "sparsebench/prune/mask.h"

namespace sb::gpu {

const char* gpu_dtype_name(GpuDType t) {
  switch (t) {
    case GpuDType::f32: return "f32";
    case GpuDType::tf32: return "tf32";
    case GpuDType::f16: return "f16";
    case GpuDType::bf16: return "bf16";
    case GpuDType::i8: return "i8";
  }
  return "?";
}

GpuDType parse_gpu_dtype(const std::string& text) {
  for (GpuDType t : {GpuDType::f32, GpuDType::tf32, GpuDType::f16, GpuDType::bf16, GpuDType::i8})
    if (text == gpu_dtype_name(t)) return t;
  fail(fmt::format("unknown GPU dtype '{}': expected f32, tf32, f16, bf16 or i8", text));
}

std::size_t x_elem_bytes(GpuDType t) {
  switch (t) {
    case GpuDType::f32:
    case GpuDType::tf32: return 4;
    case GpuDType::f16:
    case GpuDType::bf16: return 2;
    case GpuDType::i8: return 1;
  }
  return 4;
}

std::size_t y_elem_bytes(GpuDType t) { return t == GpuDType::i8 ? 4 : x_elem_bytes(t); }

float round_to(float v, GpuDType t) {
  switch (t) {
    case GpuDType::f32: return v;
    case GpuDType::tf32: {
      // Round to nearest even at 10 mantissa bits (13 low bits dropped), as cuBLAS's conversion
      // does; pre-rounded inputs then pass through the tensor cores exactly.
      if (!std::isfinite(v)) return v;
      std::uint32_t u;
      std::memcpy(&u, &v, 4);
      u += 0xFFFu + ((u >> 13) & 1u);
      u &= ~0x1FFFu;
      std::memcpy(&v, &u, 4);
      return v;
    }
    case GpuDType::f16: return half_to_float(float_to_half(v));
    case GpuDType::bf16: return bf16_to_float(float_to_bf16(v));
    case GpuDType::i8: return std::clamp(std::nearbyint(v), -127.f, 127.f);
  }
  return v;
}

std::vector<std::uint8_t> to_storage(const float* src, std::size_t count, GpuDType t) {
  std::vector<std::uint8_t> out(count * x_elem_bytes(t));
  switch (t) {
    case GpuDType::f32:
    case GpuDType::tf32: std::memcpy(out.data(), src, count * 4); break;
    case GpuDType::f16:
      for (std::size_t i = 0; i < count; ++i) {
        const std::uint16_t h = float_to_half(src[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      break;
    case GpuDType::bf16:
      for (std::size_t i = 0; i < count; ++i) {
        const std::uint16_t h = float_to_bf16(src[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      break;
    case GpuDType::i8:
      for (std::size_t i = 0; i < count; ++i)
        out[i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(round_to(src[i], t)));
      break;
  }
  return out;
}

void from_storage(const void* src, std::size_t count, GpuDType t, float* dst) {
  const auto* b = static_cast<const std::uint8_t*>(src);
  for (std::size_t i = 0; i < count; ++i) {
    switch (t) {
      case GpuDType::f32:
      case GpuDType::tf32: std::memcpy(&dst[i], b + 4 * i, 4); break;
      case GpuDType::f16: {
        std::uint16_t h;
        std::memcpy(&h, b + 2 * i, 2);
        dst[i] = half_to_float(h);
        break;
      }
      case GpuDType::bf16: {
        std::uint16_t h;
        std::memcpy(&h, b + 2 * i, 2);
        dst[i] = bf16_to_float(h);
        break;
      }
      case GpuDType::i8: {
        std::int32_t v;
        std::memcpy(&v, b + 4 * i, 4);
        dst[i] = static_cast<float>(v);
        break;
      }
    }
  }
}

bool weight_matches(const GpuSpmmDesc& d, const SpmmWeight& w, std::string* why) {
  if (d.m < 1 || d.k < 1 || d.n < 1) return reject(why, fmt::format("sizes m={} k={} n={} must be positive", d.m, d.k, d.n));
  if (!w.dense.defined() || w.dense.dim() != 2 || w.dense.dtype() != DType::f32 || w.dense.shape()[0] != d.m ||
      w.dense.shape()[1] != d.k)
    return reject(why, fmt::format("the weight must be a 2-D f32 tensor of {}x{}", d.m, d.k));
  return true;
}

HostWeight host_weight(const SpmmWeight& w, GpuDType t) {
  HostWeight h;
  h.m = w.dense.shape()[0];
  h.k = w.dense.shape()[1];
  const std::size_t total = static_cast<std::size_t>(h.m * h.k);
  h.values.resize(total);
  h.kept.resize(total);
  const float* src = w.dense.data<float>();
  const std::uint8_t* mask = w.mask.defined() ? w.mask.data<std::uint8_t>() : nullptr;
  for (std::size_t i = 0; i < total; ++i) {
    h.kept[i] = mask ? (mask[i] != 0) : (src[i] != 0.f);
    h.values[i] = h.kept[i] ? round_to(src[i], t) : 0.f;
  }
  return h;
}

const GpuSpmmImpl* find_gpu_impl(const std::string& name) {
  for (const auto& impl : gpu_spmm_impls())
    if (impl->name() == name) return impl.get();
  return nullptr;
}

void* open_library(const char* env_var, const std::string& name, std::string* path, std::string* why) {
  const char* env = std::getenv(env_var);
  std::string errors;
  for (const std::string& n : {std::string(env ? env : ""), name}) {
    if (n.empty()) continue;
    if (void* lib = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      *path = n;
      return lib;
    }
    const char* e = dlerror();
    errors += fmt::format("{}{}", errors.empty() ? "" : "; ", e ? e : n + ": dlopen failed");
  }
  *why = "unavailable: " + errors;
  return nullptr;
}

void check_gpu_impl_names(const std::vector<std::string>& names, const char* flag) {
  if (gpu_spmm_impls().empty()) return;  // a build without CUDA: the run says so itself
  for (const std::string& name : names)
    if (!find_gpu_impl(name) && name != kCudnnConvName) {
      std::string known;
      for (const auto& i : gpu_spmm_impls()) known += (known.empty() ? "" : ", ") + i->name();
      known += std::string(", ") + kCudnnConvName;
      fail(fmt::format("{} {}: no GPU implementation has that name (known: {})", flag, name, known));
    }
}

// --- the sweep ---------------------------------------------------------------------------------

// Tolerance on max |y - ref| / max |ref| when the reference ran on the same rounded inputs: the
// output's own rounding (half an ulp of the storage type) plus fp32 accumulation over k terms.
double tolerance(GpuDType t, std::int64_t k) {
  const double accum = 1e-7 * std::sqrt(static_cast<double>(k)) * 4;
  switch (t) {
    case GpuDType::f32: return 1e-4;
    case GpuDType::tf32: return 1e-3;
    case GpuDType::f16: return 2e-3 + accum;   // 2^-11 relative per output, with headroom
    case GpuDType::bf16: return 1.6e-2 + accum;  // 2^-8 relative
    case GpuDType::i8: return 1e-6;             // integer arithmetic is exact
  }
  return 1e-3;
}

// Double-accumulated reference on the rounded weight and X.
std::vector<double> reference(const HostWeight& w, const std::vector<float>& x, std::int64_t n) {
  std::vector<double> y(static_cast<std::size_t>(w.m * n), 0.0);
#pragma omp parallel for schedule(dynamic, 16)
  for (std::int64_t i = 0; i < w.m; ++i)
    for (std::int64_t j = 0; j < w.k; ++j) {
      const double v = w.values[i * w.k + j];
      if (v == 0) continue;
      const float* xr = x.data() + j * n;
      double* yr = y.data() + i * n;
      for (std::int64_t c = 0; c < n; ++c) yr[c] += v * xr[c];
    }
  return y;
}

std::string compare(const std::vector<double>& ref, const std::vector<float>& y, std::int64_t n, double tol,
                    double* rel) {
  double max_ref = 0, max_err = 0;
  for (double v : ref) max_ref = std::max(max_ref, std::fabs(v));
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(y[i])) return fmt::format("output ({}, {}) is {} (unwritten?)", i / n, i % n, y[i]);
    max_err = std::max(max_err, std::fabs(y[i] - ref[i]));
  }
  *rel = max_ref > 0 ? max_err / max_ref : max_err;
  if (*rel > tol) return fmt::format("max |y - ref| / max |ref| = {:.3g} > {:.1e}", *rel, tol);
  return {};
}

namespace {

// CacheMode::stream: at least this many copies (the graph's own launch, a few microseconds, is
// then a small part of the time) and at most this many (a graph of that many calls is still quick
// to build; weights smaller than 2 x L2 / kMaxStreamCopies stay partly in L2, and the note says so).
constexpr int kMinStreamCopies = 8;
constexpr int kMaxStreamCopies = 1024;

// Copies so that the weights together exceed twice the L2, within the bounds above and within
// half the free device memory (per_copy_bytes: what one more copy takes).
int stream_copies(std::size_t weight_bytes, std::size_t per_copy_bytes) {
  const std::size_t l2 = gpu_l2_bytes();
  const double want = l2 ? 2.0 * static_cast<double>(l2) / static_cast<double>(std::max<std::size_t>(weight_bytes, 1))
                         : kMinStreamCopies;
  std::int64_t r = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::ceil(want)), kMinStreamCopies, kMaxStreamCopies);
  const std::size_t free_b = device_memory_free();
  if (free_b && per_copy_bytes)
    r = std::min<std::int64_t>(r, std::max<std::int64_t>(1, static_cast<std::int64_t>(free_b / 2 / per_copy_bytes)));
  return static_cast<int>(r);
}

// SB_GPU_PROGRESS=FILE: before each implementation's GPU work in a case (initialize and verify,
// then time), FILE is rewritten with a line naming it ("initialize NAME MxKxN PATTERN DTYPE"), so
// that after the process hangs or dies the file names the kernel it was in (the device script
// reads it when a sweep runs past its time limit).
void note_progress(const char* phase, const std::string& impl, const BenchCase& c, GpuDType dt) {
  static const char* path = std::getenv("SB_GPU_PROGRESS");
  if (!path || !*path) return;
  if (std::FILE* f = std::fopen(path, "w")) {
    std::fputs(fmt::format("{} {} {}x{}x{} {} {}\n", phase, impl, c.desc.m, c.desc.k, c.desc.n, c.pattern,
                           gpu_dtype_name(dt)).c_str(), f);
    std::fclose(f);
  }
}

struct GpuSlot {
  const GpuSpmmImpl* impl = nullptr;
  GpuKernelRecord rec;
  std::unique_ptr<GpuSpmmOp> op;
};

// `lost`: empty while the CUDA context is usable; once an implementation loses it, which and what
// happened (every implementation still to run is then skipped, saying so).
void run_gpu_case(const KernelBenchConfig& cfg, const GpuBenchOptions& opts, const BenchCase& c, GpuDType dt,
                  Rng rng, EnergyMeter& meter, std::vector<GpuKernelRecord>& out, GpuContextLoss& lost) {
  const auto& impls = gpu_spmm_impls();
  auto base = [&](const GpuSpmmImpl& impl) {
    GpuKernelRecord r;
    KernelRecord& b = r.base;
    b.set = c.set;
    b.matrix = c.matrix;
    b.comment = c.comment;
    b.m = c.desc.m;
    b.k = c.desc.k;
    b.n = c.desc.n;
    b.pattern = c.pattern;
    b.sparsity = c.sparsity;
    b.achieved = c.achieved;
    b.nnz = c.nnz;
    b.impl = impl.name();
    b.library = impl.library();
    b.role = role_name(impl.role());
    b.format = impl.format();
    b.threads = 0;
    b.cache = cfg.cache;
    r.dtype = gpu_dtype_name(dt);
    r.energy_status = "not measured";
    return r;
  };
  std::vector<GpuSlot> slots;
  for (const auto& impl : impls) {
    if (!opts.only.empty() && impl->role() == Role::kernel && impl->name() != opts.only) continue;
    // The simple kernels are the fast ones' verification twins (tests/cuda), slow by design:
    // timed only when named with --kernel.
    if (opts.only.empty() && impl->name().find("_simple__") != std::string::npos) continue;
    if (!cfg.peers && impl->role() == Role::peer) continue;
    if (std::find(opts.skip.begin(), opts.skip.end(), impl->name()) != opts.skip.end()) continue;
    GpuSlot s;
    s.impl = impl.get();
    s.rec = base(*impl);
    if (!c.skip.empty() || !lost.impl.empty()) {
      s.rec.base.status = "skipped: " + (lost.impl.empty() ? c.skip : lost.what);
      slots.push_back(std::move(s));
      continue;
    }
    const GpuSpmmDesc d{c.desc.m, c.desc.k, c.desc.n, dt};
    std::string why;
    if (!impl->can_implement(d, c.weight, &why)) {
      s.rec.base.status = "skipped: " + (why.empty() ? std::string("declined") : why);
    } else {
      s.rec.base.status = "ok";
    }
    slots.push_back(std::move(s));
  }
  if (!c.skip.empty() || !lost.impl.empty()) {
    for (GpuSlot& s : slots) out.push_back(std::move(s.rec));
    return;
  }
  // After a failure: whether the context survived it. If not, the failure says so and every
  // implementation not yet done is skipped (the CUDA runtime fails all later calls of the process).
  auto context_survived = [&](GpuSlot& failed) {
    const std::string err = gpu_context_lost();
    if (err.empty()) return true;
    failed.rec.base.status += fmt::format(" (the CUDA context is lost: {})", err);
    failed.op.reset();
    lost.impl = failed.impl->name();
    lost.what = fmt::format("the CUDA context was lost by {} at {}x{}x{} {} {} ({}); later GPU work in this process "
                            "cannot run",
                            lost.impl, c.desc.m, c.desc.k, c.desc.n, c.pattern, gpu_dtype_name(dt), err);
    for (GpuSlot& s : slots)
      if (&s != &failed && s.rec.base.status == "ok" && s.rec.base.stats.samples_ms.empty()) {
        s.rec.base.status = "skipped: " + lost.what;
        s.op.reset();
      }
    return false;
  };

  const GpuSpmmDesc d{c.desc.m, c.desc.k, c.desc.n, dt};
  // X: small integers for i8 (exact arithmetic), uniform otherwise; rounded to the storage type.
  std::vector<float> x(static_cast<std::size_t>(c.desc.k * c.desc.n));
  for (float& v : x) v = round_to(dt == GpuDType::i8 ? std::nearbyint(rng.uniform(-4.f, 4.f)) : rng.uniform(-1.f, 1.f), dt);
  const std::vector<std::uint8_t> x_bytes = to_storage(x.data(), x.size(), dt);
  DeviceBuffer x_dev(x_bytes.size());
  x_dev.upload(x_bytes.data(), x_bytes.size());
  DeviceBuffer y_dev(static_cast<std::size_t>(c.desc.m * c.desc.n) * y_elem_bytes(dt));
  std::vector<double> ref;
  if (cfg.verify) ref = reference(host_weight(c.weight, dt), x, c.desc.n);

  for (GpuSlot& s : slots) {
    if (s.rec.base.status != "ok") continue;
    note_progress("initialize", s.impl->name(), c, dt);
    try {
      const std::size_t before = device_memory_used();
      s.op = s.impl->initialize(d, c.weight);
      const std::size_t after = device_memory_used();
      s.rec.gpu_mem_bytes = after > before ? after - before : s.op->weight_bytes() + s.op->workspace_bytes();
      s.rec.base.weight_bytes = s.op->weight_bytes();
      s.rec.note = s.op->note();
      if (cfg.verify) {
        std::vector<float> y(static_cast<std::size_t>(c.desc.m * c.desc.n));
        run_on_host_data(*s.op, d, x.data(), y.data());
        const std::string bad =
            compare(ref, y, c.desc.n, tolerance(dt, c.desc.k) * s.impl->error_scale(dt), &s.rec.base.max_rel_error);
        s.rec.base.verified = bad.empty();
        if (!bad.empty()) s.rec.base.status = "failed: verification: " + bad;
      }
    } catch (const std::exception& e) {
      s.rec.base.status = fmt::format("failed: {}", e.what());
      s.op.reset();
      if (!context_survived(s)) break;
    }
  }
  for (GpuSlot& s : slots) {
    if (!s.op || s.rec.base.status != "ok") continue;
    note_progress("time", s.impl->name(), c, dt);
    try {
      if (cfg.cache == CacheMode::stream) {
        // Copies of the operator (device-to-device clones where the implementation offers them,
        // else initialized afresh), called back to back in one CUDA graph.
        std::vector<std::unique_ptr<GpuSpmmOp>> copies;
        std::unique_ptr<GpuSpmmOp> probe = s.op->clone();
        const bool cloned = probe != nullptr;
        const std::size_t wb = s.op->weight_bytes();
        const int count = stream_copies(wb, cloned ? wb : std::max(s.rec.gpu_mem_bytes, wb));
        if (probe && count > 1) copies.push_back(std::move(probe));
        while (static_cast<int>(copies.size()) + 1 < count)
          copies.push_back(cloned ? s.op->clone() : s.impl->initialize(d, c.weight));
        std::vector<GpuSpmmOp*> ops{s.op.get()};
        for (const auto& o : copies) ops.push_back(o.get());
        std::string how;
        s.rec.base.stats = time_gpu_ops_stream(ops, x_dev.get(), y_dev.get(), cfg.warmup, cfg.min_reps, cfg.min_seconds, &how);
        s.rec.base.copies = static_cast<int>(ops.size());
        const double total_mb = static_cast<double>(wb) * static_cast<double>(ops.size()) / 1e6;
        const double l2_mb = static_cast<double>(gpu_l2_bytes()) / 1e6;
        if (total_mb < 2 * l2_mb)
          how += fmt::format("; weights {:.1f} MB in all, under twice the L2 ({:.1f} MB): partly L2-resident", total_mb, l2_mb);
        s.rec.note += (s.rec.note.empty() ? "" : "; ") + how;
      } else {
        s.rec.base.stats = time_gpu_op(*s.op, x_dev.get(), y_dev.get(), cfg.warmup, cfg.min_reps, cfg.min_seconds,
                                       cfg.cache == CacheMode::cold);
      }
      if (opts.energy) {
        if (!meter.available()) {
          s.rec.energy_status = meter.why();
        } else {
          // The counter updates every 20 to 100 ms: a window of >= energy_seconds of back-to-back
          // calls (no flush: the flush's own energy is not the kernel's).
          std::uint64_t e0 = 0, e1 = 0;
          if (meter.total_energy_mj(&e0)) {
            Timer t;
            const std::int64_t calls = run_back_to_back(*s.op, x_dev.get(), y_dev.get(), opts.energy_seconds);
            const double sec = t.seconds();
            if (meter.total_energy_mj(&e1) && e1 > e0) {
              const double mj = static_cast<double>(e1 - e0);
              s.rec.energy_mj_per_call = mj / static_cast<double>(calls);
              s.rec.avg_power_w = mj * 1e-3 / sec;
              s.rec.energy_status = "ok";
            } else {
              s.rec.energy_status = meter.available() ? "unavailable: the energy counter did not advance" : meter.why();
            }
          } else {
            s.rec.energy_status = meter.why();
          }
        }
      }
    } catch (const std::exception& e) {
      s.rec.base.status = fmt::format("failed: {}", e.what());
      if (!context_survived(s)) break;
    }
    s.op.reset();  // frees device memory before the next implementation's initialize
  }

  double best_blas = 0, best_sparse = 0;
  std::string best_blas_name;
  for (const GpuSlot& s : slots) {
    const KernelRecord& r = s.rec.base;
    if (!r.ok() || r.stats.median_ms <= 0) continue;
    if (s.impl->library() == "cublas" && (best_blas == 0 || r.stats.median_ms < best_blas)) {
      best_blas = r.stats.median_ms;
      best_blas_name = r.impl;
    }
    if (s.impl->library() == "cusparse" && (best_sparse == 0 || r.stats.median_ms < best_sparse))
      best_sparse = r.stats.median_ms;
  }
  for (GpuSlot& s : slots) {
    KernelRecord& r = s.rec.base;
    if (r.ok() && r.stats.median_ms > 0) {
      const double sec = r.stats.median_ms * 1e-3;
      r.useful_gflops = 2.0 * static_cast<double>(c.nnz) * static_cast<double>(c.desc.n) / sec * 1e-9;
      r.effective_gflops = 2.0 * static_cast<double>(c.desc.m) * static_cast<double>(c.desc.k) * static_cast<double>(c.desc.n) / sec * 1e-9;
      if (best_blas > 0) {
        r.speedup = best_blas / r.stats.median_ms;
        r.baseline = best_blas_name;
      }
      if (best_sparse > 0) s.rec.speedup_vs_cusparse = best_sparse / r.stats.median_ms;
    }
    out.push_back(std::move(s.rec));
  }
}

}  // namespace

std::vector<GpuKernelRecord> run_gpu_kernel_bench(const KernelBenchConfig& cfg, const GpuBenchOptions& opts,
                                                  GpuContextLoss* context_lost) {
  if (!opts.only.empty()) check_gpu_impl_names({opts.only}, "--kernel");
  check_gpu_impl_names(opts.skip, "--skip-kernels");
  if (const std::string why = gpu_unavailable_reason(); !why.empty()) fail(fmt::format("--device cuda: {}", why));
  SB_CHECK(!opts.dtypes.empty(), "--device cuda: no dtype given");
  SB_CHECK(!cfg.shapes.empty() || !cfg.matrices.empty(), "kernel bench: no shape and no matrix to run");
  EnergyMeter meter;
  std::vector<GpuKernelRecord> out;
  GpuContextLoss lost;
  for_each_bench_case(cfg, [&](BenchCase& c, Rng rng) {
    for (GpuDType dt : opts.dtypes) {
      if (cfg.progress)
        cfg.progress(fmt::format("{} {} {} sparsity {:.2f} {}", c.set, c.matrix, c.pattern, c.achieved, gpu_dtype_name(dt)));
      run_gpu_case(cfg, opts, c, dt, rng, meter, out, lost);
    }
  });
  if (context_lost) *context_lost = lost;
  return out;
}

double speedup_ceiling(const GpuKernelRecord& g, const GpuTimingFloor& floor) {
  const KernelRecord& r = g.base;
  if (!r.ok() || r.speedup <= 0 || !floor.why.empty()) return 0;
  const double floor_us = r.cache == CacheMode::stream ? floor.graph_us : r.cache == CacheMode::hot ? floor.hot_us : floor.cold_us;
  return floor_us > 0 ? r.stats.median_ms * r.speedup * 1000.0 / floor_us : 0;
}

std::vector<GpuSpeedupSummary> summarize_gpu_speedups(const std::vector<GpuKernelRecord>& recs) {
  using Key = std::tuple<std::string, std::string, double, std::string, std::string>;
  struct Acc {
    double log_blas = 0, log_sparse = 0;
    int n_blas = 0, n_sparse = 0, count = 0;
  };
  std::map<Key, Acc> acc;
  std::vector<Key> order;
  for (const GpuKernelRecord& g : recs) {
    const KernelRecord& r = g.base;
    if (!r.ok() || (r.speedup <= 0 && g.speedup_vs_cusparse <= 0)) continue;
    const bool dlmc = r.set.find('/') != std::string::npos;  // DLMC sets: grouped by set alone
    Key k{r.set, r.pattern, dlmc ? -1.0 : r.sparsity, g.dtype, r.impl};
    auto [it, inserted] = acc.try_emplace(k);
    if (inserted) order.push_back(k);
    Acc& a = it->second;
    a.count += 1;
    if (r.speedup > 0) {
      a.log_blas += std::log(r.speedup);
      a.n_blas += 1;
    }
    if (g.speedup_vs_cusparse > 0) {
      a.log_sparse += std::log(g.speedup_vs_cusparse);
      a.n_sparse += 1;
    }
  }
  std::vector<GpuSpeedupSummary> out;
  for (const Key& k : order) {
    const Acc& a = acc[k];
    GpuSpeedupSummary s;
    std::tie(s.set, s.pattern, s.sparsity, s.dtype, s.impl) = k;
    s.count = a.count;
    s.geomean_vs_cublas = a.n_blas ? std::exp(a.log_blas / a.n_blas) : 0;
    s.geomean_vs_cusparse = a.n_sparse ? std::exp(a.log_sparse / a.n_sparse) : 0;
    out.push_back(std::move(s));
  }
  return out;
}

nlohmann::json to_json(const GpuKernelRecord& r) {
  nlohmann::json j = sb::to_json(r.base);
  j["device"] = "cuda";
  j["dtype"] = r.dtype;
  j["note"] = r.note;
  j["gpu_mem_bytes"] = r.gpu_mem_bytes;
  j["speedup_vs_cusparse"] = r.speedup_vs_cusparse;
  j["energy_status"] = r.energy_status;
  if (r.energy_status == "ok") {
    j["energy_mj_per_call"] = r.energy_mj_per_call;
    j["avg_power_w"] = r.avg_power_w;
  }
  return j;
}

nlohmann::json to_json(const GpuTimingFloor& f) {
  if (!f.why.empty()) return {{"status", f.why}};
  return {{"status", "ok"},
          {"cold_us", f.cold_us},
          {"hot_us", f.hot_us},
          {"graph_us", f.graph_us},
          {"what", "an empty kernel per call: cold = one call between two events after the L2 flush, hot = the same "
                   "without the flush, graph = per call of 64 in one CUDA graph (--cache stream); medians"}};
}

nlohmann::json to_json(const GpuSpeedupSummary& s) {
  nlohmann::json j;
  j["set"] = s.set;
  j["pattern"] = s.pattern;
  j["sparsity"] = s.sparsity;
  j["dtype"] = s.dtype;
  j["impl"] = s.impl;
  j["cases"] = s.count;
  j["geomean_speedup_vs_cublas"] = s.geomean_vs_cublas;
  j["geomean_speedup_vs_cusparse"] = s.geomean_vs_cusparse;
  return j;
}

}  // namespace sb::gpu
