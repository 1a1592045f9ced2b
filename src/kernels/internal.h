#pragma once
// Registration hooks: each part of src/kernels adds its implementations to the registry, in order
// (ours fastest first, then the dense baseline, the peers, the references last).
#include "sparsebench/kernels/spmm.h"

namespace sb::detail {

void register_cpu_kernels(SpmmRegistry& r);      // src/kernels/cpu
void register_dense_baselines(SpmmRegistry& r);  // src/kernels/cpu (oneDNN)
void register_peers(SpmmRegistry& r);            // src/kernels/peers
void register_reference_kernels(SpmmRegistry& r);// src/kernels/ref

}  // namespace sb::detail
