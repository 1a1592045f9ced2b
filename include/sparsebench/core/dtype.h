#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sb {

// Element types. u8 is for masks (1 = keep, 0 = pruned).
enum class DType : std::uint8_t { f32, f16, bf16, i8, i32, u8 };

std::size_t dtype_size(DType t);
std::string_view dtype_name(DType t);
// Parses "f32", "f16", "bf16", "i8", "i32", "u8"; throws sb::Error naming the text otherwise.
DType parse_dtype(std::string_view text);

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<std::int8_t>() { return DType::i8; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::u8; }

// IEEE half and bfloat16 conversions (round to nearest even), for storage and footprints.
std::uint16_t float_to_half(float f);
float half_to_float(std::uint16_t h);
std::uint16_t float_to_bf16(float f);
float bf16_to_float(std::uint16_t b);

}  // namespace sb
