#pragma once
// GPU SpMM: Y[m x n] = W[m x k] * X[k x n] on an NVIDIA GPU, row-major, N contiguous (the CPU
// convention of spmm.h). Host-side API: no CUDA header is needed to include this file, and every
// function exists in a build without CUDA, where it reports "unavailable: built without CUDA".
//
// Protocol (as on the CPU, CUTLASS style): can_implement(desc, weight, why) -> initialize (packs
// the weight to the device format and uploads it once; allocates any library workspace once) ->
// run(x, y, stream) as often as wanted, allocating nothing.
//
// Pointers handed to run() are DEVICE pointers. X is [k x n] and Y is [m x n], both stored in the
// desc's storage type: f32 for f32 and tf32, f16 for f16, bf16 for bf16, i8 in / i32 out for i8.
// Every implementation accumulates in fp32 (i32 for i8); tf32 rounds inputs to 10 mantissa bits
// inside the tensor cores. Y is fully written (no beta accumulation).
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparsebench/bench/kernel_bench.h"
#include "sparsebench/bench/stats.h"
#include "sparsebench/kernels/spmm.h"

namespace sb::gpu {

enum class GpuDType { f32, tf32, f16, bf16, i8 };
const char* gpu_dtype_name(GpuDType t);           // "f32", "tf32", "f16", "bf16", "i8"
GpuDType parse_gpu_dtype(const std::string& text); // throws sb::Error naming the text
std::size_t x_elem_bytes(GpuDType t);             // bytes per element of X (and of W values)
std::size_t y_elem_bytes(GpuDType t);             // bytes per element of Y (i8 -> 4: i32 out)

// "" when a CUDA GPU is usable, else "unavailable: <reason>" (the cudaGetDeviceCount error
// string, or "built without CUDA").
std::string gpu_unavailable_reason();

// A block of device memory (cudaMalloc; freed on destruction). Empty when bytes == 0.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }
  void upload(const void* host, std::size_t bytes, std::size_t offset = 0);   // synchronous
  void download(void* host, std::size_t bytes, std::size_t offset = 0) const; // synchronous
  void fill_bytes(int value);                                                 // synchronous
  DeviceBuffer copy() const;  // a new buffer of the same size and contents (device to device)

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// Host conversions between f32 and a storage type (round to nearest even). to_storage writes
// count * x_elem_bytes(t) bytes; for i8 values are rounded and clamped to [-127, 127].
// from_storage reads Y-typed data (count * y_elem_bytes(t) bytes) back to f32.
std::vector<std::uint8_t> to_storage(const float* src, std::size_t count, GpuDType t);
void from_storage(const void* src, std::size_t count, GpuDType t, float* dst);
// The value a float becomes once stored as t (and, for tf32, once the tensor cores read it):
// the reference is computed on these, so the comparison measures accumulation error only.
float round_to(float v, GpuDType t);

struct GpuSpmmDesc {
  std::int64_t m = 0, k = 0, n = 0;
  GpuDType dtype = GpuDType::f16;
};

// A packed, uploaded operator.
class GpuSpmmOp {
 public:
  virtual ~GpuSpmmOp() = default;
  // x: device [k x n], y: device [m x n] (types above); stream: a cudaStream_t (nullptr: default).
  virtual void run(const void* x, void* y, void* stream) = 0;
  // Bytes of the weight as stored on the device (values + indices + pointers + metadata).
  virtual std::size_t weight_bytes() const = 0;
  // Device bytes besides the weight (library workspace, plans); 0 when none.
  virtual std::size_t workspace_bytes() const { return 0; }
  // What initialize chose (algorithm, tile), for the record; may be empty.
  virtual std::string note() const { return {}; }
  // Another operator computing the same, on its own device copy of the weight (copied device to
  // device; handles, plans and workspace shared with this one, so the two must not run at the
  // same time on different streams); nullptr where not offered: the caller then initializes
  // afresh. Used by CacheMode::stream, which needs many copies of one weight.
  virtual std::unique_ptr<GpuSpmmOp> clone() const { return nullptr; }
};

class GpuSpmmImpl {
 public:
  virtual ~GpuSpmmImpl() = default;
  // Ours: <dtype>_spmm_<format>_<variant>__cuda (the dtype is the desc's, so names omit it:
  // spmm_balanced_tiled__cuda); libraries: "cublaslt_gemm", "cusparse_csr", ...
  virtual std::string name() const = 0;
  virtual std::string library() const = 0;  // "sparsebench", "cublas", "cusparse", "cusparselt"
  virtual std::string format() const = 0;   // "dense", "csr", "blocked-ell", "balanced", "2:4"
  virtual Role role() const = 0;            // baseline (cuBLAS), peer (cuSPARSE*), kernel (ours)
  // False with the reason when the case (dtype, shape, pattern, library) cannot run.
  virtual bool can_implement(const GpuSpmmDesc& d, const SpmmWeight& w, std::string* why) const = 0;
  // Packs and uploads once; throws sb::Error (with the CUDA / library status) on failure.
  virtual std::unique_ptr<GpuSpmmOp> initialize(const GpuSpmmDesc& d, const SpmmWeight& w) const = 0;
  // How much looser than "fp32 accumulation, one rounding to the storage type" this
  // implementation's results are for dtype t (1 for ours and cuBLAS). Verification multiplies its
  // tolerance by it; a library whose arithmetic is coarser says so here, with the reason.
  virtual double error_scale(GpuDType t) const { return 1.0; }
};

// Every GPU implementation, in order: cuBLAS baselines, library sparse, ours. Empty without CUDA.
const std::vector<std::unique_ptr<GpuSpmmImpl>>& gpu_spmm_impls();
const GpuSpmmImpl* find_gpu_impl(const std::string& name);
// Throws sb::Error naming `flag`, the first unknown name and the known ones; checks nothing in a
// build without CUDA (no implementations: the run itself reports "built without CUDA").
void check_gpu_impl_names(const std::vector<std::string>& names, const char* flag);

// Convenience for tests and verification: converts x (host f32, [k x n]) to storage, uploads,
// runs, synchronizes, downloads Y into y (host f32, [m x n]). Y is poisoned (NaN bytes) before
// the call so that an unwritten element shows.
void run_on_host_data(GpuSpmmOp& op, const GpuSpmmDesc& d, const float* x, float* y);

// Timing with CUDA events, after `warmup` untimed calls: each sample is one call between two
// events; when flush_l2, a write of a buffer twice the L2 size (cudaDevAttrL2CacheSize) runs
// between samples, outside the events. At least min_reps samples and min_seconds of timed time.
Stats time_gpu_op(GpuSpmmOp& op, const void* x, void* y, int warmup, int min_reps, double min_seconds,
                  bool flush_l2);

// One call of a sequence: op->run(x, y) on device pointers.
struct GpuCall {
  GpuSpmmOp* op = nullptr;
  const void* x = nullptr;
  void* y = nullptr;
};

// The calls, in order, as one sample between two CUDA events, captured once into a CUDA graph on
// a stream of their own (after one eager pass on that stream, so that a library allocates what it
// allocates on first use outside the capture); where capture fails (a library call that cannot be
// captured) the calls are launched back to back instead. With flush_l2 the L2 is flushed before
// each sample (outside the events). Samples are whole sequences, in ms. *how says graph or not
// (and why), for the record.
Stats time_gpu_calls(const std::vector<GpuCall>& calls, int warmup, int min_reps, double min_seconds, bool flush_l2,
                     std::string* how);

// CacheMode::stream: `ops` are copies of one operator (same desc, same weight, each its own device
// copy), run in order, back to back, between two CUDA events; each sample is that time divided
// by ops.size() (time_gpu_calls with one X and Y and no flush), so that neither the host's launch
// rate nor the per-call event floor shows.
Stats time_gpu_ops_stream(const std::vector<GpuSpmmOp*>& ops, const void* x, void* y, int warmup, int min_reps,
                          double min_seconds, std::string* how);

// What a call costs when the kernel does nothing (one empty kernel per call), in each protocol,
// microseconds (medians of `reps` samples): `cold` one call between two events after the L2 flush
// (the default of the sweep), `hot` the same without the flush, `graph` per call of 64 calls in
// one CUDA graph (--cache stream). No timing of a real kernel can go below its protocol's floor;
// the sweep records these beside its results. why: "" or "unavailable: ...".
struct GpuTimingFloor {
  double cold_us = 0, hot_us = 0, graph_us = 0;
  std::string why;
};
GpuTimingFloor measure_timing_floor(int reps = 50);
nlohmann::json to_json(const GpuTimingFloor& f);

// The current device's L2 cache in bytes (cudaDevAttrL2CacheSize); 0 when unavailable.
std::size_t gpu_l2_bytes();
// Free device memory in bytes (cudaMemGetInfo); 0 when unavailable.
std::size_t device_memory_free();

// Back-to-back calls (batches of launches, no per-call events) for at least `seconds` of wall
// time, synchronized at the end; returns the number of calls. For energy windows.
std::int64_t run_back_to_back(GpuSpmmOp& op, const void* x, void* y, double seconds);

// NVML energy (libnvidia-ml.so.1 through dlopen): the total-energy counter in millijoules.
class EnergyMeter {
 public:
  EnergyMeter();   // loads NVML; never throws
  ~EnergyMeter();
  bool available() const { return why_.empty(); }
  const std::string& why() const { return why_; }  // "unavailable: <reason>" when not available
  // Total energy since the driver loaded, mJ; false (and why()) on error.
  bool total_energy_mj(std::uint64_t* mj);

 private:
  std::string why_;
  void* lib_ = nullptr;
  void* device_ = nullptr;
  void* get_energy_ = nullptr;
};

// Waits for all work on the device (cudaDeviceSynchronize) and checks the last error.
void gpu_synchronize();

// Empty while this process's CUDA context is usable. After a sticky error (a kernel's illegal or
// misaligned address, a trap), the runtime fails every later call in the process, whatever it is:
// then what the error was. Clears a non-sticky error on the way.
std::string gpu_context_lost();

// Device memory in use now (total - free, cudaMemGetInfo), bytes; 0 when unavailable.
std::size_t device_memory_used();

// --- convolutions through cuDNN: the dense baseline of a convolution layer ---------------------

// A 2-D convolution (cross-correlation, zero padding, groups = 1) of a batch of images, as a
// network runs it. As the lowered GEMM of the model benchmarks: m = out_channels, k = in_channels
// * kh * kw (row (c, r, s)), n = batch * out_h * out_w (column (b, oh, ow)). Weight: OIHW, f32 on
// the host; that is the GEMM's W [m x k] as it is.
struct GpuConvDesc {
  std::int64_t batch = 1, in_channels = 0, height = 0, width = 0, out_channels = 0;
  std::array<std::int64_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};  // (h, w)
  GpuDType dtype = GpuDType::f16;
  std::int64_t out_h() const;
  std::int64_t out_w() const;
  std::int64_t gemm_m() const { return out_channels; }
  std::int64_t gemm_k() const { return in_channels * kernel[0] * kernel[1]; }
  std::int64_t gemm_n() const { return batch * out_h() * out_w(); }
  std::int64_t input_elems() const { return batch * in_channels * height * width; }
};
// "" when the desc is a valid convolution (positive sizes, strides and dilations, padding >= 0,
// an output of at least 1 x 1, every size within cuDNN's int), else what is wrong, in one line.
std::string check_conv_desc(const GpuConvDesc& d);
// The lowered GEMM's X [k x n] of an NCHW image (host f32): X[(c, r, s)][(b, oh, ow)], 0 in the padding.
std::vector<float> im2col(const GpuConvDesc& d, const float* image_nchw);

// The name the cuDNN convolution goes by in records and in --skip-kernels (whole models only).
inline constexpr const char* kCudnnConvName = "cudnn_conv";
// "" when cuDNN can run (libcudnn.so.9, or $SB_CUDNN_PATH, through dlopen: the binary does not
// need it to start), else "unavailable: <why>".
std::string cudnn_unavailable_reason();

// The library as loaded, GPU or not: "<version> (<path>)", or "unavailable: <why>" (for `info`).
std::string cudnn_library_status();

// An uploaded convolution. run(x, y, stream): x the image, y the output, both device pointers in
// the storage type and in layout() ("nchw": [b][c][h][w], "nhwc": [b][h][w][c]); x holds
// input_elems() values and y gemm_m() * gemm_n() (Y's size, as for the GEMM).
class GpuConvOp : public GpuSpmmOp {
 public:
  virtual std::string layout() const = 0;
  // As GpuSpmmImpl::error_scale, for the algorithm chosen (Winograd and FFT transform the operands
  // and round between the transforms: 4; the GEMM-like ones: 1).
  virtual double error_scale() const = 0;
};
// cuDNN's forward convolution: the candidates are its algorithms (cudnnGetConvolutionForwardAlgorithm_v7's
// list, those that run within the workspace cap) in NCHW and in NHWC (the weight uploaded in the
// matching layout, OIHW or OHWI), tensor cores allowed in f16, bf16 and tf32, fp32 accumulation;
// each timed at initialize as every implementation's candidates are (cold, median of 5), the
// fastest kept; note() names it and the runner-up. Throws sb::Error when cuDNN is unavailable or no
// algorithm runs.
std::unique_ptr<GpuConvOp> make_cudnn_conv(const GpuConvDesc& d, const float* weight_oihw);
// For tests and verification: the image (host, NCHW, f32) to storage in the op's layout, uploaded;
// Y poisoned (NaN bytes), the op run and synchronized; y_gemm receives the output as the lowered
// GEMM's Y [m x n] (f32), whatever the op's layout.
void run_conv_on_host_data(GpuConvOp& op, const GpuConvDesc& d, const float* image_nchw, float* y_gemm);
// Host layout conversions (exposed for the host tests): the image NCHW -> NHWC; an output in
// `layout` -> the GEMM's [m x n].
std::vector<float> nchw_to_nhwc(const float* x, std::int64_t b, std::int64_t c, std::int64_t h, std::int64_t w);
std::vector<float> conv_output_to_gemm(const GpuConvDesc& d, const std::string& layout, const float* y);

// --- the sweep behind `sparsebench kernels --device cuda` -------------------------------------

struct GpuBenchOptions {
  std::vector<GpuDType> dtypes{GpuDType::f16};
  bool energy = false;         // measure NVML energy over windows of >= energy_seconds per op
  double energy_seconds = 1.0;
  std::string only;            // non-empty: only this implementation (plus the baselines)
  std::vector<std::string> skip;  // implementations not to run (e.g. one that lost the context)
};

struct GpuKernelRecord {
  KernelRecord base;                // same fields as the CPU records (threads = 0 on the GPU)
  std::string dtype;
  std::string note;                 // the implementation's choice (algorithm, tile)
  std::size_t gpu_mem_bytes = 0;    // device memory the op holds (weight + workspace)
  double speedup_vs_cusparse = 0;   // best cuSPARSE median / this median; 0 when missing
  std::string energy_status;        // "ok", "not measured", or "unavailable: ..."
  double energy_mj_per_call = 0, avg_power_w = 0;
};

// Where an implementation lost the CUDA context during a sweep: which, and a line saying where and
// how ("the CUDA context was lost by NAME at MxKxN PATTERN DTYPE (error); ..."). Empty while usable.
struct GpuContextLoss {
  std::string impl;
  std::string what;
};

// Runs every case. Where an implementation loses the CUDA context (gpu_context_lost), its record
// says so, the records it leaves untimed say "skipped: the CUDA context was lost ...", and so do
// the later cases': *lost (when given) then names the implementation and the case, so that the
// caller can stop and rerun without it (GpuBenchOptions::skip) in a fresh process.
std::vector<GpuKernelRecord> run_gpu_kernel_bench(const KernelBenchConfig& cfg, const GpuBenchOptions& opts,
                                                  GpuContextLoss* lost = nullptr);

// Geometric means over the matrices of one set, per (pattern, sparsity, dtype, impl): vs the
// best cuBLAS and vs the best cuSPARSE of each case.
struct GpuSpeedupSummary {
  std::string set, pattern, dtype, impl;
  double sparsity = 0;
  int count = 0;
  double geomean_vs_cublas = 0, geomean_vs_cusparse = 0;
};
std::vector<GpuSpeedupSummary> summarize_gpu_speedups(const std::vector<GpuKernelRecord>& recs);

// The most any kernel could show against the record's cuBLAS in its protocol: the baseline's
// median (the record's median x its speedup) over the protocol's floor (`floor`, an empty kernel per
// call, same run; graph for --cache stream). 0 when the record has no speedup or the floor is
// unavailable.
double speedup_ceiling(const GpuKernelRecord& r, const GpuTimingFloor& floor);

nlohmann::json to_json(const GpuKernelRecord& r);
nlohmann::json to_json(const GpuSpeedupSummary& s);

}  // namespace sb::gpu
