#include "sparsebench/bench/kernel_bench.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "sparsebench/core/aligned.h"
#include "sparsebench/core/cpu_info.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/rng.h"
#include "sparsebench/core/tensor.h"
#include "sparsebench/core/threads.h"
#include "sparsebench/formats/csr.h"
#include "sparsebench/formats/smtx.h"
#include "sparsebench/kernels/spmm.h"
#include "sparsebench/prune/mask.h"

namespace sb {

const char* cache_mode_name(CacheMode c) {
  switch (c) {
    case CacheMode::hot: return "hot";
    case CacheMode::cold: return "cold";
    case CacheMode::stream: return "stream";
  }
  return "?";
}

CacheMode parse_cache_mode(const std::string& text) {
  if (text == "hot") return CacheMode::hot;
  if (text == "cold") return CacheMode::cold;
  if (text == "stream") return CacheMode::stream;
  fail(fmt::format("unknown cache mode '{}': expected hot, cold or stream", text));
}

namespace {

// Verification: max |y - ref| over max |ref|. fp32 accumulation over k <= a few thousand terms of
// O(1) values stays near 1e-6 of the output's scale; 1e-4 leaves room for any summation order
// while still catching a wrong index or a dropped entry (errors of order 1).
constexpr double kVerifyTolerance = 1e-4;
// Cold mode: the copies together may take at most this fraction of the memory available.
constexpr double kColdMemoryFraction = 0.25;
constexpr std::size_t kLlcFallbackBytes = std::size_t{32} << 20;

// One implementation's state inside one (case, threads) measurement.
struct Slot {
  const SpmmImpl* impl = nullptr;
  KernelRecord rec;
  std::vector<std::unique_ptr<SpmmOp>> ops;
  std::vector<AlignedVector<float>> xs, ys;
  std::vector<double> samples;
  std::size_t next = 0;

  void call() {
    const std::size_t c = next++ % ops.size();
    ops[c]->run(xs[c].data(), ys[c].data(), nullptr);
  }
};

KernelRecord base_record(const BenchCase& c, const SpmmImpl& impl, int threads, CacheMode cache) {
  KernelRecord r;
  r.set = c.set;
  r.matrix = c.matrix;
  r.comment = c.comment;
  r.m = c.desc.m;
  r.k = c.desc.k;
  r.n = c.desc.n;
  r.pattern = c.pattern;
  r.sparsity = c.sparsity;
  r.achieved = c.achieved;
  r.nnz = c.nnz;
  r.impl = impl.name();
  r.library = impl.library();
  r.role = role_name(impl.role());
  r.format = format_name(impl.format());
  r.threads = threads;
  r.cache = cache;
  return r;
}

Tensor mask_from_csr(const Csr& csr) {
  Tensor mask = Tensor::zeros({csr.rows, csr.cols}, DType::u8);
  std::uint8_t* m = mask.data<std::uint8_t>();
  for (std::int64_t i = 0; i < csr.rows; ++i)
    for (std::int64_t p = csr.row_ptr[i]; p < csr.row_ptr[i + 1]; ++p) m[i * csr.cols + csr.col(p)] = 1;
  return mask;
}

std::int64_t count_kept(const Tensor& mask) {
  const std::uint8_t* m = mask.data<std::uint8_t>();
  std::int64_t n = 0;
  for (std::int64_t i = 0; i < mask.numel(); ++i) n += m[i] != 0;
  return n;
}

std::vector<BenchCase> shape_cases(const KernelBenchConfig& cfg) {
  std::vector<BenchCase> out;
  for (const GemmShape& s : cfg.shapes)
    for (const Pattern& p : cfg.patterns) {
      // N:M fixes its sparsity and dense has none: one case each, not one per requested sparsity.
      std::vector<double> sps = cfg.sparsities;
      if (p.kind == Pattern::Kind::nm) sps = {1.0 - static_cast<double>(p.n) / p.m};
      if (p.kind == Pattern::Kind::dense) sps = {0.0};
      for (double sp : sps) {
        BenchCase c;
        c.set = s.source.empty() ? "cli" : s.source.substr(0, s.source.find('.'));
        c.matrix = s.to_string();
        c.comment = s.comment;
        c.pattern = p.to_string();
        c.desc = {s.m, s.k, s.n, false, false, {}};
        c.sparsity = sp;
        out.push_back(std::move(c));
      }
    }
  return out;
}

// Fills the weight of a shape case (random values pruned with its pattern); sets skip on failure.
void build_shape_weight(BenchCase& c, const Pattern& p, Rng rng) {
  Tensor w = Tensor::empty({c.desc.m, c.desc.k});
  rng.fill_uniform(w, -1.f, 1.f);
  try {
    MaskResult mr = make_mask(w, p, c.sparsity);
    apply_mask(w, mr.mask);
    c.weight = {w, mr.mask, p};
    c.achieved = mr.achieved;
    c.nnz = count_kept(mr.mask);
  } catch (const Error& e) {
    c.skip = fmt::format("pattern {} at sparsity {}: {}", c.pattern, c.sparsity, e.what());
  }
}

const SpmmImpl* find_reference(const SpmmDesc& d, const SpmmWeight& w) {
  const auto& all = SpmmRegistry::instance().all();
  const SpmmImpl* fallback = nullptr;
  for (const auto& impl : all) {
    if (impl->role() != Role::reference || !impl->can_implement(d, w, nullptr)) continue;
    if (impl->format() == Format::csr) return impl.get();
    if (!fallback) fallback = impl.get();
  }
  return fallback;
}

// Compares y with the reference; empty when it agrees, else why not.
std::string compare(const std::vector<float>& ref, const float* y, std::int64_t n_cols, double* rel_err) {
  double max_ref = 0, max_err = 0;
  for (float v : ref) max_ref = std::max(max_ref, static_cast<double>(std::fabs(v)));
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(y[i]) && !std::isnan(ref[i]))
      return fmt::format("output ({}, {}) is NaN (unwritten?)", i / n_cols, i % n_cols);
    max_err = std::max(max_err, static_cast<double>(std::fabs(y[i] - ref[i])));
  }
  *rel_err = max_ref > 0 ? max_err / max_ref : max_err;
  if (*rel_err > kVerifyTolerance)
    return fmt::format("max |y - ref| / max |ref| = {:.3g} > {:.0e}", *rel_err, kVerifyTolerance);
  return {};
}

int cold_copies(const KernelBenchConfig& cfg, std::size_t bytes_per_copy) {
  std::size_t llc = cpu_info().llc_total_bytes();
  if (llc == 0) llc = kLlcFallbackBytes;
  const double want = cfg.cold_llc_factor * static_cast<double>(llc) / static_cast<double>(std::max<std::size_t>(bytes_per_copy, 1));
  int copies = static_cast<int>(std::ceil(want));
  const std::size_t avail = cpu_info().memory_available_bytes;
  if (avail > 0) {
    const auto cap = static_cast<int>(kColdMemoryFraction * static_cast<double>(avail) / static_cast<double>(bytes_per_copy));
    copies = std::min(copies, std::max(cap, 1));
  }
  return std::clamp(copies, 1, std::max(cfg.max_copies, 1));
}

// Verifies, then times every runnable slot interleaved, for one case at the current thread count.
void measure_slots(const KernelBenchConfig& cfg, std::vector<Slot>& slots) {
  std::vector<Slot*> live;
  for (Slot& s : slots)
    if (s.rec.status == "ok") live.push_back(&s);
  if (live.empty()) return;
  for (Slot* s : live)
    for (int i = 0; i < cfg.warmup * static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(s->ops.size(), 4))); ++i)
      s->call();
  const int rounds = std::max(cfg.rounds, 1);
  const double slice_seconds = cfg.min_seconds / rounds;
  const int slice_calls = (cfg.min_reps + rounds - 1) / rounds;
  constexpr int kMaxCallsPerSlice = 20000;
  for (int r = 0; r < rounds; ++r)
    for (Slot* s : live) {
      Timer slice;
      int calls = 0;
      while ((calls < slice_calls || slice.seconds() < slice_seconds) && calls < kMaxCallsPerSlice) {
        Timer t;
        s->call();
        s->samples.push_back(t.milliseconds());
        ++calls;
      }
    }
  for (Slot* s : live) s->rec.stats = summarize(std::move(s->samples));
}

void run_case(const KernelBenchConfig& cfg, const BenchCase& c, const std::vector<const SpmmImpl*>& impls,
              Rng rng, std::vector<KernelRecord>& out) {
  const SpmmDesc& d = c.desc;
  if (!c.skip.empty()) {
    for (int t : cfg.threads)
      for (const SpmmImpl* impl : impls) {
        KernelRecord r = base_record(c, *impl, t, cfg.cache);
        r.status = "skipped: " + c.skip;
        out.push_back(std::move(r));
      }
    return;
  }
  AlignedVector<float> x(static_cast<std::size_t>(d.k * d.n));
  for (float& v : x) v = rng.uniform(-1.f, 1.f);

  // The expected output, once per case, from the double-accumulating reference kernel.
  std::vector<float> ref;
  std::string ref_problem;
  if (cfg.verify) {
    if (const SpmmImpl* ref_impl = find_reference(d, c.weight)) {
      ref.resize(static_cast<std::size_t>(d.m * d.n));
      ref_impl->initialize(d, c.weight)->run(x.data(), ref.data(), nullptr);
    } else {
      ref_problem = "no reference kernel can run this case";
    }
  }

  for (int t : cfg.threads) {
    set_num_threads(t);
    if (cfg.progress)
      cfg.progress(fmt::format("{} {} {} sparsity {:.2f} threads {} ({})", c.set, c.matrix, c.pattern, c.achieved, t,
                               cache_mode_name(cfg.cache)));
    std::vector<Slot> slots;
    slots.reserve(impls.size());
    for (const SpmmImpl* impl : impls) {
      Slot s;
      s.impl = impl;
      s.rec = base_record(c, *impl, t, cfg.cache);
      std::string why;
      if (!impl->can_implement(d, c.weight, &why)) {
        s.rec.status = "skipped: " + (why.empty() ? std::string("declined") : why);
        slots.push_back(std::move(s));
        continue;
      }
      try {
        s.ops.push_back(impl->initialize(d, c.weight));
        s.rec.weight_bytes = s.ops[0]->footprint().total();
        s.xs.push_back(x);
        s.ys.emplace_back(static_cast<std::size_t>(d.m * d.n));
        if (cfg.verify) {
          if (!ref_problem.empty()) {
            s.rec.status = "failed: " + ref_problem;
          } else {
            std::fill(s.ys[0].begin(), s.ys[0].end(), std::numeric_limits<float>::quiet_NaN());
            s.ops[0]->run(s.xs[0].data(), s.ys[0].data(), nullptr);
            const std::string bad = compare(ref, s.ys[0].data(), d.n, &s.rec.max_rel_error);
            s.rec.verified = bad.empty();
            s.rec.status = bad.empty() ? "ok" : "failed: verification: " + bad;
          }
        } else {
          s.rec.status = "ok";
        }
        if (s.rec.status == "ok" && cfg.cache == CacheMode::cold) {
          const std::size_t per_copy = s.rec.weight_bytes + (x.size() + s.ys[0].size()) * sizeof(float);
          const int copies = cold_copies(cfg, per_copy);
          for (int i = 1; i < copies; ++i) {
            s.ops.push_back(impl->initialize(d, c.weight));
            s.xs.push_back(x);
            s.ys.emplace_back(s.ys[0].size());
          }
        }
        s.rec.copies = static_cast<int>(s.ops.size());
      } catch (const std::exception& e) {
        s.rec.status = fmt::format("failed: {}", e.what());
        s.ops.clear();
      }
      slots.push_back(std::move(s));
    }

    measure_slots(cfg, slots);

    // Mark, per format, the kernel the dispatcher would run in a model (the runtime's choice), so
    // that a set's geometric mean can be taken over what a user actually gets.
    std::map<Format, std::string> chosen;
    for (const Slot& s : slots) {
      if (s.impl->role() != Role::kernel || chosen.count(s.impl->format())) continue;
      try {
        const SpmmImpl& pick = SpmmRegistry::instance().select(d, c.weight, s.impl->format());
        chosen[s.impl->format()] = pick.role() == Role::kernel ? pick.name() : std::string();
      } catch (const std::exception&) {
        chosen[s.impl->format()] = std::string();
      }
    }
    for (Slot& s : slots)
      if (s.impl->role() == Role::kernel) s.rec.dispatched = chosen[s.impl->format()] == s.impl->name();

    // Speedups against the fastest dense baseline of this very run.
    double best = 0;
    std::string best_name;
    for (const Slot& s : slots)
      if (s.impl->role() == Role::baseline && s.rec.ok() && s.rec.stats.median_ms > 0 &&
          (best == 0 || s.rec.stats.median_ms < best)) {
        best = s.rec.stats.median_ms;
        best_name = s.impl->name();
      }
    for (Slot& s : slots) {
      KernelRecord& r = s.rec;
      if (r.ok() && r.stats.median_ms > 0) {
        const double sec = r.stats.median_ms * 1e-3;
        r.useful_gflops = 2.0 * static_cast<double>(c.nnz) * static_cast<double>(d.n) / sec * 1e-9;
        r.effective_gflops = 2.0 * static_cast<double>(d.m) * static_cast<double>(d.k) * static_cast<double>(d.n) / sec * 1e-9;
        if (best > 0) {
          r.speedup = best / r.stats.median_ms;
          r.baseline = best_name;
        }
      }
      out.push_back(std::move(r));
    }
  }
}

std::string dir_label(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  // DLMC layout: <model>/<method>/<sparsity>/<file>: keep the last three directories.
  std::vector<std::string> parts;
  for (fs::path d = p.parent_path(); !d.empty() && d != d.root_path() && parts.size() < 3; d = d.parent_path())
    parts.insert(parts.begin(), d.filename().string());
  std::string out;
  for (const auto& s : parts) out += (out.empty() ? "" : "/") + s;
  return out.empty() ? "." : out;
}

std::string smtx_stem(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  for (const char* ext : {".smtx.gz", ".smtx"})
    if (name.size() > std::strlen(ext) && name.ends_with(ext)) return name.substr(0, name.size() - std::strlen(ext));
  return name;
}

// rn50_batchsizes.txt ("name,N" per line) in dir or up to three levels above; empty if none.
std::map<std::string, std::int64_t> find_batchsizes(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::map<std::string, std::int64_t> out;
  fs::path d = dir;
  for (int up = 0; up <= 3 && !d.empty(); ++up, d = d.parent_path()) {
    const fs::path f = d / "rn50_batchsizes.txt";
    std::error_code ec;
    if (!fs::is_regular_file(f, ec)) {
      if (d == d.parent_path()) break;
      continue;
    }
    std::ifstream in(f);
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.empty()) continue;
      const auto comma = line.find(',');
      SB_CHECK(comma != std::string::npos, "{}:{}: expected 'layer_name,N', got '{}'", f.string(), lineno, line);
      try {
        const long long n = std::stoll(line.substr(comma + 1));
        SB_CHECK(n >= 1, "{}:{}: N {} must be positive", f.string(), lineno, n);
        out[line.substr(0, comma)] = n;
      } catch (const std::logic_error&) {
        fail(fmt::format("{}:{}: '{}' is not a number", f.string(), lineno, line.substr(comma + 1)));
      }
    }
    break;
  }
  return out;
}

}  // namespace

void for_each_bench_case(const KernelBenchConfig& cfg, const std::function<void(BenchCase&, Rng)>& fn) {
  const Rng root(cfg.seed);
  std::uint64_t index = 0;
  for (BenchCase& c : shape_cases(cfg)) {
    Rng rng = root.split(index++);
    build_shape_weight(c, Pattern::parse(c.pattern), rng.split(1));
    fn(c, rng.split(2));
  }
  for (const MatrixCase& mc : cfg.matrices) {
    Rng rng = root.split(index++);
    Rng value_rng = rng.split(1);
    Csr csr = load_smtx(mc.path, value_rng);
    BenchCase c;
    c.set = mc.set;
    c.matrix = mc.name;
    c.pattern = "unstructured";
    c.desc = {csr.rows, csr.cols, mc.n, false, false, {}};
    c.sparsity = c.achieved = csr.sparsity();
    c.nnz = csr.nnz();
    c.weight = {csr.to_dense(), mask_from_csr(csr), Pattern::parse("unstructured")};
    fn(c, rng.split(2));
  }
}

std::vector<MatrixCase> list_matrix_cases(const std::string& path, std::int64_t default_n) {
  namespace fs = std::filesystem;
  std::error_code ec;
  SB_CHECK(fs::exists(path, ec), "--matrices {}: no such file or directory", path);
  std::vector<std::string> files = list_smtx(path);
  SB_CHECK(!files.empty(), "--matrices {}: holds no .smtx or .smtx.gz file", path);
  std::vector<MatrixCase> out;
  std::map<std::string, std::map<std::string, std::int64_t>> sizes_by_dir;
  for (const std::string& f : files) {
    const std::string dir = fs::absolute(fs::path(f)).parent_path().string();
    if (!sizes_by_dir.count(dir)) sizes_by_dir[dir] = find_batchsizes(dir);
    const auto& sizes = sizes_by_dir[dir];
    MatrixCase mc;
    mc.path = f;
    mc.name = smtx_stem(f);
    mc.set = dir_label(fs::absolute(fs::path(f)).string());
    if (auto it = sizes.find(mc.name); it != sizes.end()) {
      mc.n = it->second;
    } else {
      SB_CHECK(default_n >= 1, "{}: not in rn50_batchsizes.txt and --n {} is not a positive N", f, default_n);
      mc.n = default_n;
    }
    out.push_back(std::move(mc));
  }
  return out;
}

std::vector<KernelRecord> run_kernel_bench(const KernelBenchConfig& cfg) {
  SB_CHECK(cfg.cache != CacheMode::stream,
           "kernel bench: cache mode 'stream' is for --device cuda (weight copies called back to back in a CUDA graph); "
           "on the CPU use hot or cold");
  SB_CHECK(!cfg.threads.empty(), "kernel bench: no thread count given");
  for (int t : cfg.threads) SB_CHECK(t >= 1, "kernel bench: thread count {} must be at least 1", t);
  for (double s : cfg.sparsities) SB_CHECK(s >= 0 && s < 1, "kernel bench: sparsity {} outside [0, 1)", s);
  SB_CHECK(cfg.min_reps >= 1, "kernel bench: --reps {} must be at least 1", cfg.min_reps);
  SB_CHECK(cfg.min_seconds >= 0, "kernel bench: --min-time {} must not be negative", cfg.min_seconds);
  SB_CHECK(!cfg.shapes.empty() || !cfg.matrices.empty(), "kernel bench: no shape and no matrix to run");
  if (!cfg.shapes.empty()) SB_CHECK(!cfg.patterns.empty(), "kernel bench: no pattern given for the shapes");

  const SpmmRegistry& reg = SpmmRegistry::instance();
  std::vector<const SpmmImpl*> impls;
  bool kernel_found = cfg.kernel.empty();
  for (const auto& impl : reg.all()) {
    switch (impl->role()) {
      case Role::kernel:
        if (!cfg.kernel.empty() ? impl->name() == cfg.kernel
                                : cfg.all_isas || impl->name().ends_with(std::string("__") + isa_name(max_isa()))) {
          impls.push_back(impl.get());
          kernel_found = true;
        }
        break;
      case Role::baseline: impls.push_back(impl.get()); break;
      case Role::peer:
        if (cfg.peers) impls.push_back(impl.get());
        break;
      case Role::reference: break;
    }
  }
  if (!kernel_found) {
    std::string known;
    for (const auto& impl : reg.all())
      if (impl->role() == Role::kernel) known += (known.empty() ? "" : ", ") + impl->name();
    fail(fmt::format("--kernel {}: none of our kernels has that name (known: {})", cfg.kernel, known));
  }

  const int saved_threads = num_threads();
  std::vector<KernelRecord> out;
  try {
    for_each_bench_case(cfg, [&](BenchCase& c, Rng rng) { run_case(cfg, c, impls, rng, out); });
  } catch (...) {
    set_num_threads(saved_threads);
    throw;
  }
  set_num_threads(saved_threads);
  return out;
}

std::vector<SpeedupSummary> summarize_speedups(const std::vector<KernelRecord>& records) {
  using Key = std::tuple<std::string, std::string, double, std::string, int>;
  std::map<Key, std::pair<double, int>> acc;  // sum of log speedups, count
  std::vector<Key> order;
  for (const KernelRecord& r : records) {
    if (!r.ok() || r.speedup <= 0) continue;
    // DLMC sets differ in their matrices' exact sparsity: group them by the set alone.
    const bool dlmc = r.set.find('/') != std::string::npos;
    auto add = [&](const std::string& impl) {
      Key k{r.set, r.pattern, dlmc ? -1.0 : r.sparsity, impl, r.threads};
      auto [it, inserted] = acc.try_emplace(k, 0.0, 0);
      if (inserted) order.push_back(k);
      it->second.first += std::log(r.speedup);
      it->second.second += 1;
    };
    add(r.impl);
    if (r.dispatched) add("dispatched:" + r.format);  // what the runtime would run, per format
  }
  std::vector<SpeedupSummary> out;
  for (const Key& k : order) {
    const auto& [sum, count] = acc[k];
    SpeedupSummary s;
    std::tie(s.set, s.pattern, s.sparsity, s.impl, s.threads) = k;
    s.count = count;
    s.geomean_speedup = std::exp(sum / count);
    out.push_back(std::move(s));
  }
  return out;
}

nlohmann::json to_json(const KernelRecord& r) {
  nlohmann::json j;
  j["set"] = r.set;
  j["matrix"] = r.matrix;
  j["comment"] = r.comment;
  j["m"] = r.m;
  j["k"] = r.k;
  j["n"] = r.n;
  j["pattern"] = r.pattern;
  j["sparsity"] = r.sparsity;
  j["achieved_sparsity"] = r.achieved;
  j["nnz"] = r.nnz;
  j["impl"] = r.impl;
  j["library"] = r.library;
  j["role"] = r.role;
  j["format"] = r.format;
  j["threads"] = r.threads;
  j["cache"] = cache_mode_name(r.cache);
  j["copies"] = r.copies;
  j["status"] = r.status;
  j["verified"] = r.verified;
  j["dispatched"] = r.dispatched;
  j["max_rel_error"] = r.max_rel_error;
  j["median_ms"] = r.stats.median_ms;
  j["p10_ms"] = r.stats.p10_ms;
  j["p90_ms"] = r.stats.p90_ms;
  j["mean_ms"] = r.stats.mean_ms;
  j["stddev_ms"] = r.stats.stddev_ms;
  j["min_ms"] = r.stats.min_ms;
  j["cv"] = r.stats.cv;
  j["noisy"] = r.stats.noisy;
  j["noisy_cv_threshold"] = kNoisyCv;
  j["weight_bytes"] = r.weight_bytes;
  j["useful_gflops"] = r.useful_gflops;
  j["effective_gflops"] = r.effective_gflops;
  j["speedup"] = r.speedup;
  j["baseline"] = r.baseline;
  j["samples_ms"] = r.stats.samples_ms;
  return j;
}

nlohmann::json to_json(const SpeedupSummary& s) {
  nlohmann::json j;
  j["set"] = s.set;
  j["pattern"] = s.pattern;
  if (s.sparsity >= 0) j["sparsity"] = s.sparsity;
  j["impl"] = s.impl;
  j["threads"] = s.threads;
  j["count"] = s.count;
  j["geomean_speedup"] = s.geomean_speedup;
  return j;
}

}  // namespace sb
