// The i8 device transpose (the cuBLASLt / cuSPARSELt i8 paths), compiled for the CPU emulator.
#include "emu/cuda_emu.h"
// The emulator's definitions come first; then the kernel source itself, unchanged.
#include "kernels/cuda/transpose.cu"
