#pragma once
// 64-byte aligned storage: one cache line, one AVX-512 register.
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace sb {

inline constexpr std::size_t kAlignment = 64;

template <class T, std::size_t A = kAlignment>
struct AlignedAllocator {
  using value_type = T;
  template <class U> struct rebind { using other = AlignedAllocator<U, A>; };
  AlignedAllocator() noexcept = default;
  template <class U> AlignedAllocator(const AlignedAllocator<U, A>&) noexcept {}
  T* allocate(std::size_t n) {
    std::size_t bytes = (n * sizeof(T) + A - 1) / A * A;
    void* p = std::aligned_alloc(A, bytes == 0 ? A : bytes);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }
  template <class U> bool operator==(const AlignedAllocator<U, A>&) const noexcept { return true; }
};

template <class T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

}  // namespace sb
