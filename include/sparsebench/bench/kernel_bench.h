#pragma once
// The SpMM sweep behind `sparsebench kernels`: for each case (a model shape with a pruning pattern
// and sparsity, or a real pruned DLMC matrix) and each thread count, every implementation (ours,
// the oneDNN dense baselines, the peer libraries) is verified against the reference kernel, then
// timed interleaved with the others in the same run, and its speedup taken against the fastest
// oneDNN implementation of that very case.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparsebench/bench/shapes.h"
#include "sparsebench/bench/stats.h"
#include "sparsebench/core/rng.h"
#include "sparsebench/kernels/spmm.h"
#include "sparsebench/prune/pattern.h"

namespace sb {

enum class CacheMode {
  hot,   // one buffer set, reused: weights and activations stay in cache when they fit
  cold,  // rotate among copies of (packed weight, X, Y) that together exceed the last-level cache,
         // as a layer inside a real network sees them. On the GPU: the L2 is flushed (a write of
         // twice its size) before each timed call, one call between two CUDA events.
  stream,  // GPU only: copies of the operator whose weights together exceed twice the L2, called
           // back to back in one CUDA graph (one X and Y, as a layer's activations arrive from
           // the layer before): every call streams its weight from HBM, but no call pays the
           // per-call event / launch floor of `cold`. Per-call time = graph time / copies.
};
const char* cache_mode_name(CacheMode c);
CacheMode parse_cache_mode(const std::string& text);  // "hot" | "cold" | "stream"

// A real pruned matrix (DLMC .smtx[.gz]): its pattern, with random values, and its N.
struct MatrixCase {
  std::string path;
  std::string name;  // file name without .smtx[.gz]
  std::string set;   // the directory it came from, e.g. "rn50/magnitude_pruning/0.9"
  std::int64_t n = 0;
};

struct KernelBenchConfig {
  std::vector<GemmShape> shapes;       // model shapes, pruned with each pattern x sparsity
  std::vector<MatrixCase> matrices;    // DLMC matrices, taken as they are (patterns unused)
  std::vector<Pattern> patterns;
  std::vector<double> sparsities;      // each in [0, 1)
  std::vector<int> threads;            // each >= 1
  std::string kernel;                  // non-empty: of our kernels, only this one
  bool peers = true;
  bool verify = true;
  // False (default): of our kernels, only those of the best ISA this CPU offers (capped by
  // SB_ISA), which are the ones the dispatcher uses; true: the AVX2 and scalar fallbacks too.
  bool all_isas = false;
  CacheMode cache = CacheMode::hot;
  int min_reps = 10;
  double min_seconds = 0.1;            // timed seconds per implementation and case, at least
  int warmup = 2;
  int rounds = 5;                      // interleaving: each impl is timed in this many slices
  std::uint64_t seed = 0x5eed;
  // Cold mode: copies until their bytes exceed this factor times the LLC, at most max_copies.
  double cold_llc_factor = 2.0;
  int max_copies = 64;
  std::function<void(const std::string&)> progress;  // one line per case; may be empty
};

struct KernelRecord {
  std::string set;         // shape file ("bert_base"), "cli", or the DLMC directory
  std::string matrix;      // "768x768x128", or the DLMC matrix name
  std::string comment;     // the shape's comment
  std::int64_t m = 0, k = 0, n = 0;
  std::string pattern;     // canonical pattern text ("unstructured" for DLMC)
  double sparsity = 0;     // requested (DLMC: the matrix's own)
  double achieved = 0;     // pruned fraction of the weight actually benchmarked
  std::int64_t nnz = 0;
  std::string impl, library, role, format;
  int threads = 1;
  CacheMode cache = CacheMode::hot;
  int copies = 1;          // buffer sets rotated (1 when hot)
  std::string status;      // "ok", "skipped: <why>", "failed: <why>"
  Stats stats;             // empty unless status == "ok"
  std::size_t weight_bytes = 0;
  double useful_gflops = 0;     // 2 * nnz * n / median
  double effective_gflops = 0;  // 2 * m * k * n / median (dense-equivalent)
  double speedup = 0;           // best oneDNN median / this median; 0 when either is missing
  std::string baseline;         // the oneDNN implementation the speedup is against
  double max_rel_error = 0;     // verification: max |y - ref| / max(|ref|), when verified
  bool verified = false;
  bool dispatched = false;      // the kernel the registry's dispatcher picks for this case and format

  bool ok() const { return status == "ok"; }
};

std::vector<KernelRecord> run_kernel_bench(const KernelBenchConfig& config);

// One case of a sweep with its weight built: a shape pruned with a pattern at a sparsity, or a
// DLMC matrix's pattern with random values. The CPU and the GPU sweeps both enumerate cases
// through for_each_bench_case, so one seed gives both the same weights.
struct BenchCase {
  std::string set, matrix, comment, pattern;
  SpmmDesc desc;                 // m, k, n (no bias, no ReLU)
  double sparsity = 0, achieved = 0;
  std::int64_t nnz = 0;
  SpmmWeight weight;
  std::string skip;              // non-empty: the weight could not be built (e.g. a block that does not fit)
};

// Every case of `config` in order: shapes x patterns x sparsities (N:M at its own sparsity, dense
// at 0), then the DLMC matrices. Each case's weight comes from its own stream of config.seed;
// `fn` receives the case and a further stream for the run's inputs.
void for_each_bench_case(const KernelBenchConfig& config, const std::function<void(BenchCase&, Rng)>& fn);


// Geometric mean of the speedups over the matrices of one set (per pattern, sparsity, impl,
// threads), of the records that ran.
struct SpeedupSummary {
  std::string set, pattern, impl;
  double sparsity = 0;
  int threads = 1;
  int count = 0;
  double geomean_speedup = 0;
};
std::vector<SpeedupSummary> summarize_speedups(const std::vector<KernelRecord>& records);

nlohmann::json to_json(const KernelRecord& r);
nlohmann::json to_json(const SpeedupSummary& s);

// DLMC: the .smtx files of `path` (a directory or one file), each with its N: from
// rn50_batchsizes.txt ("layer_name,N" per line) found in the file's directory or up to three
// directories above it, when it lists the matrix, else `default_n` (tokens). Throws sb::Error when
// the path holds no matrix or default_n < 1 is needed.
std::vector<MatrixCase> list_matrix_cases(const std::string& path, std::int64_t default_n);

}  // namespace sb
