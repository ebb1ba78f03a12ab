#include "parallel/wire.hpp"

#include <cstring>
#include <vector>

#include "core/bf16.hpp"
#include "core/error.hpp"
#include "kernels/shared/fp8_quant.hpp"
#include "numerics/fp8_format.hpp"

namespace moelab::parallel {

namespace {
constexpr int64_t kTile = 128;
int64_t num_tiles(int64_t hidden) { return (hidden + kTile - 1) / kTile; }
}  // namespace

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

int64_t wire_row_bytes(WireFormat f, int64_t hidden) {
  switch (f) {
    case WireFormat::fp32: return 4 * hidden;
    case WireFormat::bf16: return 2 * hidden;
    case WireFormat::fp8: return hidden + 4 * num_tiles(hidden);
  }
  return 0;
}

void wire_encode(WireFormat f, const float* x, int64_t hidden, uint8_t* out) {
  switch (f) {
    case WireFormat::fp32:
      std::memcpy(out, x, 4 * hidden);
      return;
    case WireFormat::bf16:
      for (int64_t i = 0; i < hidden; ++i) {
        const uint16_t b = float_to_bf16_bits(x[i]);
        std::memcpy(out + 2 * i, &b, 2);
      }
      return;
    case WireFormat::fp8: {
      uint8_t* scales = out + hidden;
      for (int64_t t = 0; t < num_tiles(hidden); ++t) {
        const int64_t c0 = t * kTile;
        const int cols = static_cast<int>(std::min(kTile, hidden - c0));
        const float scale = shared::fp8_quantize_tile(x + c0, hidden, 1, cols, shared::kE4M3, false, out + c0, hidden);
        std::memcpy(scales + 4 * t, &scale, 4);
      }
      return;
    }
  }
}

void wire_decode(WireFormat f, const uint8_t* in, int64_t hidden, float* x) {
  switch (f) {
    case WireFormat::fp32:
      std::memcpy(x, in, 4 * hidden);
      return;
    case WireFormat::bf16:
      for (int64_t i = 0; i < hidden; ++i) {
        uint16_t b;
        std::memcpy(&b, in + 2 * i, 2);
        x[i] = bf16_bits_to_float(b);
      }
      return;
    case WireFormat::fp8: {
      const auto& table = numerics::fp8_decode_table(numerics::Fp8Kind::e4m3);
      const uint8_t* scales = in + hidden;
      for (int64_t t = 0; t < num_tiles(hidden); ++t) {
        float scale;
        std::memcpy(&scale, scales + 4 * t, 4);
        const int64_t c1 = std::min(hidden, (t + 1) * kTile);
        for (int64_t c = t * kTile; c < c1; ++c) x[c] = table[in[c]] * scale;
      }
      return;
    }
  }
}

void wire_round_trip(WireFormat f, float* x, int64_t hidden) {
  std::vector<uint8_t> buf(wire_row_bytes(f, hidden));
  wire_encode(f, x, hidden, buf.data());
  wire_decode(f, buf.data(), hidden, x);
}

}  // namespace moelab::parallel
