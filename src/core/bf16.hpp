// BF16: the upper 16 bits of an FP32, rounded to nearest even. NaN stays a
// quiet NaN. Used by the BF16 GEMM mode (inputs rounded, FP32 accumulation)
// and the safetensors BF16 dtype.
#pragma once

#include <cstdint>
#include <cstring>

namespace moelab {

inline uint16_t float_to_bf16_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
  }
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

inline float bf16_bits_to_float(uint16_t bits16) {
  const uint32_t bits = static_cast<uint32_t>(bits16) << 16;
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

// Round an FP32 value to the nearest BF16 and return it as FP32.
inline float round_to_bf16(float value) { return bf16_bits_to_float(float_to_bf16_bits(value)); }

}  // namespace moelab
