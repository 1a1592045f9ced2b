#pragma once
// The executor: compiles a Graph once (passes, layouts, kernel choice per layer, memory plan) and
// then runs it any number of times without allocating.
//
// Internal layout ("feature-major", chosen so that every conv / linear is ONE GEMM
// Y[M x N] = W[M x K] * X[K x N] with N = batch x spatial positions, or batch x tokens):
//   rank 4 (N, C, H, W) is stored as [C][N][H][W];
//   rank 3 (B, T, H) and rank 2 (B, F) are stored with the last dim first: [H][B][T], [F][B];
//   rank 1 as it is.
// Users never see it: run() takes and returns logical, contiguous (NCHW, [B, T, H]) tensors.
// A 1x1 stride-1 convolution reads its input directly; a k x k one goes through im2col into a
// planned workspace; grouped convolutions run one GEMM per group; depthwise convolutions run a
// direct loop on the dense weight (reported as kernel "direct_depthwise", format dense).
//
// Kernel choice per weight layer (conv2d / linear, per group), by CompileOptions::kernel:
//   "auto"  - a dense (unpruned) layer: the faster of the oneDNN baselines; a pruned layer: the
//             fastest of the oneDNN baselines and our kernels for the pattern's format (csr for
//             unstructured, bsr for block, balanced for balanced / N:M; csr is also tried for
//             the structured ones), measured once on the layer's shape and cached in memory for
//             the process, keyed by (m, k, n, bias, relu, pattern, sparsity, threads);
//   "dense" - the faster oneDNN baseline for every layer (the dense model, masked weights);
//   "sparse"- for every pruned layer the first of our kernels the registry dispatches for the
//             pattern's format (no measurement); unpruned layers dense;
//   a name  - that implementation (e.g. "f32_spmm_csr_1x128__avx512") for every pruned layer,
//             the dense baseline for unpruned ones; throws, naming the layer, when it cannot run one.
// A convolution (groups = 1) that runs dense (unpruned; "dense": all) is also timed, when
// measuring, as oneDNN's own convolution primitive (runtime/onednn_conv.h: no im2col, the layout
// oneDNN prefers, the input reordered in and the output out, all in its time) against its im2col +
// GEMM path, and runs whichever is faster (kernel "onednn_conv", format dense): the dense side is
// the best oneDNN offers for a convolution, not only its GEMM. kOnednnConvName as the kernel runs
// every such convolution that way (pruned ones on their masked weight) and the rest as "dense".
// A pruned k x k stride-1, dilation-1 convolution (groups = 1) whose chosen kernel reads shifted
// rows (SpmmImpl::reads_x_rows: our CSR / balanced column-panel and BSR kernels) may skip im2col
// ("implicit im2col"): its input is copied once into a zero-padded [C][N][H + 2p][W + 2p] workspace, the kernel reads
// weight column (c, ky, kx) as that buffer shifted by ky rows and kx columns, over the padded
// grid (the 2p columns past each output row are computed and dropped), and the valid columns are
// copied out. That moves about 1/(kh kw) of im2col's bytes. CompileOptions::conv_input decides:
// timed against the im2col path (cached like the kernel choice), or forced either way.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparsebench/formats/common.h"
#include "sparsebench/runtime/graph.h"

namespace sb {

inline constexpr const char* kOnednnConvName = "onednn_conv";

// How a pruned k x k stride-1 convolution feeds a kernel that can read shifted rows (see above).
enum class ConvInput {
  timed,     // the faster of im2col and implicit im2col, when measuring (else im2col)
  im2col,    // always im2col
  implicit,  // implicit im2col wherever the chosen kernel can run it, without timing
};

struct CompileOptions {
  std::string kernel = "auto";   // "auto" | "dense" | "sparse" | an implementation name (see above)
  bool fold_batch_norm = true;   // fold BatchNorm into the preceding conv2d (see passes.h)
  bool fuse_activations = true;  // ReLU / ReLU6 after a conv / linear / add run inside its step
  // auto: minimum timed runs and seconds per candidate when measuring a layer.
  // false: no timing, the first candidate runs (a dense layer: oneDNN sgemm); for runs where only
  // the arithmetic matters (accuracy), which then skip measuring every layer on random data.
  bool measure = true;
  int auto_min_reps = 5;
  double auto_min_seconds = 0.01;
  // Debug: fill the activation arena with NaN at compile time and before every run, so that an
  // element an op forgets to write shows up in the output.
  bool poison = false;
  // auto: a JSON file that keeps the measured decisions across processes, so that repeated runs
  // plan the same way (see default_plan_cache_path()). Empty: decisions live in memory only.
  // Keys carry the CPU model and ISA besides the layer's key, so one file can serve several
  // machines (a shared home). A missing, unreadable or corrupt file counts as empty and is
  // rewritten on the next decision; a cached name that no candidate has is measured again.
  // Write failures are ignored: the cache only saves time.
  std::string plan_cache_path;
  ConvInput conv_input = ConvInput::timed;
};

// What the planner decided for one executed node.
struct LayerPlan {
  std::string name;             // node name ("layer1.0.conv1"); fused activations are named after it
  std::string op;               // op_name()
  std::string kernel;           // implementation name(s): "onednn_sgemm", "f32_spmm_csr_1x128__avx512",
                                // "direct_depthwise", "loop" for the non-GEMM ops
  std::string format;           // "dense", "csr", "bsr", "balanced"; "-" for ops without weights
  double sparsity = 0;          // of the weight as pruned (0 for dense)
  std::int64_t m = 0, k = 0, n = 0;  // GEMM shape per group (weight layers)
  std::int64_t groups = 1;
  bool implicit_im2col = false; // conv2d: the kernel read shifted rows of the padded input (no im2col)
  std::size_t dense_bytes = 0;  // f32 weight bytes if stored dense
  std::size_t stored_bytes = 0; // bytes as stored by the chosen implementation (Footprint::total)
  Footprint stored;             // stored_bytes split into values / indices / pointers / metadata
  std::int64_t flops = 0;       // dense-equivalent FLOPs of the node (Graph::cost)
};

// Accumulated wall time of one step across the runs made while profiling was on.
struct LayerTiming {
  LayerPlan plan;
  double total_ms = 0;
  std::int64_t calls = 0;
  double mean_ms() const { return calls ? total_ms / static_cast<double>(calls) : 0; }
};

// Offsets of buffers with lifetimes [first, last] (inclusive step indices) in one arena, such that
// two buffers whose lifetimes overlap never overlap in memory. Greedy: largest first, each placed
// in the lowest-offset gap that fits among the placed buffers it overlaps in time.
struct BufferRequest {
  std::size_t bytes = 0;
  int first = 0, last = 0;
};
struct MemoryPlan {
  std::vector<std::size_t> offsets;  // one per request, multiples of `alignment`
  std::size_t total = 0;             // arena bytes
};
MemoryPlan plan_memory(const std::vector<BufferRequest>& requests, std::size_t alignment = 64);

// One Executor runs one inference at a time (it owns one activation arena); use one per thread.
class Executor {
 public:
  // Compiles `graph` (not modified; the executor keeps its own copy with passes applied).
  explicit Executor(const Graph& graph, const CompileOptions& options = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // inputs: one per graph input, logical shape and dtype (f32, or i32 token ids), any strides.
  // outputs: resized/allocated on first use to the graph outputs' logical shapes, then reused.
  void run(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs);
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);

  const Graph& graph() const;                  // after passes (BN folded, activations fused)
  const std::vector<LayerPlan>& plan() const;  // one per executed step
  std::size_t arena_bytes() const;             // activations + workspaces, planned once
  std::size_t weight_bytes_dense() const;      // sum of LayerPlan::dense_bytes
  std::size_t weight_bytes_stored() const;     // sum of LayerPlan::stored_bytes

  // Per-step wall time (steady clock), accumulated over runs while enabled.
  void set_profiling(bool on);
  void reset_profile();
  std::vector<LayerTiming> profile() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Drops every cached `auto` decision held in memory (tests; a changed machine state). Files named
// by CompileOptions::plan_cache_path are left alone; delete them to re-measure.
void clear_kernel_choice_cache();

// $SB_PLAN_CACHE if set, else $XDG_CACHE_HOME/sparsebench/plans.json, else
// $HOME/.cache/sparsebench/plans.json; empty when none of those variables is set.
std::string default_plan_cache_path();

}  // namespace sb
