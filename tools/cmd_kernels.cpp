// sparsebench kernels: SpMM speed of our kernels, the oneDNN dense baseline and the peer libraries,
// case by case, verified before timing. Thin: parses flags, calls sb::run_kernel_bench, prints.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.h"
#include "gpu_kernels.h"
#include "sparsebench/bench/kernel_bench.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/threads.h"

namespace sb::cli {

std::vector<std::string> split_list(const std::string& text, const char* flag) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    SB_CHECK(b != std::string::npos, "{} '{}': an element is empty", flag, text);
    out.push_back(item.substr(b, e - b + 1));
  }
  SB_CHECK(!out.empty() && text.back() != ',', "{} '{}': an element is empty", flag, text);
  return out;
}

namespace {

struct KernelsOptions {
  std::string shapes, matrices, patterns = "unstructured,balanced:bank=32,nm:1:8,block:4x4";
  std::vector<std::string> shape_files;
  std::string sparsity = "0.5,0.7,0.9,0.95", threads, kernel, skip_kernels, format = "table", cache = "hot";
  std::int64_t n = 128;
  bool peers = true, no_verify = false, all_isas = false;
  int reps = 10, warmup = 2;
  double min_time = 0.1;
  std::string device = "cpu", dtype = "f16";  // --device cuda: tools/cmd_gpu.cpp
  bool energy = false;
};

std::vector<double> parse_sparsities(const std::string& text) {
  std::vector<double> out;
  for (const std::string& s : split_list(text, "--sparsity")) {
    std::size_t used = 0;
    double v = -1;
    try {
      v = std::stod(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    SB_CHECK(used == s.size(), "--sparsity '{}': '{}' is not a number", text, s);
    SB_CHECK(v >= 0 && v < 1, "--sparsity '{}': {} is outside [0, 1)", text, s);
    out.push_back(v);
  }
  return out;
}

std::vector<int> parse_threads(const std::string& text) {
  std::vector<int> out;
  if (text.empty()) {  // 1 and all cores
    out.push_back(1);
    if (available_cpus() > 1) out.push_back(available_cpus());
    return out;
  }
  for (const std::string& s : split_list(text, "--threads")) {
    std::size_t used = 0;
    long v = 0;
    try {
      v = std::stol(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    SB_CHECK(used == s.size(), "--threads '{}': '{}' is not an integer", text, s);
    SB_CHECK(v >= 1 && v <= 4096, "--threads '{}': {} must be a positive thread count", text, s);
    out.push_back(static_cast<int>(v));
  }
  return out;
}

// bench/shapes of the source tree: from the working directory, else above the executable.
std::string default_shape_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory("bench/shapes", ec)) return "bench/shapes";
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (fs::path d = exe.parent_path(); !ec && !d.empty(); d = d.parent_path()) {
    if (fs::is_directory(d / "bench/shapes", ec)) return (d / "bench/shapes").string();
    if (d == d.parent_path()) break;
  }
  fail("no bench/shapes directory found (from the working directory or above the executable): give --shapes or --shape-file");
}

std::string mb(std::size_t bytes) { return fmt::format("{:.3f}", bytes / 1048576.0); }

void print_table(const std::vector<KernelRecord>& recs) {
  std::cout << fmt::format("{:<16} {:<20} {:>5} {:>3} {:<34} {:>9} {:>9} {:>9} {:>6} {:>8} {:>8} {:>8} {:>7}  {}\n",
                           "shape", "pattern", "spars", "thr", "impl", "median_ms", "p10_ms", "p90_ms", "cv",
                           "GF/s_use", "GF/s_eff", "weightMB", "speedup", "status");
  std::string last;
  for (const KernelRecord& r : recs) {
    const std::string key = fmt::format("{}|{}|{}|{}|{}", r.set, r.matrix, r.pattern, r.achieved, r.threads);
    if (!last.empty() && key != last) std::cout << "\n";
    last = key;
    const std::string shape = fmt::format("{}x{}x{}", r.m, r.k, r.n);
    if (r.ok())
      std::cout << fmt::format("{:<16} {:<20} {:>5.3f} {:>3} {:<34} {:>9.4f} {:>9.4f} {:>9.4f} {:>5.1f}{} {:>8.1f} {:>8.1f} {:>8} {:>6.2f}x  {}\n",
                               shape, r.pattern, r.achieved, r.threads, r.dispatched ? r.impl + " <" : r.impl, r.stats.median_ms, r.stats.p10_ms,
                               r.stats.p90_ms, r.stats.cv * 100, r.stats.noisy ? "*" : "%", r.useful_gflops,
                               r.effective_gflops, mb(r.weight_bytes), r.speedup, r.status);
    else
      std::cout << fmt::format("{:<16} {:<20} {:>5.3f} {:>3} {:<34} {:>9} {:>9} {:>9} {:>6} {:>8} {:>8} {:>8} {:>7}  {}\n",
                               shape, r.pattern, r.achieved, r.threads, r.impl, "-", "-", "-", "-", "-", "-", "-", "-",
                               r.status);
  }
  const auto sums = summarize_speedups(recs);
  bool header = false;
  for (const SpeedupSummary& s : sums) {
    if (s.count < 2) continue;
    if (!header) {
      std::cout << fmt::format("\ngeometric mean of speedups per set\n{:<32} {:<20} {:>5} {:>3} {:<34} {:>5} {:>8}\n", "set",
                               "pattern", "spars", "thr", "impl", "cases", "geomean");
      header = true;
    }
    std::cout << fmt::format("{:<32} {:<20} {:>5} {:>3} {:<34} {:>5} {:>7.2f}x\n", s.set, s.pattern,
                             s.sparsity >= 0 ? fmt::format("{:.2f}", s.sparsity) : "-", s.threads, s.impl, s.count,
                             s.geomean_speedup);
  }
  std::cout << fmt::format("\ncv ending in * : coefficient of variation above {:.0f} % (noisy); speedup = fastest oneDNN "
                           "median / this median, same run; '<' marks the kernel the dispatcher picks\n",
                           kNoisyCv * 100);
}

void print_csv(const std::vector<KernelRecord>& recs) {
  std::cout << "set,matrix,m,k,n,pattern,sparsity,achieved_sparsity,nnz,impl,library,role,format,threads,cache,copies,"
               "status,median_ms,p10_ms,p90_ms,mean_ms,stddev_ms,cv,noisy,weight_bytes,useful_gflops,effective_gflops,"
               "speedup,baseline,dispatched,samples_ms\n";
  for (const KernelRecord& r : recs) {
    std::string status = r.status;
    for (char& c : status)
      if (c == '"') c = '\'';
    std::cout << fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\",{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                             r.set, r.matrix, r.m, r.k, r.n, r.pattern, r.sparsity, r.achieved, r.nnz, r.impl,
                             r.library, r.role, r.format, r.threads, cache_mode_name(r.cache), r.copies, status,
                             r.stats.median_ms, r.stats.p10_ms, r.stats.p90_ms, r.stats.mean_ms, r.stats.stddev_ms,
                             r.stats.cv, r.stats.noisy, r.weight_bytes, r.useful_gflops, r.effective_gflops, r.speedup,
                             r.baseline, r.dispatched, fmt::join(r.stats.samples_ms, ";"));
  }
}

}  // namespace

Command add_kernels(CLI::App& root) {
  auto* app = root.add_subcommand("kernels", "SpMM: our kernels vs oneDNN dense vs peer libraries, verified, same run");
  auto o = std::make_shared<KernelsOptions>();
  app->add_option("--shapes", o->shapes, "MxKxN,... (instead of the shape files)");
  app->add_option("--shape-file", o->shape_files, "shape files (default: every bench/shapes/*.txt)");
  app->add_option("--matrices", o->matrices, "DLMC .smtx[.gz] file or directory (real pruned patterns)");
  app->add_option("--n", o->n, "N for matrices that rn50_batchsizes.txt does not list (tokens)")->capture_default_str();
  app->add_option("--patterns", o->patterns, std::string("comma-separated: ") + kPatternGrammar)->capture_default_str();
  app->add_option("--sparsity", o->sparsity, "comma-separated sparsities in [0, 1)")->capture_default_str();
  app->add_option("--threads", o->threads, "comma-separated thread counts (default: 1 and all cores)");
  app->add_option("--kernel", o->kernel, "of our kernels, run only this one");
  app->add_option("--skip-kernels", o->skip_kernels,
                  "with --device cuda: comma-separated GPU implementations not to run (e.g. one that lost the CUDA context)");
  app->add_flag("--peers,!--no-peers", o->peers, "time the peer libraries (default on)");
  app->add_option("--format", o->format, "output format")->check(CLI::IsMember({"table", "csv", "json"}));
  app->add_flag("--no-verify", o->no_verify, "skip the check against the reference kernel");
  app->add_flag("--all-isas", o->all_isas,
                "also time our AVX2 and scalar fallbacks (default: only the best ISA this CPU offers, as dispatched)");
  app->add_option("--cache", o->cache,
                  "hot: one buffer set; cold: rotate copies exceeding the LLC (GPU: L2 flushed before each timed call); "
                  "stream (GPU only): weight copies exceeding 2x L2, called back to back in one CUDA graph")
      ->check(CLI::IsMember({"hot", "cold", "stream"}));
  app->add_option("--reps", o->reps, "minimum timed calls per implementation and case")->capture_default_str();
  app->add_option("--min-time", o->min_time, "minimum timed seconds per implementation and case")->capture_default_str();
  app->add_option("--warmup", o->warmup, "untimed calls first")->capture_default_str();
  app->add_option("--device", o->device, "cpu, or cuda (cuBLAS vs cuSPARSE, cuSPARSELt and ours; L2 flushed unless --cache hot)")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app->add_option("--dtype", o->dtype, "with --device cuda: comma-separated f32, tf32, f16, bf16, i8")->capture_default_str();
  app->add_flag("--energy", o->energy, "with --device cuda: NVML energy per call over windows of >= 1 s");
  return {app, [o, app] {
            KernelBenchConfig cfg;
            SB_CHECK(o->reps >= 1, "--reps {}: must be at least 1", o->reps);
            SB_CHECK(o->min_time >= 0 && o->min_time <= 3600, "--min-time {}: must be in [0, 3600] seconds", o->min_time);
            SB_CHECK(o->warmup >= 0, "--warmup {}: must not be negative", o->warmup);
            SB_CHECK(o->n >= 1, "--n {}: must be a positive N", o->n);
            if (!o->shapes.empty()) {
              try {
                cfg.shapes = parse_shape_list(o->shapes);
              } catch (const Error& e) {
                fail(fmt::format("--shapes: {}", e.what()));
              }
            }
            std::vector<std::string> files = o->shape_files;
            if (o->shapes.empty() && files.empty() && o->matrices.empty())
              files = list_shape_files(default_shape_dir());
            for (const std::string& f : files)
              for (GemmShape& s : load_shape_file(f)) cfg.shapes.push_back(std::move(s));
            if (!o->matrices.empty()) cfg.matrices = list_matrix_cases(o->matrices, o->n);
            for (const std::string& p : split_list(o->patterns, "--patterns")) {
              try {
                cfg.patterns.push_back(Pattern::parse(p));
              } catch (const Error& e) {
                fail(fmt::format("--patterns: {}", e.what()));
              }
            }
            cfg.sparsities = parse_sparsities(o->sparsity);
            cfg.threads = parse_threads(o->threads);
            cfg.kernel = o->kernel;
            cfg.peers = o->peers;
            cfg.all_isas = o->all_isas;
            cfg.verify = !o->no_verify;
            cfg.cache = parse_cache_mode(o->cache);
            cfg.min_reps = o->reps;
            cfg.min_seconds = o->min_time;
            cfg.warmup = o->warmup;
            if (isatty(STDERR_FILENO)) cfg.progress = [](const std::string& line) { std::cerr << "... " << line << "\n"; };
            if (o->device == "cuda") {
              if (app->count("--cache") == 0) cfg.cache = CacheMode::cold;  // the GPU default: L2 flushed
              const std::vector<std::string> skip =
                  o->skip_kernels.empty() ? std::vector<std::string>{} : split_list(o->skip_kernels, "--skip-kernels");
              return run_kernels_cuda(cfg, o->dtype, o->energy, o->kernel, skip, o->format);
            }
            SB_CHECK(o->skip_kernels.empty(), "--skip-kernels: only with --device cuda (on the CPU, --kernel picks one of ours)");
            const std::vector<KernelRecord> recs = run_kernel_bench(cfg);
            if (o->format == "json") {
              nlohmann::json j = nlohmann::json::array();
              for (const KernelRecord& r : recs) j.push_back(to_json(r));
              std::cout << j.dump(1) << "\n";
            } else if (o->format == "csv") {
              print_csv(recs);
            } else {
              print_table(recs);
            }
            return 0;
          }};
}

}  // namespace sb::cli
