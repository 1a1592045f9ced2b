#pragma once
// Whole models on the GPU (`sparsebench bench --device cuda`, the study's cuda model cells): the
// model's convolution and linear layers, each lowered to the GEMM Y[m x n] = W[m x k] X[k x n]
// that the CPU executor runs (conv: im2col, k = in/groups * kh * kw, n = batch * OH * OW; linear:
// n = batch * tokens), at the model's shapes for the batch, with the pruned model's weights.
//
// Per layer, in the same run: the dense side is the fastest cuBLAS / cuBLASLt of the layer
// (cuBLASLt's heuristic top 16 timed at initialize, and cublasGemmEx) and, for a convolution,
// cuDNN's convolution of the image where cuDNN is present and faster (its algorithms in NCHW and
// NHWC timed at initialize; implicit GEMM, Winograd, FFT: the im2col the GEMM timings leave out is
// inside its time, so it only wins where it is faster all the same); the sparse side is the
// fastest GPU implementation that can run the layer's format (ours and cuSPARSE / cuSPARSELt;
// `kernel` names one instead), a layer left dense runs the dense side's op. Each candidate's output
// is verified against the double-accumulated reference before it is timed (unless verify = false).
// The model latency is the sum of the layers' per-call times; its samples are sums of the layers'
// samples of the same index, so that the spread is that of the whole pass.
//
// Not on the GPU side, and excluded from both latencies alike: grouped convolutions (depthwise:
// a GEMM per channel is not how a GPU runs them), activations, norms, pooling, attention's
// matmuls and softmax, elementwise ops, and im2col itself. `covered_flops / total_flops` says how
// much of the model that is.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sparsebench/bench/model_bench.h"
#include "sparsebench/bench/stats.h"
#include "sparsebench/prune/allocation.h"
#include "sparsebench/prune/pattern.h"

namespace sb {

struct GpuModelBenchConfig : ModelSpec {
  std::string dtype = "f16";             // f32, tf32, f16, bf16 (X, W and Y storage; fp32 accumulation)
  std::string kernel = "auto";           // "auto": fastest GPU implementation per layer; else one by name
  std::vector<std::string> skip;         // implementations "auto" leaves out (e.g. one that lost the context)
  bool flush_l2 = true;                  // L2 flushed between timed calls (weights come from HBM)
  bool verify = true;                    // each candidate against the host reference before timing
                                         // (layers of at most 2^29 multiply-adds; the rest: tests/cuda)
  bool energy = true;                    // NVML over >= 1 s of back-to-back passes of each side
  // Per layer and candidate: min_reps timed calls and at least min_seconds of kernel time. Each
  // call is followed by an L2 flush (~40 us on an H100) that the kernel time does not count, so
  // min_seconds > 0 multiplies the wall time; 0 keeps a BERT-base pass to a few seconds.
  int min_reps = 30, warmup = 3;
  double min_seconds = 0;
};

struct GpuModelBenchLayer {
  std::string name, op;                  // "layer1.0.conv1", "conv2d" | "linear"
  std::int64_t m = 0, k = 0, n = 0;
  double sparsity = 0;                   // of the weight as pruned (0: dense)
  std::string dense_impl, sparse_impl, format;  // format of the sparse side ("dense" when not pruned)
  double dense_ms = 0, sparse_ms = 0;    // medians per call
  std::size_t dense_bytes = 0, sparse_bytes = 0;  // weight bytes on the device
  std::int64_t flops = 0;                // 2 m k n
  std::string candidates;                // "impl=ms,..." of the sparse side, for the record
  std::string dense_candidates;          // the same for the dense side (cuBLAS, cuDNN)
  std::string dense_note;                // what the dense op chose (algorithm, layout)
};

struct GpuModelBenchSide {
  Stats stats;                           // per pass (one batch) over the covered layers, ms: the sum
                                         // of each layer's own samples (one call between two events)
  Stats graph;                           // per pass, the covered layers' calls back to back in one
                                         // CUDA graph, one sample per pass (L2 flushed before each
                                         // pass when flush_l2): no per-call event or launch floor
  double throughput = 0;                 // samples per second at the median
  std::size_t weight_bytes = 0;          // device bytes of the covered layers' weights
  std::size_t workspace_bytes = 0;       // library workspaces / plans
  std::optional<double> energy_j;        // per pass; nullopt with energy_note saying why
};

struct GpuModelBenchResult {
  std::string model, pattern, dtype, device;  // device: the GPU's name
  std::string model_signature;           // Graph::signature of the dense model
  double sparsity = 0, achieved_sparsity = 0;
  std::int64_t batch = 1;
  GpuModelBenchSide dense, sparse;
  double speedup = 0;                    // dense median / sparse median, same run
  double graph_speedup = 0;              // the same for the graph passes
  std::string graph_note;                // how the passes ran ("N calls in one CUDA graph", ...)
  bool noisy = false;
  std::int64_t covered_flops = 0, total_flops = 0;
  std::vector<std::string> excluded;     // "name (op): why" for each weight layer not covered
  std::string dense_baseline;            // what the dense side was made of (cuDNN used, or why not)
  int conv_layers_cudnn_tried = 0, conv_layers_cudnn = 0;  // convolutions cuDNN ran / won
  std::string energy_note;               // "NVML total energy ..." or "unavailable: ..."
  std::vector<GpuModelBenchLayer> layers;
  double seconds = 0;
};

// Throws sb::Error when no GPU is usable (with the reason), for an unknown model, dtype or
// kernel, and when a candidate fails verification (naming layer and implementation).
GpuModelBenchResult run_gpu_model_bench(const GpuModelBenchConfig& config);

}  // namespace sb
