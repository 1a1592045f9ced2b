// Built when the CUDA backend is not: every GPU entry point exists and says why it cannot run.
#include "kernels/cuda/gpu_internal.h"
#include "sparsebench/core/error.h"

namespace sb::gpu {
namespace {
constexpr const char* kWhy = "unavailable: built without CUDA (nvcc not found or SB_CUDA=OFF)";
}

std::string gpu_unavailable_reason() { return kWhy; }

DeviceBuffer::DeviceBuffer(std::size_t bytes) {
  if (bytes) fail(kWhy);
}
DeviceBuffer::~DeviceBuffer() = default;
DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
  o.ptr_ = nullptr;
  o.bytes_ = 0;
}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  std::swap(ptr_, o.ptr_);
  std::swap(bytes_, o.bytes_);
  return *this;
}
void DeviceBuffer::upload(const void*, std::size_t, std::size_t) { fail(kWhy); }
void DeviceBuffer::download(void*, std::size_t, std::size_t) const { fail(kWhy); }
void DeviceBuffer::fill_bytes(int) { fail(kWhy); }
DeviceBuffer DeviceBuffer::copy() const { fail(kWhy); }

const std::vector<std::unique_ptr<GpuSpmmImpl>>& gpu_spmm_impls() {
  static const std::vector<std::unique_ptr<GpuSpmmImpl>> none;
  return none;
}

void run_on_host_data(GpuSpmmOp&, const GpuSpmmDesc&, const float*, float*) { fail(kWhy); }

Stats time_gpu_op(GpuSpmmOp&, const void*, void*, int, int, double, bool) { fail(kWhy); }

Stats time_gpu_calls(const std::vector<GpuCall>&, int, int, double, bool, std::string*) { fail(kWhy); }

Stats time_gpu_ops_stream(const std::vector<GpuSpmmOp*>&, const void*, void*, int, int, double, std::string*) {
  fail(kWhy);
}

GpuTimingFloor measure_timing_floor(int) {
  GpuTimingFloor f;
  f.why = kWhy;
  return f;
}

std::size_t device_memory_used() { return 0; }
std::size_t device_memory_free() { return 0; }
std::size_t gpu_l2_bytes() { return 0; }

void gpu_synchronize() { fail(kWhy); }

std::string gpu_context_lost() { return {}; }  // no context to lose

std::int64_t run_back_to_back(GpuSpmmOp&, const void*, void*, double) { fail(kWhy); }

std::string cudnn_unavailable_reason() { return kWhy; }
std::string cudnn_library_status() { return kWhy; }
std::unique_ptr<GpuConvOp> make_cudnn_conv(const GpuConvDesc&, const float*) { fail(kWhy); }
void run_conv_on_host_data(GpuConvOp&, const GpuConvDesc&, const float*, float*) { fail(kWhy); }

}  // namespace sb::gpu
