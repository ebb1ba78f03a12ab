#include "numerics/fp8_format.hpp"

#include "core/error.hpp"

namespace moelab::numerics {

namespace {

std::array<float, 256> build_table(const shared::Fp8Format& f) {
  std::array<float, 256> table{};
  for (int code = 0; code < 256; ++code) table[code] = shared::fp8_to_float(static_cast<uint8_t>(code), f);
  return table;
}

}  // namespace

const shared::Fp8Format& fp8_format(Fp8Kind kind) {
  return kind == Fp8Kind::e4m3 ? shared::kE4M3 : shared::kE5M2;
}

std::string fp8_name(Fp8Kind kind) { return kind == Fp8Kind::e4m3 ? "e4m3" : "e5m2"; }

Fp8Kind parse_fp8_kind(const std::string& name) {
  if (name == "e4m3") return Fp8Kind::e4m3;
  if (name == "e5m2") return Fp8Kind::e5m2;
  MOE_FAIL() << "unknown FP8 format '" << name << "' (expected e4m3 or e5m2)";
  return Fp8Kind::e4m3;
}

const std::array<float, 256>& fp8_decode_table(Fp8Kind kind) {
  static const std::array<float, 256> e4m3 = build_table(shared::kE4M3);
  static const std::array<float, 256> e5m2 = build_table(shared::kE5M2);
  return kind == Fp8Kind::e4m3 ? e4m3 : e5m2;
}

}  // namespace moelab::numerics
