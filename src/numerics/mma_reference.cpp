#include "numerics/mma_reference.hpp"

#include <cmath>

#include "core/error.hpp"

namespace moelab::numerics {

namespace {

// |value| = significand * 2^(exponent - scale_bits), exponent nominal.
struct Parts {
  bool negative = false;
  int64_t significand = 0;
  int exponent = 0;
  int scale_bits = 0;
};

Parts fp8_parts(uint8_t code, Fp8Kind kind) {
  const shared::Fp8Format& f = fp8_format(kind);
  const int exp_field = (code >> f.mantissa_bits) & ((1 << f.exponent_bits) - 1);
  const int mantissa = code & ((1 << f.mantissa_bits) - 1);
  MOE_CHECK(std::isfinite(shared::fp8_to_float(code, f)))
      << "mma_step_reference: " << fp8_name(kind) << " code 0x" << std::hex << int(code) << " is not finite";
  Parts p;
  p.negative = code & 0x80;
  p.scale_bits = f.mantissa_bits;
  if (exp_field == 0) {
    p.exponent = 1 - f.bias;
    p.significand = mantissa;
  } else {
    p.exponent = exp_field - f.bias;
    p.significand = mantissa + (1 << f.mantissa_bits);
  }
  return p;
}

// trunc(significand * 2^shift) toward zero; shift may be negative.
__int128 shift_toward_zero(int64_t significand, int shift) {
  if (shift >= 0) return static_cast<__int128>(significand) << shift;
  if (shift <= -64) return 0;
  return static_cast<__int128>(significand >> -shift);
}

}  // namespace

float mma_step_reference(float c, const uint8_t* a_codes, Fp8Kind a_kind, const uint8_t* b_codes, Fp8Kind b_kind,
                         int num_products, int fraction_bits) {
  MOE_CHECK(fraction_bits >= 1 && fraction_bits <= 23) << "fraction_bits " << fraction_bits << " not in [1, 23]";
  MOE_CHECK(std::isfinite(c)) << "mma_step_reference: accumulator " << c << " is not finite";
  const int F = fraction_bits;
  // C as an integer significand: |c| = c_sig * 2^(c_exp - 23).
  const bool c_negative = std::signbit(c);
  int64_t c_sig = 0;
  int c_exp = 0;
  if (c != 0.0f) {
    int e2;
    const double fr = std::frexp(std::fabs(static_cast<double>(c)), &e2);  // |c| = fr * 2^e2, fr in [0.5, 1)
    c_exp = e2 - 1;
    c_sig = static_cast<int64_t>(std::ldexp(fr, 24));
  }
  // Alignment point: the largest nominal exponent among non-zero terms.
  bool any = c_sig != 0;
  int E = c_exp;
  std::vector<Parts> a(num_products), b(num_products);
  for (int i = 0; i < num_products; ++i) {
    a[i] = fp8_parts(a_codes[i], a_kind);
    b[i] = fp8_parts(b_codes[i], b_kind);
    if (a[i].significand == 0 || b[i].significand == 0) continue;
    const int e = a[i].exponent + b[i].exponent;
    E = any ? std::max(E, e) : e;
    any = true;
  }
  if (!any) return 0.0f;
  // Exact fixed-point sum on the grid 2^(E - F), each addend truncated.
  __int128 sum = 0;
  if (c_sig != 0) {
    const __int128 t = shift_toward_zero(c_sig, c_exp - 23 + F - E);
    sum += c_negative ? -t : t;
  }
  for (int i = 0; i < num_products; ++i) {
    const int64_t sig = a[i].significand * b[i].significand;
    if (sig == 0) continue;
    const int shift = a[i].exponent + b[i].exponent - a[i].scale_bits - b[i].scale_bits + F - E;
    const __int128 t = shift_toward_zero(sig, shift);
    sum += (a[i].negative != b[i].negative) ? -t : t;
  }
  if (sum == 0) return 0.0f;
  // Normalise and keep F + 1 significant bits, truncating.
  const bool negative = sum < 0;
  unsigned __int128 magnitude = negative ? -sum : sum;
  int length = 0;
  for (unsigned __int128 m = magnitude; m != 0; m >>= 1) ++length;
  int exponent = E - F;
  if (length > F + 1) {
    magnitude >>= (length - F - 1);
    exponent += length - F - 1;
  }
  const double d = std::ldexp(static_cast<double>(static_cast<uint64_t>(magnitude)), exponent);
  return static_cast<float>(negative ? -d : d);
}

}  // namespace moelab::numerics
