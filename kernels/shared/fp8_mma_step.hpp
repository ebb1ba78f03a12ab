// One Hopper FP8 tensor-core MMA step, single source for CPU and GPU
// (shared/reference/fp8-accumulation.md section 1; DeepSeek-V3 §3.5.2):
//   products   p_i = a_i * b_i, exact; nominal exponent e_i = ea_i + eb_i
//              (a subnormal FP8 value has the nominal exponent 1 - bias)
//   alignment  E = max(floor(log2|C|), max_i e_i) over non-zero terms
//   sum        S = trunc(C * 2^(F-E)) + sum_i trunc(p_i * 2^(F-E))   (exact)
//   output     D = S * 2^(E-F) truncated to F + 1 significant bits
// in 64-bit integers (each term is below 2^(F+2), at most 33 terms). The GPU
// emulated FP8 GEMM (kernels/fp8_gemm.cu) calls it per output and step; the
// CPU tests hold it equal to numerics::mma_step_reference (the __int128
// reference) and to the vectorised CPU emulation, so they test the GPU's
// arithmetic.
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/shared/fp8.hpp"
#include "kernels/shared/host_device.hpp"

namespace moelab::shared {

// |value| = significand * 2^(exponent - mantissa_bits); exponent nominal.
struct Fp8Parts {
  bool negative;
  int64_t significand;
  int exponent;
};

MOE_HOST_DEVICE Fp8Parts fp8_parts(uint8_t code, const Fp8Format& f) {
  const int exp_field = (code >> f.mantissa_bits) & ((1 << f.exponent_bits) - 1);
  const int mantissa = code & ((1 << f.mantissa_bits) - 1);
  Fp8Parts p;
  p.negative = (code & 0x80) != 0;
  p.exponent = exp_field == 0 ? 1 - f.bias : exp_field - f.bias;
  p.significand = exp_field == 0 ? mantissa : mantissa + (1 << f.mantissa_bits);
  return p;
}

// trunc(magnitude * 2^shift) toward zero, magnitude >= 0.
MOE_HOST_DEVICE int64_t shift_toward_zero(int64_t magnitude, int shift) {
  if (shift >= 0) return magnitude << shift;
  if (shift <= -63) return 0;
  return magnitude >> -shift;
}

// D = c plus the num_products products a_codes[i] * b_codes[i] (finite codes,
// finite c), with fraction_bits = F in [1, 23].
MOE_HOST_DEVICE float fp8_mma_step(float c, const uint8_t* a_codes, const Fp8Format& fa, const uint8_t* b_codes,
                                   const Fp8Format& fb, int num_products, int fraction_bits) {
  const int F = fraction_bits;
  // C normalised: |c| = c_sig * 2^(c_exp - 23), c_sig in [2^23, 2^24).
  const uint32_t bits = float_to_bits(c);
  const bool c_negative = (bits >> 31) != 0;
  int64_t c_sig = bits & 0x7FFFFF;
  int c_exp = static_cast<int>((bits >> 23) & 0xFF) - 127;
  if (c_exp == -127) {
    c_exp = -126;
    while (c_sig != 0 && c_sig < (int64_t(1) << 23)) c_sig <<= 1, --c_exp;
  } else {
    c_sig |= int64_t(1) << 23;
  }
  bool any = c_sig != 0;
  int E = c_exp;
  for (int i = 0; i < num_products; ++i) {
    const Fp8Parts a = fp8_parts(a_codes[i], fa), b = fp8_parts(b_codes[i], fb);
    if (a.significand == 0 || b.significand == 0) continue;
    const int e = a.exponent + b.exponent;
    E = any ? (e > E ? e : E) : e;
    any = true;
  }
  if (!any) return 0.0f;
  int64_t sum = 0;
  if (c_sig != 0) {
    const int64_t t = shift_toward_zero(c_sig, c_exp - 23 + F - E);
    sum += c_negative ? -t : t;
  }
  for (int i = 0; i < num_products; ++i) {
    const Fp8Parts a = fp8_parts(a_codes[i], fa), b = fp8_parts(b_codes[i], fb);
    const int64_t sig = a.significand * b.significand;
    if (sig == 0) continue;
    const int shift = a.exponent + b.exponent - fa.mantissa_bits - fb.mantissa_bits + F - E;
    const int64_t t = shift_toward_zero(sig, shift);
    sum += a.negative != b.negative ? -t : t;
  }
  if (sum == 0) return 0.0f;
  const bool negative = sum < 0;
  uint64_t magnitude = static_cast<uint64_t>(negative ? -sum : sum);
  int length = 0;
  for (uint64_t m = magnitude; m != 0; m >>= 1) ++length;
  int exponent = E - F;
  if (length > F + 1) {
    magnitude >>= (length - F - 1);
    exponent += length - F - 1;
  }
  const double d = ldexp(static_cast<double>(magnitude), exponent);
  return static_cast<float>(negative ? -d : d);
}

}  // namespace moelab::shared
