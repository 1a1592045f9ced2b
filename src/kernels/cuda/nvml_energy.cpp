// NVML's total-energy counter through dlopen (no link-time dependency on the driver's library):
// on a machine without the NVIDIA driver the meter reports why instead of failing to load.
#include <dlfcn.h>

#include <fmt/format.h>

#include "sparsebench/kernels/cuda_spmm.h"

namespace sb::gpu {
namespace {
// The few NVML declarations used (nvml.h, stable C ABI): opaque handles and int status codes.
using NvmlReturn = int;
using NvmlDevice = void*;
using InitFn = NvmlReturn (*)();
using HandleFn = NvmlReturn (*)(unsigned int, NvmlDevice*);
using EnergyFn = NvmlReturn (*)(NvmlDevice, unsigned long long*);
using ErrorStringFn = const char* (*)(NvmlReturn);
using ShutdownFn = NvmlReturn (*)();
}  // namespace

EnergyMeter::EnergyMeter() {
  lib_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib_) {
    const char* e = dlerror();
    why_ = fmt::format("unavailable: {}", e ? e : "dlopen(libnvidia-ml.so.1) failed");
    return;
  }
  auto init = reinterpret_cast<InitFn>(dlsym(lib_, "nvmlInit_v2"));
  auto handle = reinterpret_cast<HandleFn>(dlsym(lib_, "nvmlDeviceGetHandleByIndex_v2"));
  get_energy_ = dlsym(lib_, "nvmlDeviceGetTotalEnergyConsumption");
  auto err = reinterpret_cast<ErrorStringFn>(dlsym(lib_, "nvmlErrorString"));
  if (!init || !handle || !get_energy_) {
    why_ = "unavailable: libnvidia-ml.so.1 lacks nvmlInit_v2 / nvmlDeviceGetHandleByIndex_v2 / "
           "nvmlDeviceGetTotalEnergyConsumption";
    return;
  }
  if (NvmlReturn r = init(); r != 0) {
    why_ = fmt::format("unavailable: nvmlInit_v2: {}", err ? err(r) : std::to_string(r));
    return;
  }
  // NVML counts every GPU of the machine; the CUDA runtime's device 0 is NVML's 0 unless
  // CUDA_VISIBLE_DEVICES reorders them, which the run script does not do.
  NvmlDevice dev = nullptr;
  if (NvmlReturn r = handle(0, &dev); r != 0) {
    why_ = fmt::format("unavailable: nvmlDeviceGetHandleByIndex_v2(0): {}", err ? err(r) : std::to_string(r));
    return;
  }
  device_ = dev;
  std::uint64_t probe = 0;
  if (!total_energy_mj(&probe)) return;  // sets why_ (e.g. not supported on this GPU)
}

EnergyMeter::~EnergyMeter() {
  if (!lib_) return;
  if (device_)
    if (auto shutdown = reinterpret_cast<ShutdownFn>(dlsym(lib_, "nvmlShutdown"))) shutdown();
  dlclose(lib_);
}

bool EnergyMeter::total_energy_mj(std::uint64_t* mj) {
  if (!device_ || !get_energy_) {
    if (why_.empty()) why_ = "unavailable: NVML not initialised";
    return false;
  }
  unsigned long long v = 0;
  const NvmlReturn r = reinterpret_cast<EnergyFn>(get_energy_)(device_, &v);
  if (r != 0) {
    auto err = reinterpret_cast<ErrorStringFn>(dlsym(lib_, "nvmlErrorString"));
    why_ = fmt::format("unavailable: nvmlDeviceGetTotalEnergyConsumption: {}", err ? err(r) : std::to_string(r));
    return false;
  }
  *mj = v;
  return true;
}

}  // namespace sb::gpu
