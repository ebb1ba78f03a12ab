#include "parallel/wire.hpp"

#include <vector>

#include "core/error.hpp"

namespace moelab::parallel {

std::string wire_format_name(WireFormat f) {
  switch (f) {
    case WireFormat::fp32: return "fp32";
    case WireFormat::bf16: return "bf16";
    case WireFormat::fp8: return "fp8";
  }
  return "?";
}

WireFormat parse_wire_format(const std::string& name) {
  if (name == "fp32") return WireFormat::fp32;
  if (name == "bf16") return WireFormat::bf16;
  if (name == "fp8") return WireFormat::fp8;
  MOE_FAIL() << "wire format '" << name << "': expected fp32, bf16 or fp8";
  return WireFormat::fp32;
}

int64_t wire_row_bytes(WireFormat f, int64_t hidden) { return shared::wire_payload_bytes(f, hidden); }

void wire_encode(WireFormat f, const float* x, int64_t hidden, uint8_t* out) {
  for (int64_t t = 0; t < shared::wire_tiles(hidden); ++t) shared::wire_encode_tile(f, x, hidden, t, out);
}

void wire_decode(WireFormat f, const uint8_t* in, int64_t hidden, float* x) {
  for (int64_t i = 0; i < hidden; ++i) x[i] = shared::wire_decode_value(f, in, hidden, i);
}

void wire_round_trip(WireFormat f, float* x, int64_t hidden) {
  std::vector<uint8_t> buf(wire_row_bytes(f, hidden));
  wire_encode(f, x, hidden, buf.data());
  wire_decode(f, buf.data(), hidden, x);
}

}  // namespace moelab::parallel
