// The tensor-core accumulator model, written the slow and obvious way: the
// reference that the vectorised emulation (fp8_gemm.cpp) is tested against.
//
// One Hopper FP8 wgmma step (shared/reference/fp8-accumulation.md section 1;
// DeepSeek-V3 §3.5.2), with F = fraction_bits (13 on H800/H100):
//   products   p_i = a_i * b_i, exact; nominal exponent e_i = ea_i + eb_i
//              (an FP8 subnormal has the nominal exponent 1 - bias)
//   alignment  E = max(floor(log2|C|), max_i e_i), zero terms excluded
//   sum        S = trunc(C * 2^(F-E)) + sum_i trunc(p_i * 2^(F-E))   (exact integer)
//   output     D = RZ_F(S * 2^(E-F)): normalised, truncated to F fraction bits
// Everything here is integer arithmetic on the codes' bit fields (__int128
// sums), independent of the float tricks of the fast kernel.
#pragma once

#include <cstdint>
#include <vector>

#include "numerics/fp8_format.hpp"
#include "numerics/quantize.hpp"

namespace moelab::numerics {

// D = one MMA step: c plus num_products products a_codes[i] * b_codes[i].
// c must be finite; codes must not be NaN/inf. fraction_bits in [1, 23].
float mma_step_reference(float c, const uint8_t* a_codes, Fp8Kind a_kind, const uint8_t* b_codes, Fp8Kind b_kind,
                         int num_products, int fraction_bits);

}  // namespace moelab::numerics
