// FP8 E4M3 and E5M2 conversions, single source for CPU and GPU.
//
// Encoding follows CUDA's cvt.rn.satfinite (../shared/reference/fp8-accumulation.md
// section 2): round to nearest even; |x| beyond max + ulp/2 and +-inf saturate
// to +-max (E4M3 0x7E = 448, E5M2 0x7B = 57344); NaN becomes 0x7F; values at or
// below half the smallest subnormal become +-0.
//   E4M3: bias 7, 3 mantissa bits, no infinities, S.1111.111 is NaN.
//   E5M2: bias 15, 2 mantissa bits, IEEE-like (inf and NaN at exponent 31).
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

constexpr Fp8Format kE4M3{4, 3, 7, 448.0f, 0x7E};
constexpr Fp8Format kE5M2{5, 2, 15, 57344.0f, 0x7B};

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

// Round-to-nearest-even, saturating (satfinite) conversion of an FP32 value.
MOE_HOST_DEVICE uint8_t float_to_fp8(float x, const Fp8Format& f) {
  if (x != x) return 0x7F;  // NaN
  const uint8_t sign = signbit(x) ? 0x80 : 0x00;
  const float a = fabsf(x);
  if (a >= f.max_finite) return sign | f.max_code;  // includes +-inf; ties above max handled below
  // Quantum of the binade of a: 2^(e - m) for normals, the subnormal step below.
  const int min_normal_exp = 1 - f.bias;
  int e;
  frexpf(a, &e);  // a = frac * 2^e, frac in [0.5, 1)
  int exp_unbiased = e - 1;
  if (exp_unbiased < min_normal_exp) exp_unbiased = min_normal_exp;
  const float quantum = ldexpf(1.0f, exp_unbiased - f.mantissa_bits);
  // a / quantum is exact (power-of-two scaling); rintf rounds half to even.
  const float steps = rintf(a / quantum);
  const float rounded = steps * quantum;
  if (rounded > f.max_finite) return sign | f.max_code;  // rounding overflow saturates
  if (rounded == 0.0f) return sign;
  // Re-encode the rounded value exactly.
  int re;
  frexpf(rounded, &re);
  int biased = re - 1 + f.bias;
  uint8_t code;
  if (biased <= 0) {  // subnormal
    code = static_cast<uint8_t>(rounded / ldexpf(1.0f, min_normal_exp - f.mantissa_bits));
  } else {
    const float mant = rounded / ldexpf(1.0f, re - 1) - 1.0f;  // in [0, 1)
    code = static_cast<uint8_t>((biased << f.mantissa_bits) |
                                static_cast<int>(mant * static_cast<float>(1 << f.mantissa_bits)));
  }
  return sign | code;
}

MOE_HOST_DEVICE float e4m3_to_float(uint8_t code) { return fp8_to_float(code, kE4M3); }
MOE_HOST_DEVICE float e5m2_to_float(uint8_t code) { return fp8_to_float(code, kE5M2); }
MOE_HOST_DEVICE uint8_t float_to_e4m3(float x) { return float_to_fp8(x, kE4M3); }
MOE_HOST_DEVICE uint8_t float_to_e5m2(float x) { return float_to_fp8(x, kE5M2); }

}  // namespace moelab::shared
