// Wire formats of expert-parallel rows (src/parallel/wire.hpp describes them),
// single source for CPU and GPU: the MPI Dispatcher encodes/decodes rows on
// the host through these, the NCCL dispatcher's kernels (kernels/wire.cu) on
// the device, so the CPU tests of the wire format test the GPU's arithmetic.
//   fp32  H * 4 bytes
//   bf16  H * 2 bytes (round to nearest even)
//   fp8   H E4M3 codes, then ceil(H/128) FP32 scales (one per 1x128 tile,
//         fp8_quant.hpp's convention, no UE8M0); decode = code * scale.
// Unit of encoding: one 1x128 tile of a row (a tile's FP8 codes share its
// scale); of decoding: one value.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/shared/bf16.hpp"
#include "kernels/shared/fp8_quant.hpp"
#include "kernels/shared/host_device.hpp"

namespace moelab::shared {

enum class WireFormat { fp32, bf16, fp8 };

constexpr int64_t kWireTile = 128;

MOE_HOST_DEVICE int64_t wire_tiles(int64_t hidden) { return (hidden + kWireTile - 1) / kWireTile; }

MOE_HOST_DEVICE int64_t wire_payload_bytes(WireFormat f, int64_t hidden) {
  return f == WireFormat::fp32 ? 4 * hidden : f == WireFormat::bf16 ? 2 * hidden : hidden + 4 * wire_tiles(hidden);
}

// Encodes values [tile*128, min(hidden, tile*128+128)) of row x into the
// row's record `out` (wire_payload_bytes bytes).
MOE_HOST_DEVICE void wire_encode_tile(WireFormat f, const float* x, int64_t hidden, int64_t tile, uint8_t* out) {
  const int64_t c0 = tile * kWireTile;
  const int64_t c1 = c0 + kWireTile < hidden ? c0 + kWireTile : hidden;
  if (f == WireFormat::fp32) {
    memcpy(out + 4 * c0, x + c0, 4 * (c1 - c0));
  } else if (f == WireFormat::bf16) {
    for (int64_t i = c0; i < c1; ++i) {
      const uint16_t b = float_to_bf16_bits(x[i]);
      memcpy(out + 2 * i, &b, 2);
    }
  } else {
    const float scale =
        fp8_quantize_tile(x + c0, hidden, 1, static_cast<int>(c1 - c0), e4m3_format(), false, out + c0, hidden);
    memcpy(out + hidden + 4 * tile, &scale, 4);
  }
}

// Value i of the row encoded in `in`.
MOE_HOST_DEVICE float wire_decode_value(WireFormat f, const uint8_t* in, int64_t hidden, int64_t i) {
  if (f == WireFormat::fp32) {
    float v;
    memcpy(&v, in + 4 * i, 4);
    return v;
  }
  if (f == WireFormat::bf16) {
    uint16_t b;
    memcpy(&b, in + 2 * i, 2);
    return bf16_bits_to_float(b);
  }
  float scale;
  memcpy(&scale, in + hidden + 4 * (i / kWireTile), 4);
  return fp8_to_float(in[i], e4m3_format()) * scale;
}

}  // namespace moelab::shared
