// FP8 formats as moelab names them (e4m3, e5m2), their decode tables, and
// parsing of the names used on the command line and in HDF5 attributes.
// The conversions themselves live in kernels/shared/fp8.hpp (single source
// for CPU and GPU); this file adds what only the host needs.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "kernels/shared/fp8.hpp"

namespace moelab::numerics {

enum class Fp8Kind { e4m3, e5m2 };

const shared::Fp8Format& fp8_format(Fp8Kind kind);
std::string fp8_name(Fp8Kind kind);          // "e4m3" | "e5m2"
Fp8Kind parse_fp8_kind(const std::string& name);  // throws on anything else

// All 256 codes decoded once: decode is a table look-up in the quantizer's
// and the emulated GEMM's inner loops. NaN codes decode to NaN.
const std::array<float, 256>& fp8_decode_table(Fp8Kind kind);

inline float fp8_decode(uint8_t code, Fp8Kind kind) { return fp8_decode_table(kind)[code]; }
inline uint8_t fp8_encode(float x, Fp8Kind kind) { return shared::float_to_fp8(x, fp8_format(kind)); }

}  // namespace moelab::numerics
