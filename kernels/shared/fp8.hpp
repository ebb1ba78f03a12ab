// FP8 E4M3 and E5M2 conversions and UE8M0 (power-of-two) scales, single
// source for CPU and GPU.
//
// Encoding follows CUDA's cvt.rn.satfinite (shared/reference/fp8-accumulation.md
// section 2): round to nearest even; |x| beyond max + ulp/2 and +-inf saturate
// to +-max (E4M3 0x7E = 448, E5M2 0x7B = 57344); NaN becomes 0x7F; values at or
// below half the smallest subnormal become +-0.
//   E4M3: bias 7, 3 mantissa bits, no infinities, S.1111.111 is NaN.
//   E5M2: bias 15, 2 mantissa bits, IEEE-like (inf and NaN at exponent 31).
//
// The encoder works on the FP32 bit pattern with integer arithmetic only (no
// frexp/ldexp/rint), so host and device agree bit for bit whatever the
// floating-point environment, and it is cheap enough for the quantizer's
// inner loop. tests/numerics/test_fp8_format.cpp checks it exhaustively
// against a brute-force nearest-even search over the decoded code values.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/shared/host_device.hpp"

namespace moelab::shared {

struct Fp8Format {
  int exponent_bits;
  int mantissa_bits;
  int bias;
  float max_finite;
  uint8_t max_code;  // magnitude code of max_finite
};

// NOTE: device code cannot read a namespace-scope constexpr object of class
// type (only scalars), so the formats are constexpr functions; kE4M3/kE5M2
// are the host's names for the same values.
MOE_HOST_DEVICE constexpr Fp8Format e4m3_format() { return {4, 3, 7, 448.0f, 0x7E}; }
MOE_HOST_DEVICE constexpr Fp8Format e5m2_format() { return {5, 2, 15, 57344.0f, 0x7B}; }
constexpr Fp8Format kE4M3 = e4m3_format();
constexpr Fp8Format kE5M2 = e5m2_format();

MOE_HOST_DEVICE uint32_t float_to_bits(float x) {
  uint32_t bits;
  memcpy(&bits, &x, 4);
  return bits;
}

MOE_HOST_DEVICE float bits_to_float(uint32_t bits) {
  float x;
  memcpy(&x, &bits, 4);
  return x;
}

MOE_HOST_DEVICE float fp8_to_float(uint8_t code, const Fp8Format& f) {
  const bool negative = code & 0x80;
  const int exp_field = (code >> f.mantissa_bits) & ((1 << f.exponent_bits) - 1);
  const int mantissa = code & ((1 << f.mantissa_bits) - 1);
  const int exp_max = (1 << f.exponent_bits) - 1;
  float magnitude;
  if (f.exponent_bits == 4 && exp_field == exp_max && mantissa == (1 << f.mantissa_bits) - 1) {
    magnitude = NAN;  // E4M3: only S.1111.111 is NaN
  } else if (f.exponent_bits == 5 && exp_field == exp_max) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else if (exp_field == 0) {
    magnitude = ldexpf(static_cast<float>(mantissa), 1 - f.bias - f.mantissa_bits);
  } else {
    magnitude = ldexpf(static_cast<float>(mantissa + (1 << f.mantissa_bits)), exp_field - f.bias - f.mantissa_bits);
  }
  return negative ? -magnitude : magnitude;
}

// value >> shift, rounded to nearest, ties to even. value < 2^24, shift >= 1.
MOE_HOST_DEVICE uint32_t shift_right_rne(uint32_t value, int shift) {
  if (shift > 25) return 0;  // value / 2^shift < 1/2
  const uint32_t half_minus_one = (1u << (shift - 1)) - 1u;
  const uint32_t odd = (value >> shift) & 1u;
  return (value + half_minus_one + odd) >> shift;
}

// Round-to-nearest-even, saturating (satfinite) conversion of an FP32 value.
MOE_HOST_DEVICE uint8_t float_to_fp8(float x, const Fp8Format& f) {
  const uint32_t bits = float_to_bits(x);
  const uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits > 0x7f800000u) return 0x7F;  // NaN (any sign, any payload)
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  // |x| = significand * 2^(x_exp - 23), significand < 2^24 (hidden bit set
  // for FP32 normals; FP32 subnormals have x_exp = -126 and no hidden bit).
  const int exp_field = static_cast<int>(abs_bits >> 23);
  const uint32_t significand = (abs_bits & 0x7fffffu) | (exp_field != 0 ? 0x800000u : 0u);
  const int x_exp = (exp_field != 0 ? exp_field : 1) - 127;
  // FP8 keeps m fraction bits below the leading bit in its normal range and
  // a fixed quantum 2^(min_normal_exp - m) in its subnormal range.
  const int min_normal_exp = 1 - f.bias;
  const int code_exp = x_exp > min_normal_exp ? x_exp : min_normal_exp;
  const uint32_t rounded = shift_right_rne(significand, 23 - f.mantissa_bits + (code_exp - x_exp));
  // For normals rounded is in [2^m, 2^(m+1)]: adding it to the exponent field
  // minus one carries a rounding overflow into the exponent; for subnormals
  // (code_exp = min_normal_exp, field 0) rounded = 2^m lands on the smallest
  // normal. Inf has x_exp = 128 and ends far above max_code.
  const int code = ((code_exp + f.bias - 1) << f.mantissa_bits) + static_cast<int>(rounded);
  return sign | static_cast<uint8_t>(code > f.max_code ? f.max_code : code);
}

// fp8_to_float(float_to_fp8(v)) for FINITE v, computed in the float domain
// without codes: branch-free, so loops over it vectorise (the fake
// quantization of FP8 training). Normal range: round the FP32 significand to
// m bits, nearest even, on the bit pattern (a carry moves into the exponent);
// subnormal range: (|v| + C) - C with C = quantum * 2^23 rounds to the fixed
// quantum 2^(1 - bias - m), nearest even; then saturate at max_finite.
MOE_HOST_DEVICE float fp8_round(float v, const Fp8Format& f) {
  const uint32_t bits = float_to_bits(v);
  const uint32_t abs_bits = bits & 0x7fffffffu;
  const int drop = 23 - f.mantissa_bits;
  const uint32_t normal_bits =
      (abs_bits + ((1u << (drop - 1)) - 1u) + ((abs_bits >> drop) & 1u)) & ~((1u << drop) - 1u);
  const float magnitude = bits_to_float(abs_bits);
  const float min_normal = bits_to_float(static_cast<uint32_t>(128 - f.bias) << 23);  // 2^(1 - bias)
  const float magic = bits_to_float(static_cast<uint32_t>(128 - f.bias - f.mantissa_bits + 23) << 23);
  const float subnormal = (magnitude + magic) - magic;
  float r = magnitude < min_normal ? subnormal : bits_to_float(normal_bits);
  r = r < f.max_finite ? r : f.max_finite;
  return bits_to_float(float_to_bits(r) | (bits & 0x80000000u));
}

MOE_HOST_DEVICE float e4m3_to_float(uint8_t code) { return fp8_to_float(code, e4m3_format()); }
MOE_HOST_DEVICE float e5m2_to_float(uint8_t code) { return fp8_to_float(code, e5m2_format()); }
MOE_HOST_DEVICE uint8_t float_to_e4m3(float x) { return float_to_fp8(x, e4m3_format()); }
MOE_HOST_DEVICE uint8_t float_to_e5m2(float x) { return float_to_fp8(x, e5m2_format()); }

// UE8M0: an unsigned power of two stored as its biased exponent (bias 127),
// the scale format of DeepSeek-V3.1's ue8m0 checkpoints and of MX formats.
// Rounds a positive normal FP32 scale up to a power of two: 2^ceil(log2 s).
MOE_HOST_DEVICE float ue8m0_round_up(float s) {
  const uint32_t bits = float_to_bits(s);
  const uint32_t exp_field = (bits >> 23) & 0xffu;
  return bits_to_float(((bits & 0x7fffffu) != 0 ? exp_field + 1 : exp_field) << 23);
}
MOE_HOST_DEVICE uint8_t ue8m0_encode(float power_of_two) {
  return static_cast<uint8_t>((float_to_bits(power_of_two) >> 23) & 0xffu);
}
MOE_HOST_DEVICE float ue8m0_decode(uint8_t code) { return bits_to_float(static_cast<uint32_t>(code) << 23); }

}  // namespace moelab::shared
