// Whole models on the GPU, layer by layer (see include/sparsebench/bench/gpu_model_bench.h).
#include "sparsebench/bench/gpu_model_bench.h"
#include "sparsebench/bench/model_bench.h"

#include <algorithm>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "kernels/cuda/gpu_internal.h"
#include "sparsebench/core/error.h"
#include "sparsebench/core/rng.h"
#include "sparsebench/core/system_info.h"
#include "sparsebench/kernels/cuda_spmm.h"
#include "sparsebench/models/zoo.h"
#include "sparsebench/prune/mask.h"
#include "sparsebench/runtime/passes.h"

namespace sb {
namespace {

using gpu::DeviceBuffer;
using gpu::GpuDType;
using gpu::GpuSpmmDesc;
using gpu::GpuSpmmImpl;
using gpu::GpuSpmmOp;

constexpr std::int64_t kVerifyMacs = std::int64_t{1} << 29;

// One GEMM of the model on the device: its X and Y, and the op chosen for it.
struct Lowered {
  std::int64_t m = 0, k = 0, n = 0;
  Tensor w, mask;  // [m x k] f32, mask u8 or undefined
  Pattern pattern;
  std::optional<gpu::GpuConvDesc> conv;  // a convolution's geometry (dtype unset), for cuDNN
};

struct Timed {
  std::unique_ptr<GpuSpmmOp> op;
  std::string impl;
  Stats stats;
  std::size_t weight_bytes = 0, workspace_bytes = 0;
  std::string note;  // what the op chose (GpuSpmmOp::note)
};

struct Buffers {
  DeviceBuffer x, y;
};

// The conv2d / linear nodes the GPU side covers, as GEMMs; *why for the others.
std::optional<Lowered> lower(const Graph& g, const Node& n, std::string* why) {
  const Tensor w = n.param("weight").contiguous();
  const Shape& ys = g.value(n.output).shape;
  Lowered l;
  l.m = w.size(0);
  if (n.op == OpKind::conv2d) {
    if (n.attrs.groups != 1) {
      *why = fmt::format("grouped convolution (groups = {}): not lowered to one GEMM", n.attrs.groups);
      return std::nullopt;
    }
    l.k = w.size(1) * w.size(2) * w.size(3);
    l.n = ys[0] * ys[2] * ys[3];
    const Shape& xs = g.value(n.inputs.at(0)).shape;
    gpu::GpuConvDesc cd;
    cd.batch = xs[0];
    cd.in_channels = xs[1];
    cd.height = xs[2];
    cd.width = xs[3];
    cd.out_channels = l.m;
    cd.kernel = {w.size(2), w.size(3)};
    cd.stride = n.attrs.stride;
    cd.padding = n.attrs.padding;
    cd.dilation = n.attrs.dilation;
    if (check_conv_desc(cd).empty() && cd.gemm_k() == l.k && cd.gemm_n() == l.n) l.conv = cd;
  } else {
    l.k = w.size(1);
    l.n = shape_numel(ys) / l.m;
  }
  l.w = w.reshape({l.m, l.k}).contiguous();
  const bool pruned = n.mask.defined() && mask_sparsity(n.mask) > 0;
  if (pruned) {
    l.mask = n.mask.contiguous().reshape({l.m, l.k}).contiguous();
    l.pattern = n.pattern;
  }
  return l;
}

Buffers make_buffers(const Lowered& l, GpuDType dt, Rng& rng, std::vector<float>* x_host) {
  std::vector<float> x(static_cast<std::size_t>(l.k * l.n));
  for (float& v : x) v = gpu::round_to(rng.uniform(-1.f, 1.f), dt);
  const std::vector<std::uint8_t> bytes = gpu::to_storage(x.data(), x.size(), dt);
  Buffers b{DeviceBuffer(bytes.size()), DeviceBuffer(static_cast<std::size_t>(l.m * l.n) * gpu::y_elem_bytes(dt))};
  b.x.upload(bytes.data(), bytes.size());
  if (x_host) *x_host = std::move(x);
  return b;
}

// Initializes, verifies and times each candidate; keeps the fastest. Problems (a candidate that
// fails to initialize or to verify) go to `problems` and the candidate is not used.
Timed fastest(const std::vector<const GpuSpmmImpl*>& cands, const GpuSpmmDesc& d, const SpmmWeight& w,
              const Buffers& buf, const std::vector<float>& x, const GpuModelBenchConfig& c, const std::string& layer,
              std::vector<std::string>& problems, std::string* record) {
  Timed best;
  std::vector<double> ref;
  // The host reference is O(m k n) in double: layers beyond kVerifyMacs are left to the kernel
  // tests (tests/cuda), which check every implementation on fresh data and edge shapes.
  const bool verify = c.verify && d.m * d.k * d.n <= kVerifyMacs;
  if (verify) ref = gpu::reference(gpu::host_weight(w, d.dtype), x, d.n);
  for (const GpuSpmmImpl* impl : cands) {
    try {
      std::unique_ptr<GpuSpmmOp> op = impl->initialize(d, w);
      if (verify) {
        std::vector<float> y(static_cast<std::size_t>(d.m * d.n));
        gpu::run_on_host_data(*op, d, x.data(), y.data());
        double rel = 0;
        const std::string bad = gpu::compare(ref, y, d.n, gpu::tolerance(d.dtype, d.k) * impl->error_scale(d.dtype), &rel);
        if (!bad.empty()) {
          problems.push_back(fmt::format("{}: {} failed verification: {}", layer, impl->name(), bad));
          continue;
        }
      }
      Stats s = gpu::time_gpu_op(*op, buf.x.get(), buf.y.get(), c.warmup, c.min_reps, c.min_seconds, c.flush_l2);
      if (record) *record += fmt::format("{}{}={:.4f}", record->empty() ? "" : ",", impl->name(), s.median_ms);
      if (!best.op || s.median_ms < best.stats.median_ms) {
        best.weight_bytes = op->weight_bytes();
        best.workspace_bytes = op->workspace_bytes();
        best.note = op->note();
        best.op = std::move(op);
        best.impl = impl->name();
        best.stats = std::move(s);
      }
    } catch (const std::exception& e) {
      // A sticky error (gpu_context_lost) fails every later CUDA call of this process: stop here,
      // naming the implementation, rather than let every later candidate and layer fail.
      if (const std::string lost = gpu::gpu_context_lost(); !lost.empty())
        fail(fmt::format("layer '{}': {} lost the CUDA context ({}: {}); rerun without it: --skip-kernels {}", layer,
                         impl->name(), lost, e.what(), impl->name()));
      problems.push_back(fmt::format("{}: {} failed: {}", layer, impl->name(), e.what()));
    }
  }
  return best;
}

// The dense side of a convolution layer may also be cuDNN's convolution of the image (implicit
// im2col, Winograd, FFT: what a network runs), where that is faster than cuBLAS on the lowered GEMM
// (whose im2col is not timed, on either side). Verified like every candidate, on its own image;
// replaces `best` (and its buffers) when faster. Problems go to `problems`, as in fastest().
void try_cudnn(const Lowered& l, GpuDType dt, Rng& rng, const GpuModelBenchConfig& c, const std::string& layer,
               Timed& best, Buffers*& best_buf, std::vector<std::unique_ptr<Buffers>>& buffers,
               std::vector<std::string>& problems, std::string* record) {
  gpu::GpuConvDesc d = *l.conv;
  d.dtype = dt;
  try {
    std::vector<float> img(static_cast<std::size_t>(d.input_elems()));
    for (float& v : img) v = gpu::round_to(rng.uniform(-1.f, 1.f), dt);
    std::unique_ptr<gpu::GpuConvOp> op = gpu::make_cudnn_conv(d, l.w.data<float>());
    if (c.verify && l.m * l.k * l.n <= kVerifyMacs) {
      const std::vector<double> ref =
          gpu::reference(gpu::host_weight(SpmmWeight{l.w, Tensor(), Pattern{}}, dt), gpu::im2col(d, img.data()), l.n);
      std::vector<float> y(static_cast<std::size_t>(l.m * l.n));
      gpu::run_conv_on_host_data(*op, d, img.data(), y.data());
      double rel = 0;
      const std::string bad = gpu::compare(ref, y, l.n, gpu::tolerance(dt, l.k) * op->error_scale(), &rel);
      if (!bad.empty()) {
        problems.push_back(fmt::format("{}: cudnn_conv ({}) failed verification: {}", layer, op->note(), bad));
        return;
      }
    }
    std::vector<float> host = img;
    if (op->layout() == "nhwc") host = gpu::nchw_to_nhwc(img.data(), d.batch, d.in_channels, d.height, d.width);
    const std::vector<std::uint8_t> bytes = gpu::to_storage(host.data(), host.size(), dt);
    auto buf = std::make_unique<Buffers>(Buffers{DeviceBuffer(bytes.size()),
                                                 DeviceBuffer(static_cast<std::size_t>(l.m * l.n) * gpu::y_elem_bytes(dt))});
    buf->x.upload(bytes.data(), bytes.size());
    Stats s = gpu::time_gpu_op(*op, buf->x.get(), buf->y.get(), c.warmup, c.min_reps, c.min_seconds, c.flush_l2);
    if (record) *record += fmt::format("{}cudnn_conv={:.4f}", record->empty() ? "" : ",", s.median_ms);
    if (!best.op || s.median_ms < best.stats.median_ms) {
      best.weight_bytes = op->weight_bytes();
      best.workspace_bytes = op->workspace_bytes();
      best.note = op->note();
      best.op = std::move(op);
      best.impl = gpu::kCudnnConvName;
      best.stats = std::move(s);
      buffers.push_back(std::move(buf));
      best_buf = buffers.back().get();
    }
  } catch (const std::exception& e) {
    if (const std::string lost = gpu::gpu_context_lost(); !lost.empty())
      fail(fmt::format("layer '{}': cudnn_conv lost the CUDA context ({}: {}); rerun without it: --skip-kernels {}",
                       layer, lost, e.what(), gpu::kCudnnConvName));
    problems.push_back(fmt::format("{}: cudnn_conv failed: {}", layer, e.what()));
  }
}

// Per-pass samples: the sum over layers of each layer's i-th sample (as many as the shortest).
Stats sum_samples(const std::vector<const Stats*>& parts) {
  std::size_t count = SIZE_MAX;
  for (const Stats* s : parts) count = std::min(count, s->samples_ms.size());
  if (parts.empty() || count == 0) return {};
  std::vector<double> total(count, 0.0);
  for (const Stats* s : parts)
    for (std::size_t i = 0; i < count; ++i) total[i] += s->samples_ms[i];
  return summarize(std::move(total));
}

// NVML energy per pass: back-to-back passes over `ops` for >= 1 s (no flush, no events).
std::optional<double> pass_energy(gpu::EnergyMeter& meter, const std::vector<std::pair<GpuSpmmOp*, Buffers*>>& ops,
                                  std::string* note) {
  if (!meter.available()) {
    *note = meter.why();
    return std::nullopt;
  }
  std::uint64_t e0 = 0, e1 = 0;
  if (!meter.total_energy_mj(&e0)) {
    *note = meter.why();
    return std::nullopt;
  }
  const double t0 = Timer::now_seconds();
  std::int64_t passes = 0;
  int batch = 4;
  while (Timer::now_seconds() - t0 < 1.0) {
    for (int i = 0; i < batch; ++i)
      for (const auto& [op, b] : ops) op->run(b->x.get(), b->y.get(), nullptr);
    passes += batch;
    gpu::gpu_synchronize();
    batch = std::min(batch * 2, 1024);
  }
  const double secs = Timer::now_seconds() - t0;
  if (!meter.total_energy_mj(&e1) || e1 <= e0) {
    *note = "unavailable: the NVML energy counter did not advance";
    return std::nullopt;
  }
  *note = fmt::format("NVML total energy over {:.2f} s of back-to-back passes (average {:.0f} W)", secs,
                      static_cast<double>(e1 - e0) * 1e-3 / secs);
  return static_cast<double>(e1 - e0) * 1e-3 / static_cast<double>(passes);
}

}  // namespace

GpuModelBenchResult run_gpu_model_bench(const GpuModelBenchConfig& c) {
  const Timer wall;
  gpu::check_gpu_impl_names(c.skip, "--skip-kernels");
  if (const std::string why = gpu::gpu_unavailable_reason(); !why.empty()) fail(fmt::format("--device cuda: {}", why));
  const GpuDType dt = gpu::parse_gpu_dtype(c.dtype);
  SB_CHECK(dt != GpuDType::i8, "--dtype i8: whole models run in f32, tf32, f16 or bf16 on the GPU");
  SB_CHECK(c.batch >= 1, "batch must be >= 1, got {}", c.batch);
  const GpuSpmmImpl* named = nullptr;
  if (c.kernel != "auto") {
    named = gpu::find_gpu_impl(c.kernel);
    if (!named) {
      std::string known;
      for (const auto& i : gpu::gpu_spmm_impls())
        if (i->role() != Role::baseline) known += (known.empty() ? "" : ", ") + i->name();
      fail(fmt::format("--kernel {}: no GPU implementation has that name (expected auto or one of: {})", c.kernel,
                       known));
    }
  }

  const PrunedModel pm = build_pruned_model(c);
  const Graph& dense_graph = pm.dense;
  const Graph& pruned_graph = pm.pruned;
  const PruneOptions& po = pm.options;
  const PruneReport& report = pm.report;

  GpuModelBenchResult res;
  res.model = c.model;
  res.model_signature = pm.dense.signature();
  res.pattern = po.pattern.to_string();
  res.sparsity = po.sparsity;
  res.achieved_sparsity = report.achieved;
  res.dtype = gpu::gpu_dtype_name(dt);
  res.batch = c.batch;
  std::string why_none;
  const auto gpus = cuda_devices(&why_none);
  res.device = gpus.empty() ? "cuda" : gpus.front().name;

  std::vector<const GpuSpmmImpl*> blas, sparse_impls;
  for (const auto& i : gpu::gpu_spmm_impls()) {
    if (std::find(c.skip.begin(), c.skip.end(), i->name()) != c.skip.end()) continue;
    if (i->library() == "cublas") blas.push_back(i.get());
    else if (named ? i.get() == named : i->name().find("_simple__") == std::string::npos) sparse_impls.push_back(i.get());
  }
  SB_CHECK(!blas.empty(), "--device cuda: no cuBLAS implementation in this build");
  const bool skip_cudnn = std::find(c.skip.begin(), c.skip.end(), gpu::kCudnnConvName) != c.skip.end();
  const std::string cudnn_why = skip_cudnn ? fmt::format("left out (--skip-kernels {})", gpu::kCudnnConvName) : gpu::cudnn_unavailable_reason();

  std::map<std::string, const Node*> dense_by_name;
  for (const Node& n : dense_graph.nodes()) dense_by_name[n.name] = &n;
  for (std::size_t i = 0; i < dense_graph.nodes().size(); ++i) res.total_flops += dense_graph.cost(static_cast<int>(i)).flops;

  Rng rng(c.seed + 1);
  std::vector<std::string> problems, cudnn_problems;  // cuDNN's never fail a --kernel run
  // Device memory: every layer's two ops stay alive for the energy passes (BERT-base f16: ~0.2 GB).
  std::vector<std::unique_ptr<Buffers>> buffers;
  std::vector<Timed> keep;
  std::vector<std::pair<GpuSpmmOp*, Buffers*>> dense_pass, sparse_pass;
  std::vector<const Stats*> dense_parts, sparse_parts;
  keep.reserve(2 * pruned_graph.nodes().size());
  for (const Node& n : pruned_graph.nodes()) {
    if (n.op != OpKind::conv2d && n.op != OpKind::linear) continue;
    std::string why;
    const auto it = dense_by_name.find(n.name);
    SB_CHECK(it != dense_by_name.end(), "layer '{}' of the pruned model has no dense twin", n.name);
    const std::optional<Lowered> ls = lower(pruned_graph, n, &why);
    const std::optional<Lowered> ld = ls ? lower(dense_graph, *it->second, &why) : std::nullopt;
    if (!ls || !ld) {
      res.excluded.push_back(fmt::format("{} ({}): {}", n.name, op_name(n.op), why));
      continue;
    }
    GpuModelBenchLayer layer;
    layer.name = n.name;
    layer.op = op_name(n.op);
    layer.m = ls->m;
    layer.k = ls->k;
    layer.n = ls->n;
    layer.sparsity = ls->mask.defined() ? mask_sparsity(ls->mask) : 0.0;
    layer.flops = 2 * ld->m * ld->k * ld->n;
    res.covered_flops += dense_graph.cost(static_cast<int>(it->second - dense_graph.nodes().data())).flops;

    // Dense side: the unpruned weight, fastest cuBLAS.
    std::vector<float> xd;
    buffers.push_back(std::make_unique<Buffers>(make_buffers(*ld, dt, rng, &xd)));
    Buffers* bd = buffers.back().get();
    const GpuSpmmDesc dd{ld->m, ld->k, ld->n, dt};
    const SpmmWeight wd{ld->w, Tensor(), Pattern{}};
    std::vector<const GpuSpmmImpl*> dense_cands;
    for (const GpuSpmmImpl* b : blas)
      if (b->can_implement(dd, wd, nullptr)) dense_cands.push_back(b);
    keep.push_back(fastest(dense_cands, dd, wd, *bd, xd, c, n.name, problems, &layer.dense_candidates));
    Timed& td = keep.back();
    if (ld->conv && cudnn_why.empty()) {
      try_cudnn(*ld, dt, rng, c, n.name, td, bd, buffers, cudnn_problems, &layer.dense_candidates);
      ++res.conv_layers_cudnn_tried;
    }
    SB_CHECK(td.op, "layer '{}': no cuBLAS implementation ran ({})", n.name,
             problems.empty() ? std::string("none can implement it") : problems.back());
    if (td.impl == gpu::kCudnnConvName) ++res.conv_layers_cudnn;
    layer.dense_impl = td.impl;
    layer.dense_note = td.note;
    layer.dense_ms = td.stats.median_ms;
    layer.dense_bytes = td.weight_bytes;
    res.dense.weight_bytes += td.weight_bytes;
    res.dense.workspace_bytes += td.workspace_bytes;
    dense_pass.emplace_back(td.op.get(), bd);
    dense_parts.push_back(&td.stats);

    if (!ls->mask.defined()) {
      // Left dense by the pruning (first conv, classifier, ...): the sparse model runs the same op.
      layer.sparse_impl = td.impl;
      layer.sparse_ms = td.stats.median_ms;
      layer.sparse_bytes = td.weight_bytes;
      layer.format = "dense";
      res.sparse.weight_bytes += td.weight_bytes;
      sparse_pass.emplace_back(td.op.get(), bd);
      sparse_parts.push_back(&td.stats);
    } else {
      std::vector<float> xs;
      buffers.push_back(std::make_unique<Buffers>(make_buffers(*ls, dt, rng, &xs)));
      Buffers* bs = buffers.back().get();
      const GpuSpmmDesc ds{ls->m, ls->k, ls->n, dt};
      const SpmmWeight ws{ls->w, ls->mask, ls->pattern};
      std::vector<const GpuSpmmImpl*> cands;
      std::string declined;
      for (const GpuSpmmImpl* s : sparse_impls) {
        std::string w;
        if (s->can_implement(ds, ws, &w)) cands.push_back(s);
        else if (named) declined = w;
      }
      if (named && cands.empty())
        fail(fmt::format("--kernel {}: cannot run layer '{}' ({}x{}x{}, {}): {}", c.kernel, n.name, ds.m, ds.k, ds.n,
                         ls->pattern.to_string(), declined));
      keep.push_back(fastest(cands, ds, ws, *bs, xs, c, n.name, problems, &layer.candidates));
      Timed& ts = keep.back();
      SB_CHECK(ts.op, "layer '{}': no GPU sparse implementation ran ({})", n.name,
               problems.empty() ? std::string("none can implement it") : problems.back());
      layer.sparse_impl = ts.impl;
      layer.sparse_ms = ts.stats.median_ms;
      layer.sparse_bytes = ts.weight_bytes;
      layer.format = gpu::find_gpu_impl(ts.impl)->format();
      res.sparse.weight_bytes += ts.weight_bytes;
      res.sparse.workspace_bytes += ts.workspace_bytes;
      sparse_pass.emplace_back(ts.op.get(), bs);
      sparse_parts.push_back(&ts.stats);
    }
    res.layers.push_back(std::move(layer));
  }
  SB_CHECK(!res.layers.empty(), "model '{}': no convolution or linear layer runs on the GPU side", c.model);
  std::int64_t convs = 0;
  for (const GpuModelBenchLayer& l : res.layers) convs += l.op == op_name(OpKind::conv2d);
  if (convs == 0)
    res.dense_baseline = "cuBLAS / cuBLASLt (no convolution layer)";
  else if (!cudnn_why.empty())
    res.dense_baseline = fmt::format("cuBLAS / cuBLASLt only; cuDNN for the {} convolution layers: {}", convs, cudnn_why);
  else
    res.dense_baseline = fmt::format("cuBLAS / cuBLASLt, and for convolutions also cuDNN on the image: cuDNN tried on {} "
                                     "of {} convolution layers, fastest on {}",
                                     res.conv_layers_cudnn_tried, convs, res.conv_layers_cudnn);
  if (named && !problems.empty()) fail(problems.front());
  for (std::string& p : problems) res.excluded.push_back("not used: " + p);
  for (std::string& p : cudnn_problems) res.excluded.push_back("not used: " + p);

  res.dense.stats = sum_samples(dense_parts);
  res.sparse.stats = sum_samples(sparse_parts);
  for (GpuModelBenchSide* s : {&res.dense, &res.sparse})
    s->throughput = s->stats.median_ms > 0 ? 1e3 * static_cast<double>(c.batch) / s->stats.median_ms : 0;
  res.speedup = res.sparse.stats.median_ms > 0 ? res.dense.stats.median_ms / res.sparse.stats.median_ms : 0;
  res.noisy = res.dense.stats.noisy || res.sparse.stats.noisy;

  // The pass as a network runs it: every covered layer back to back, one CUDA graph per side.
  auto calls = [](const std::vector<std::pair<GpuSpmmOp*, Buffers*>>& pass) {
    std::vector<gpu::GpuCall> out;
    for (const auto& [op, b] : pass) out.push_back({op, b->x.get(), b->y.get()});
    return out;
  };
  std::string how_d, how_s;
  res.dense.graph = gpu::time_gpu_calls(calls(dense_pass), c.warmup, c.min_reps, c.min_seconds, c.flush_l2, &how_d);
  res.sparse.graph = gpu::time_gpu_calls(calls(sparse_pass), c.warmup, c.min_reps, c.min_seconds, c.flush_l2, &how_s);
  res.graph_speedup = res.sparse.graph.median_ms > 0 ? res.dense.graph.median_ms / res.sparse.graph.median_ms : 0;
  res.graph_note = fmt::format("dense: {}; sparse: {}{}", how_d, how_s, c.flush_l2 ? "; L2 flushed before each pass" : "");

  if (c.energy) {
    gpu::EnergyMeter meter;
    std::string note_d, note_s;
    res.dense.energy_j = pass_energy(meter, dense_pass, &note_d);
    res.sparse.energy_j = pass_energy(meter, sparse_pass, &note_s);
    res.energy_note = res.sparse.energy_j ? note_s : note_d.empty() ? note_s : note_d;
  } else {
    res.energy_note = "unavailable: not measured (energy off)";
  }
  res.seconds = wall.seconds();
  return res;
}

}  // namespace sb
