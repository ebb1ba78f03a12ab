// Wire formats of dispatched and combined activations (DeepSeek-V3 §3.3.3:
// dispatch in FP8 with 1x128 tiles and FP32 scales, combine in BF16).
// One row of H values is encoded as:
//   fp32  H * 4 bytes
//   bf16  H * 2 bytes (round to nearest even)
//   fp8   H codes (E4M3, 1 byte each) then ceil(H/128) FP32 scales, one per
//         1x128 tile (kernels/shared/fp8_quant.hpp, the numerics quantizer's
//         arithmetic; decode = code * scale in FP32, as numerics::dequantize)
// The bytes counted by the traffic figures are these encoded sizes. The
// per-tile encoding and per-value decoding are kernels/shared/wire.hpp's
// __host__ __device__ functions, which the NCCL path's kernels call too.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/shared/wire.hpp"

namespace moelab::parallel {

// The single-source enum (kernels/shared/wire.hpp), so the NCCL path's
// kernels take the same values.
using WireFormat = shared::WireFormat;

std::string wire_format_name(WireFormat f);            // "fp32" | "bf16" | "fp8"
WireFormat parse_wire_format(const std::string& name);  // throws on anything else

int64_t wire_row_bytes(WireFormat f, int64_t hidden);
void wire_encode(WireFormat f, const float* x, int64_t hidden, uint8_t* out);  // out: wire_row_bytes
void wire_decode(WireFormat f, const uint8_t* in, int64_t hidden, float* x);
// x -> wire -> x: what a receiver sees of x.
void wire_round_trip(WireFormat f, float* x, int64_t hidden);

}  // namespace moelab::parallel
