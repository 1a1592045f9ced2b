// The CUDA runtime side of the GPU backend: availability, device buffers, event timing with an
// L2 flush, and the ordered list of implementations.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "kernels/cuda/cuda_check.h"
#include "sparsebench/bench/stats.h"

namespace sb::gpu {

std::string gpu_unavailable_reason() {
  static const std::string why = [] {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear it: later calls must not see a sticky error
      return fmt::format("unavailable: no usable GPU (cudaGetDeviceCount: {})", cudaGetErrorString(err));
    }
    if (count == 0) return std::string("unavailable: the CUDA runtime sees no GPU");
    return std::string();
  }();
  return why;
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t err = cudaMalloc(&ptr_, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    ptr_ = nullptr;
    fail(fmt::format("cudaMalloc of {} bytes failed: {}", bytes, cudaGetErrorString(err)));
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
  o.ptr_ = nullptr;
  o.bytes_ = 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  std::swap(ptr_, o.ptr_);
  std::swap(bytes_, o.bytes_);
  return *this;
}

void DeviceBuffer::upload(const void* host, std::size_t bytes, std::size_t offset) {
  SB_CHECK(offset + bytes <= bytes_, "DeviceBuffer::upload: {} bytes at {} exceed the buffer's {}", bytes, offset, bytes_);
  if (bytes) SB_CUDA_CHECK(cudaMemcpy(static_cast<char*>(ptr_) + offset, host, bytes, cudaMemcpyHostToDevice));
}

void DeviceBuffer::download(void* host, std::size_t bytes, std::size_t offset) const {
  SB_CHECK(offset + bytes <= bytes_, "DeviceBuffer::download: {} bytes at {} exceed the buffer's {}", bytes, offset, bytes_);
  if (bytes) SB_CUDA_CHECK(cudaMemcpy(host, static_cast<const char*>(ptr_) + offset, bytes, cudaMemcpyDeviceToHost));
}

void DeviceBuffer::fill_bytes(int value) {
  if (bytes_) SB_CUDA_CHECK(cudaMemset(ptr_, value, bytes_));
}

DeviceBuffer DeviceBuffer::copy() const {
  DeviceBuffer out(bytes_);
  if (bytes_) SB_CUDA_CHECK(cudaMemcpy(out.ptr_, ptr_, bytes_, cudaMemcpyDeviceToDevice));
  return out;
}

const std::vector<std::unique_ptr<GpuSpmmImpl>>& gpu_spmm_impls() {
  static const ImplList list = [] {
    ImplList l;
    add_cublas_impls(l);      // baselines: every speedup is against the fastest of these
    add_cusparse_impls(l);    // library sparse (peers)
    add_cusparselt_impls(l);  // 2:4 sparse tensor cores (peer), when libcusparseLt loads
    add_balanced_impls(l);    // ours
    add_csr_impls(l);
    return l;
  }();
  return list;
}

void run_on_host_data(GpuSpmmOp& op, const GpuSpmmDesc& d, const float* x, float* y) {
  const std::size_t nx = static_cast<std::size_t>(d.k * d.n), ny = static_cast<std::size_t>(d.m * d.n);
  const std::vector<std::uint8_t> xb = to_storage(x, nx, d.dtype);
  DeviceBuffer xd(xb.size()), yd(ny * y_elem_bytes(d.dtype));
  xd.upload(xb.data(), xb.size());
  // 0xFF bytes are NaN in f32, f16 and bf16 (and -1 in i32): an unwritten output cannot pass.
  yd.fill_bytes(0xFF);
  op.run(xd.get(), yd.get(), nullptr);
  SB_CUDA_CHECK(cudaGetLastError());
  SB_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<std::uint8_t> yb(yd.bytes());
  yd.download(yb.data(), yb.size());
  from_storage(yb.data(), ny, d.dtype, y);
}

cudaError_t launch_read_sweep(const void* p, std::size_t bytes, unsigned* sink, cudaStream_t stream);  // timing_floor.cu

namespace {
// A buffer twice the L2 size (plus a word for the sweep's sink), flushed through L2 between timed
// runs so that the weight and X come from HBM as they would inside a network whose other layers
// evicted them.
DeviceBuffer& flush_buffer() {
  static DeviceBuffer buf = [] {
    int dev = 0, l2 = 0;
    SB_CUDA_CHECK(cudaGetDevice(&dev));
    SB_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    return DeviceBuffer(std::max<std::size_t>(2 * static_cast<std::size_t>(l2), std::size_t{8} << 20) + 16);
  }();
  return buf;
}

// The flush: a memset of the buffer evicts what L2 held, but leaves it full of the memset's dirty
// lines, whose write-backs the timed call's reads would then cause inside the timed window. A read
// sweep of the same buffer replaces them with clean lines (the write-backs happen during the sweep),
// so that the timed call evicts without writing.
void evict_l2(DeviceBuffer& buf, int fill, cudaStream_t stream) {
  const std::size_t bytes = buf.bytes() - 16;
  SB_CUDA_CHECK(cudaMemsetAsync(buf.get(), fill, bytes, stream));
  SB_CUDA_CHECK(launch_read_sweep(buf.get(), bytes, reinterpret_cast<unsigned*>(static_cast<char*>(buf.get()) + bytes),
                                  stream));
}

}  // namespace

void flush_l2_default_stream() { evict_l2(flush_buffer(), 0x5A, nullptr); }

namespace {
// Samples of `pass` on `stream`, one at a time (flush when asked, event, pass, event, synchronize),
// until min_reps samples and min_seconds of timed time; ms per sample.
template <class Pass>
std::vector<double> sample_events(cudaStream_t stream, bool flush_l2, int min_reps, double min_seconds, Pass pass) {
  DeviceBuffer* flush = flush_l2 ? &flush_buffer() : nullptr;
  EventPair ev;
  std::vector<double> samples;
  double total_ms = 0;
  constexpr int kMaxReps = 100000;
  while ((static_cast<int>(samples.size()) < min_reps || total_ms < min_seconds * 1e3) &&
         static_cast<int>(samples.size()) < kMaxReps) {
    if (flush) evict_l2(*flush, static_cast<int>(samples.size() & 0xFF), stream);
    SB_CUDA_CHECK(cudaEventRecord(ev.a, stream));
    pass();
    SB_CUDA_CHECK(cudaEventRecord(ev.b, stream));
    SB_CUDA_CHECK(cudaEventSynchronize(ev.b));
    float ms = 0;
    SB_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.a, ev.b));
    samples.push_back(ms);
    total_ms += ms;
  }
  SB_CUDA_CHECK(cudaGetLastError());
  return samples;
}
}  // namespace

Stats time_gpu_op(GpuSpmmOp& op, const void* x, void* y, int warmup, int min_reps, double min_seconds, bool flush_l2) {
  cudaStream_t stream = nullptr;  // the legacy default stream: the libraries' handles use it too
  for (int i = 0; i < warmup; ++i) op.run(x, y, stream);
  SB_CUDA_CHECK(cudaGetLastError());
  SB_CUDA_CHECK(cudaDeviceSynchronize());
  // Samples are taken one at a time (event pair, synchronize): a queue of launches would let the
  // next call's launch latency hide behind the previous call, which a real layer-by-layer
  // network also enjoys, but which the flush in between would break anyway.
  return summarize(sample_events(stream, flush_l2, min_reps, min_seconds, [&] { op.run(x, y, stream); }));
}

namespace {
struct StreamGuard {
  cudaStream_t s = nullptr;
  ~StreamGuard() {
    if (s) cudaStreamDestroy(s);
  }
};
struct GraphExecGuard {
  cudaGraphExec_t g = nullptr;
  ~GraphExecGuard() {
    if (g) cudaGraphExecDestroy(g);
  }
};

// Captures the calls, in order, on `s`; "" and *exec on success, else the reason (the stream is
// left out of capture mode and the sticky error cleared either way).
std::string capture_calls(const std::vector<GpuCall>& calls, cudaStream_t s, cudaGraphExec_t* exec) {
  // Relaxed: a library may still call cudaMalloc / cudaGetDevice inside; nothing it does outside
  // the stream is captured, and the eager calls before made its first-use allocations already.
  cudaError_t err = cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return fmt::format("cudaStreamBeginCapture: {}", cudaGetErrorString(err));
  }
  std::string why;
  try {
    for (const GpuCall& c : calls) c.op->run(c.x, c.y, s);
  } catch (const std::exception& e) {
    why = e.what();
  }
  cudaGraph_t graph = nullptr;
  err = cudaStreamEndCapture(s, &graph);
  if (why.empty() && err != cudaSuccess) why = fmt::format("cudaStreamEndCapture: {}", cudaGetErrorString(err));
  if (why.empty() && graph) {
    err = cudaGraphInstantiateWithFlags(exec, graph, 0);
    if (err != cudaSuccess) {
      *exec = nullptr;
      why = fmt::format("cudaGraphInstantiate: {}", cudaGetErrorString(err));
    }
  }
  if (graph) cudaGraphDestroy(graph);
  cudaGetLastError();
  return why;
}
}  // namespace

Stats time_gpu_calls(const std::vector<GpuCall>& calls, int warmup, int min_reps, double min_seconds, bool flush_l2,
                     std::string* how) {
  SB_CHECK(!calls.empty(), "time_gpu_calls: no call");
  StreamGuard stream;
  SB_CUDA_CHECK(cudaStreamCreateWithFlags(&stream.s, cudaStreamNonBlocking));
  for (const GpuCall& c : calls) c.op->run(c.x, c.y, stream.s);  // first use of this stream, outside any capture
  SB_CUDA_CHECK(cudaGetLastError());
  SB_CUDA_CHECK(cudaStreamSynchronize(stream.s));
  GraphExecGuard exec;
  const std::string why = capture_calls(calls, stream.s, &exec.g);
  // A failed capture may have left work half-issued: wait for the stream before going on.
  SB_CUDA_CHECK(cudaStreamSynchronize(stream.s));
  auto pass = [&] {
    if (exec.g) {
      SB_CUDA_CHECK(cudaGraphLaunch(exec.g, stream.s));
    } else {
      for (const GpuCall& c : calls) c.op->run(c.x, c.y, stream.s);
    }
  };
  for (int i = 0; i < std::max(warmup, 1); ++i) pass();
  SB_CUDA_CHECK(cudaGetLastError());
  SB_CUDA_CHECK(cudaStreamSynchronize(stream.s));
  std::vector<double> samples = sample_events(stream.s, flush_l2, min_reps, min_seconds, pass);
  if (how)
    *how = exec.g ? fmt::format("{} calls in one CUDA graph", calls.size())
                  : fmt::format("{} calls launched back to back (graph capture failed: {})", calls.size(), why);
  return summarize(std::move(samples));
}

Stats time_gpu_ops_stream(const std::vector<GpuSpmmOp*>& ops, const void* x, void* y, int warmup, int min_reps,
                          double min_seconds, std::string* how) {
  std::vector<GpuCall> calls;
  for (GpuSpmmOp* op : ops) calls.push_back({op, x, y});
  const Stats whole = time_gpu_calls(calls, warmup, min_reps, min_seconds, false, how);
  std::vector<double> per_call = whole.samples_ms;
  for (double& v : per_call) v /= static_cast<double>(ops.size());
  return summarize(std::move(per_call));
}

cudaError_t launch_empty_kernel(cudaStream_t stream);  // timing_floor.cu

namespace {
class EmptyOp final : public GpuSpmmOp {
 public:
  void run(const void*, void*, void* stream) override { SB_CUDA_CHECK(launch_empty_kernel(as_stream(stream))); }
  std::size_t weight_bytes() const override { return 0; }
};
}  // namespace

GpuTimingFloor measure_timing_floor(int reps) {
  GpuTimingFloor f;
  if (std::string why = gpu_unavailable_reason(); !why.empty()) {
    f.why = why;
    return f;
  }
  try {
    EmptyOp op;
    f.cold_us = time_gpu_op(op, nullptr, nullptr, 5, reps, 0, true).median_ms * 1e3;
    f.hot_us = time_gpu_op(op, nullptr, nullptr, 5, reps, 0, false).median_ms * 1e3;
    std::vector<EmptyOp> copies(64);
    std::vector<GpuSpmmOp*> ops;
    for (EmptyOp& c : copies) ops.push_back(&c);
    f.graph_us = time_gpu_ops_stream(ops, nullptr, nullptr, 2, reps, 0, nullptr).median_ms * 1e3;
  } catch (const std::exception& e) {
    f.why = std::string("unavailable: ") + e.what();
  }
  return f;
}

std::size_t gpu_l2_bytes() {
  int dev = 0, l2 = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return static_cast<std::size_t>(std::max(l2, 0));
}

std::size_t device_memory_free() {
  std::size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return free_b;
}

std::int64_t run_back_to_back(GpuSpmmOp& op, const void* x, void* y, double seconds) {
  const double t0 = Timer::now_seconds();
  std::int64_t calls = 0;
  int batch = 16;
  while (Timer::now_seconds() - t0 < seconds) {
    for (int i = 0; i < batch; ++i) op.run(x, y, nullptr);
    calls += batch;
    SB_CUDA_CHECK(cudaDeviceSynchronize());
    batch = std::min(batch * 2, 4096);
  }
  SB_CUDA_CHECK(cudaGetLastError());
  return calls;
}

void gpu_synchronize() {
  SB_CUDA_CHECK(cudaDeviceSynchronize());
  SB_CUDA_CHECK(cudaGetLastError());
}

std::string gpu_context_lost() {
  if (!gpu_unavailable_reason().empty()) return {};
  if (cudaDeviceSynchronize() == cudaSuccess && cudaGetLastError() == cudaSuccess) return {};
  cudaGetLastError();  // a non-sticky error ends here; a sticky one stays and fails the next call
  const cudaError_t e = cudaDeviceSynchronize();
  if (e == cudaSuccess) return {};
  return fmt::format("{}: {}", cudaGetErrorName(e), cudaGetErrorString(e));
}

std::size_t device_memory_used() {
  std::size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return total_b - free_b;
}

}  // namespace sb::gpu
