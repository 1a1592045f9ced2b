// `sparsebench kernels --device cuda`: the GPU sweep (sb::gpu::run_gpu_kernel_bench) and its
// output. Speedups: against the fastest cuBLAS of the same case and dtype, and against the fastest
// cuSPARSE, both measured in the same run.
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "gpu_kernels.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/system_info.h"
#include "sparsebench/kernels/cuda_spmm.h"

namespace sb::cli {
namespace {

void print_table(const std::vector<gpu::GpuKernelRecord>& recs) {
  std::cout << fmt::format("{:<16} {:<18} {:>5} {:<5} {:<28} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>8}  {}\n",
                           "shape", "pattern", "spars", "dtype", "impl", "median_ms", "p10_ms", "p90_ms", "TF/s_eff",
                           "weightMB", "vs_cublas", "vs_cusprs", "mJ/call", "status");
  std::string last;
  for (const gpu::GpuKernelRecord& g : recs) {
    const KernelRecord& r = g.base;
    const std::string key = fmt::format("{}|{}|{}|{}|{}", r.set, r.matrix, r.pattern, r.achieved, g.dtype);
    if (!last.empty() && key != last) std::cout << "\n";
    last = key;
    const std::string shape = fmt::format("{}x{}x{}", r.m, r.k, r.n);
    if (r.ok())
      std::cout << fmt::format("{:<16} {:<18} {:>5.3f} {:<5} {:<28} {:>9.4f} {:>9.4f} {:>9.4f} {:>8.2f} {:>8.3f} {:>8.2f}x {:>8.2f}x {:>8}  {}\n",
                               shape, r.pattern, r.achieved, g.dtype, r.impl, r.stats.median_ms, r.stats.p10_ms,
                               r.stats.p90_ms, r.effective_gflops * 1e-3, r.weight_bytes / 1048576.0, r.speedup,
                               g.speedup_vs_cusparse,
                               g.energy_status == "ok" ? fmt::format("{:.4f}", g.energy_mj_per_call) : std::string("-"),
                               g.note);
    else
      std::cout << fmt::format("{:<16} {:<18} {:>5.3f} {:<5} {:<28} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>8}  {}\n",
                               shape, r.pattern, r.achieved, g.dtype, r.impl, "-", "-", "-", "-", "-", "-", "-", "-",
                               r.status);
  }
  bool header = false;
  for (const gpu::GpuSpeedupSummary& s : gpu::summarize_gpu_speedups(recs)) {
    if (s.count < 2) continue;
    if (!header) {
      std::cout << fmt::format("\ngeometric mean of speedups per set\n{:<32} {:<18} {:>5} {:<5} {:<28} {:>5} {:>9} {:>9}\n",
                               "set", "pattern", "spars", "dtype", "impl", "cases", "vs_cublas", "vs_cusprs");
      header = true;
    }
    std::cout << fmt::format("{:<32} {:<18} {:>5} {:<5} {:<28} {:>5} {:>8.2f}x {:>8.2f}x\n", s.set, s.pattern,
                             s.sparsity >= 0 ? fmt::format("{:.2f}", s.sparsity) : "-", s.dtype, s.impl, s.count,
                             s.geomean_vs_cublas, s.geomean_vs_cusparse);
  }
  std::cout << "\nvs_cublas = fastest cuBLAS / cuBLASLt median of the same case and dtype / this median, same run; "
               "vs_cusprs likewise against cuSPARSE\n";
}

void print_csv(const std::vector<gpu::GpuKernelRecord>& recs) {
  std::cout << "set,matrix,m,k,n,pattern,sparsity,achieved_sparsity,nnz,impl,library,role,format,dtype,cache,status,"
               "median_ms,p10_ms,p90_ms,weight_bytes,gpu_mem_bytes,speedup,speedup_vs_cusparse,energy_mj_per_call,"
               "avg_power_w,note\n";
  for (const gpu::GpuKernelRecord& g : recs) {
    const KernelRecord& r = g.base;
    std::string status = r.status, note = g.note;
    for (std::string* s : {&status, &note})
      for (char& c : *s)
        if (c == '"') c = '\'';
    std::cout << fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\",{},{},{},{},{},{},{},{},{},\"{}\"\n", r.set,
                             r.matrix, r.m, r.k, r.n, r.pattern, r.sparsity, r.achieved, r.nnz, r.impl, r.library, r.role,
                             r.format, g.dtype, cache_mode_name(r.cache), status, r.stats.median_ms, r.stats.p10_ms,
                             r.stats.p90_ms, r.weight_bytes, g.gpu_mem_bytes, r.speedup, g.speedup_vs_cusparse,
                             g.energy_mj_per_call, g.avg_power_w, note);
  }
}

}  // namespace

int run_kernels_cuda(const KernelBenchConfig& cfg, const std::string& dtypes, bool energy, const std::string& kernel,
                     const std::vector<std::string>& skip, const std::string& format) {
  gpu::GpuBenchOptions opts;
  opts.dtypes.clear();
  std::stringstream ss(dtypes);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      opts.dtypes.push_back(gpu::parse_gpu_dtype(item));
    } catch (const Error& e) {
      fail(fmt::format("--dtype '{}': {}", dtypes, e.what()));
    }
  }
  opts.energy = energy;
  opts.only = kernel;
  opts.skip = skip;
  gpu::GpuContextLoss lost;
  const std::vector<gpu::GpuKernelRecord> recs = gpu::run_gpu_kernel_bench(cfg, opts, &lost);
  // The protocols' floors, measured after the sweep (the GPU is warm), to read its figures by.
  gpu::GpuTimingFloor floor;
  if (lost.impl.empty())
    floor = gpu::measure_timing_floor();
  else
    floor.why = "not measured: " + lost.what;
  if (format == "json") {
    nlohmann::json j;
    j["device"] = "cuda";
    j["system"] = to_json(system_info());
    j["timing_floor"] = gpu::to_json(floor);
    j["records"] = nlohmann::json::array();
    for (const auto& r : recs) {
      nlohmann::json jr = gpu::to_json(r);
      jr["speedup_ceiling"] = gpu::speedup_ceiling(r, floor);
      j["records"].push_back(std::move(jr));
    }
    j["geomeans"] = nlohmann::json::array();
    for (const auto& s : gpu::summarize_gpu_speedups(recs)) j["geomeans"].push_back(gpu::to_json(s));
    std::cout << j.dump(1) << "\n";
  } else if (format == "csv") {
    print_csv(recs);
  } else {
    print_table(recs);
    if (floor.why.empty()) {
      std::cout << fmt::format("timing floor (an empty kernel per call, medians): cold {:.2f} us, hot {:.2f} us, "
                               "in a CUDA graph {:.2f} us per call\n",
                               floor.cold_us, floor.hot_us, floor.graph_us);
      // Per case: how far any kernel could go, so that a missed speedup target can be read as the
      // kernel's shortfall or the protocol's.
      std::string last;
      bool header = false;
      for (const gpu::GpuKernelRecord& g : recs) {
        const double c = gpu::speedup_ceiling(g, floor);
        const KernelRecord& r = g.base;
        const std::string key = fmt::format("{}x{}x{} {} {} {}", r.m, r.k, r.n, r.pattern, g.dtype, cache_mode_name(r.cache));
        if (c <= 0 || key == last) continue;
        last = key;
        if (!header) std::cout << "speedup ceiling (the case's cuBLAS median / the protocol's floor: an empty kernel's speedup)\n";
        header = true;
        std::cout << fmt::format("  {:<44} {:>8.2f}x\n", key, c);
      }
    }
  }
  if (lost.impl.empty()) return 0;
  std::cout.flush();
  std::vector<std::string> again = skip;
  again.push_back(lost.impl);
  std::cerr << fmt::format("sparsebench: error: {}; the output keeps what ran before it; rerun without it: --skip-kernels {}\n",
                           lost.what, fmt::join(again, ","));
  return kExitContextLost;
}

nlohmann::json gpu_model_json(const GpuModelBenchResult& r) {
  auto side = [&](const GpuModelBenchSide& s) {
    nlohmann::json j = {{"median_ms", s.stats.median_ms}, {"p10_ms", s.stats.p10_ms}, {"p90_ms", s.stats.p90_ms},
                        {"cv", s.stats.cv}, {"noisy", s.stats.noisy}, {"samples", s.stats.samples_ms.size()},
                        {"samples_ms", s.stats.samples_ms}, {"throughput_samples_per_s", s.throughput},
                        {"weight_bytes", s.weight_bytes}, {"workspace_bytes", s.workspace_bytes}};
    j["energy_j"] = s.energy_j ? nlohmann::json(*s.energy_j) : nlohmann::json(nullptr);
    j["graph"] = {{"median_ms", s.graph.median_ms}, {"p10_ms", s.graph.p10_ms}, {"p90_ms", s.graph.p90_ms},
                  {"cv", s.graph.cv}, {"noisy", s.graph.noisy}, {"samples_ms", s.graph.samples_ms}};
    return j;
  };
  nlohmann::json layers = nlohmann::json::array();
  for (const GpuModelBenchLayer& l : r.layers)
    layers.push_back({{"name", l.name}, {"op", l.op}, {"m", l.m}, {"k", l.k}, {"n", l.n}, {"sparsity", l.sparsity},
                      {"format", l.format}, {"dense_impl", l.dense_impl}, {"sparse_impl", l.sparse_impl},
                      {"dense_ms", l.dense_ms}, {"sparse_ms", l.sparse_ms}, {"dense_bytes", l.dense_bytes},
                      {"sparse_bytes", l.sparse_bytes}, {"flops", l.flops}, {"candidates", l.candidates},
                      {"dense_candidates", l.dense_candidates}, {"dense_note", l.dense_note}});
  return {{"device", "cuda"},
          {"gpu", r.device},
          {"model", r.model},
          {"pattern", r.pattern},
          {"sparsity", r.sparsity},
          {"achieved_sparsity", r.achieved_sparsity},
          {"dtype", r.dtype},
          {"batch", r.batch},
          {"dense", side(r.dense)},
          {"sparse", side(r.sparse)},
          {"speedup", r.speedup},
          {"graph_speedup", r.graph_speedup},
          {"graph_note", r.graph_note},
          {"noisy", r.noisy},
          {"covered_flops", r.covered_flops},
          {"total_flops", r.total_flops},
          {"excluded", r.excluded},
          {"dense_baseline", r.dense_baseline},
          {"energy", r.energy_note},
          {"seconds", r.seconds},
          {"layers", layers}};
}

int run_bench_cuda(const GpuModelBenchConfig& c, const std::string& format) {
  const GpuModelBenchResult r = run_gpu_model_bench(c);
  if (format == "json") {
    std::cout << gpu_model_json(r).dump(1) << "\n";
    return 0;
  }
  std::cout << fmt::format("{} on {} ({}), batch {}, pattern {} at {:.2f} (achieved {:.3f}), L2 {}\n", r.model, r.device,
                           r.dtype, r.batch, r.pattern, r.sparsity, r.achieved_sparsity,
                           c.flush_l2 ? "flushed between calls" : "hot");
  std::cout << fmt::format("conv/linear layers on the GPU: {:.1f} % of the model's FLOPs ({} layers; {} excluded)\n",
                           r.total_flops ? 100.0 * static_cast<double>(r.covered_flops) / static_cast<double>(r.total_flops) : 0.0,
                           r.layers.size(), r.excluded.size());
  std::cout << fmt::format("{:<8} {:>10} {:>10} {:>10} {:>12} {:>14} {:>10}\n", "", "median ms", "p10 ms", "p90 ms",
                           "samples/s", "weight bytes", "J/pass");
  auto row = [&](const char* what, const GpuModelBenchSide& s) {
    std::cout << fmt::format("{:<8} {:>10.4f} {:>10.4f} {:>10.4f} {:>12.1f} {:>14} {:>10}{}\n", what, s.stats.median_ms,
                             s.stats.p10_ms, s.stats.p90_ms, s.throughput, s.weight_bytes,
                             s.energy_j ? fmt::format("{:.5f}", *s.energy_j) : std::string("-"),
                             s.stats.noisy ? "  (noisy)" : "");
  };
  row("dense", r.dense);
  row("pruned", r.sparse);
  std::cout << fmt::format("speedup {:.2f}x (sum of per-layer calls, each between two events); energy: {}\n", r.speedup,
                           r.energy_note);
  std::cout << fmt::format("dense side: {}\n", r.dense_baseline);
  std::cout << fmt::format("one pass as a CUDA graph: dense {:.4f} ms, pruned {:.4f} ms, speedup {:.2f}x{} ({})\n\n",
                           r.dense.graph.median_ms, r.sparse.graph.median_ms, r.graph_speedup,
                           r.dense.graph.noisy || r.sparse.graph.noisy ? " (noisy)" : "", r.graph_note);
  std::cout << fmt::format("{:<36} {:<7} {:>16} {:>6} {:<24} {:<28} {:>9} {:>9}\n", "layer", "op", "m x k x n", "sparse",
                           "dense impl", "sparse impl", "dense ms", "ms");
  for (const GpuModelBenchLayer& l : r.layers)
    std::cout << fmt::format("{:<36} {:<7} {:>16} {:>6.3f} {:<24} {:<28} {:>9.4f} {:>9.4f}\n", l.name, l.op,
                             fmt::format("{}x{}x{}", l.m, l.k, l.n), l.sparsity, l.dense_impl, l.sparse_impl,
                             l.dense_ms, l.sparse_ms);
  for (const std::string& e : r.excluded) std::cout << "excluded: " << e << "\n";
  return 0;
}

}  // namespace sb::cli
