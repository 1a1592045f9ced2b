#pragma once
// The warp-wide tensor-core MMA our kernels use: D[16x8] += A[16x16] B[16x8], f16 or bf16 inputs,
// fp32 accumulation (PTX mma.sync.aligned.m16n8k16.row.col, sm_80 and later). Fragments as the PTX
// ISA defines them, with g = lane / 4 and t = lane % 4 ("lo"/"hi" the lower/upper 16 bits):
//   a[0] = A[g][2t, 2t+1]      a[1] = A[g+8][2t, 2t+1]   a[2] = A[g][2t+8, 2t+9]   a[3] = A[g+8][2t+8, 2t+9]
//   b[0] = B[2t, 2t+1][g]      b[1] = B[2t+8, 2t+9][g]
//   d[0], d[1] = D[g][2t, 2t+1]                          d[2], d[3] = D[g+8][2t, 2t+1]
// Under the CPU emulator (SB_CUDA_EMU) the same call gathers the warp's fragments and computes the
// product in fp32 from that layout, so that a kernel's fragment indexing is checked without a GPU
// (a wrong index gives a wrong product there as it would on the hardware).
#include <cstring>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/launch.cuh"  // SB_SMEM_ALIGNED

namespace sb::gpu {

template <class T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
#if defined(SB_CUDA_EMU)
  struct Frag {
    unsigned a[4], b[2];
  };
  Frag mine;
  for (int i = 0; i < 4; ++i) mine.a[i] = a[i];
  for (int i = 0; i < 2; ++i) mine.b[i] = b[i];
  Frag all[32];
  ::sb::emu::warp_allgather(&mine, sizeof(Frag), all);
  const int lane = static_cast<int>(threadIdx.x % 32), g = lane / 4, t = lane % 4;
  auto half_of = [](unsigned word, int hi) {
    const unsigned short bits = static_cast<unsigned short>(hi ? word >> 16 : word & 0xFFFFu);
    T v;
    std::memcpy(static_cast<void*>(&v), &bits, sizeof(v));
    return static_cast<float>(v);
  };
  auto a_at = [&](int row, int k) {  // A[row][k]
    const Frag& f = all[4 * (row % 8) + (k % 8) / 2];
    return half_of(f.a[(row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0)], k % 2);
  };
  auto b_at = [&](int k, int col) {  // B[k][col]
    const Frag& f = all[4 * col + (k % 8) / 2];
    return half_of(f.b[k >= 8 ? 1 : 0], k % 2);
  };
  for (int o = 0; o < 4; ++o) {
    const int row = g + (o >= 2 ? 8 : 0), col = 2 * t + o % 2;
    float s = 0.f;
    for (int k = 0; k < 16; ++k) s += a_at(row, k) * b_at(k, col);
    d[o] += s;
  }
#else
  // Not volatile: the MMA has no side effects beyond d, so the scheduler may move it.
  if constexpr (sizeof(T) == 2 && std::is_same_v<T, __half>) {
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#endif
}

// Two consecutive 16-bit values from shared memory as one 32-bit fragment register (p 4-byte aligned).
template <class T>
__device__ __forceinline__ unsigned ld_pair(const T* p) {
  SB_SMEM_ALIGNED(p, 4);
  return *reinterpret_cast<const unsigned*>(p);
}

}  // namespace sb::gpu
