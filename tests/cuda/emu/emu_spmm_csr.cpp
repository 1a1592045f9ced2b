// Our CSR kernels and their launchers, compiled for the CPU emulator (cuda_emu.h).
#include "emu/cuda_emu.h"
// The emulator's definitions come first; then the kernel source itself, unchanged.
#include "kernels/cuda/spmm_csr.cu"
