// BF16 conversions, single source for CPU and GPU: the upper 16 bits of an
// FP32, rounded to nearest even; NaN stays a quiet NaN. src/core/bf16.hpp
// forwards to these, so the CPU's BF16 and a kernel's are the same bits.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/shared/host_device.hpp"

namespace moelab::shared {

MOE_HOST_DEVICE uint16_t float_to_bf16_bits(float value) {
  uint32_t bits;
  memcpy(&bits, &value, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
  }
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

MOE_HOST_DEVICE float bf16_bits_to_float(uint16_t bits16) {
  const uint32_t bits = static_cast<uint32_t>(bits16) << 16;
  float value;
  memcpy(&value, &bits, 4);
  return value;
}

}  // namespace moelab::shared
