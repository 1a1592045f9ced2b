#pragma once
// FNV-1a, 64 bits: a stable (platform- and run-independent) hash of text, for cache file names and
// signatures. Not cryptographic.
#include <cstdint>
#include <string_view>

namespace sb {

constexpr std::uint64_t fnv1a64(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace sb
