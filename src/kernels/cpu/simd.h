#pragma once
// Vector traits for the ISA a translation unit is compiled for. Each kernel's *_impl.h is a
// template over one of these and is included by one .cpp per ISA, compiled with that ISA's flags
// (set_source_files_properties in CMake), so no global -m flags are ever needed.
//
// Everything here sits in an anonymous namespace on purpose: the same template instantiated in an
// AVX-512 and in a scalar translation unit must never be merged by the linker (an ODR "duplicate"
// would let the scalar fallback run AVX-512 code).
#include <cstdint>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace {

#if defined(__AVX512F__)
struct SimdAvx512 {
  static constexpr int kWidth = 16;
  using V = __m512;
  using Mask = __mmask16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float a) { return _mm512_set1_ps(a); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void store(float* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V relu(V v) { return _mm512_max_ps(v, _mm512_setzero_ps()); }
  static Mask full_mask() { return static_cast<Mask>(0xFFFF); }
  // valid in [1, kWidth]
  static Mask tail_mask(int valid) { return static_cast<Mask>((1u << valid) - 1u); }
  static void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
};
#endif

#if defined(__AVX2__) && defined(__FMA__)
struct SimdAvx2 {
  static constexpr int kWidth = 8;
  using V = __m256;
  using Mask = __m256i;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float a) { return _mm256_set1_ps(a); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store(float* p, V v, Mask m) { _mm256_maskstore_ps(p, m, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V relu(V v) { return _mm256_max_ps(v, _mm256_setzero_ps()); }
  static Mask full_mask() { return _mm256_set1_epi32(-1); }
  static Mask tail_mask(int valid) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lanes);
  }
  static void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
};
#endif

// One lane: the portable fallback. Loops over V of these are left to the compiler.
struct SimdScalar {
  static constexpr int kWidth = 1;
  using V = float;
  using Mask = bool;
  static V zero() { return 0.f; }
  static V set1(float a) { return a; }
  static V load(const float* p) { return *p; }
  static V load(const float* p, Mask m) { return m ? *p : 0.f; }
  static void store(float* p, V v) { *p = v; }
  static void store(float* p, V v, Mask m) { if (m) *p = v; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V relu(V v) { return v > 0.f ? v : 0.f; }
  static Mask full_mask() { return true; }
  static Mask tail_mask(int) { return true; }
  static void prefetch(const float* p) { __builtin_prefetch(p); }
};

}  // namespace
