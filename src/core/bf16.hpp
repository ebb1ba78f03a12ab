// BF16: the upper 16 bits of an FP32, rounded to nearest even. NaN stays a
// quiet NaN. Used by the BF16 GEMM mode (inputs rounded, FP32 accumulation)
// and the safetensors BF16 dtype. The conversions are the single-source ones
// of kernels/shared/bf16.hpp (the GPU's wire encoding uses the same).
#pragma once

#include <cstdint>

#include "kernels/shared/bf16.hpp"

namespace moelab {

inline uint16_t float_to_bf16_bits(float value) { return shared::float_to_bf16_bits(value); }
inline float bf16_bits_to_float(uint16_t bits16) { return shared::bf16_bits_to_float(bits16); }

// Round an FP32 value to the nearest BF16 and return it as FP32.
inline float round_to_bf16(float value) { return bf16_bits_to_float(float_to_bf16_bits(value)); }

}  // namespace moelab
