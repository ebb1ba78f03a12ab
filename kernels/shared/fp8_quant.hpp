// Quantization of ONE tile to FP8 with one FP32 scale, single source for CPU
// and GPU (the CPU quantizer in src/numerics/quantize.cpp loops over tiles and
// calls these; a CUDA kernel gives one tile to a warp and calls the same
// scale and element functions, so the CPU tests check the GPU's arithmetic).
//
// Convention (DeepSeek-V3 §3.3.2; deepseek-ai/DeepSeek-V3 inference/kernel.py
// act_quant; shared/reference/fp8-accumulation.md section 5):
//   scale = fp32(max(amax, 1e-4) / max_finite)      (448 for E4M3)
//   scale = 2^ceil(log2 scale)                      with UE8M0 (power-of-two) scales
//   code  = fp8(fp32(x / scale))                    RNE, satfinite
//   x     ~ decode(code) * scale
// The 1e-4 floor keeps an all-zero tile from producing a zero scale.
#pragma once

#include <cstdint>

#include "kernels/shared/fp8.hpp"
#include "kernels/shared/host_device.hpp"

namespace moelab::shared {

constexpr float kFp8AmaxFloor = 1e-4f;

MOE_HOST_DEVICE float fp8_tile_scale(float amax, const Fp8Format& f, bool ue8m0) {
  const float scale = (amax > kFp8AmaxFloor ? amax : kFp8AmaxFloor) / f.max_finite;
  return ue8m0 ? ue8m0_round_up(scale) : scale;
}

MOE_HOST_DEVICE uint8_t fp8_quantize_value(float x, float scale, const Fp8Format& f) {
  return float_to_fp8(x / scale, f);
}

// x [rows, cols] with row stride ld_x -> codes [rows, cols] with row stride
// ld_codes; returns the tile's scale. A tile is 1x128, 128x1 or 128x128 (or
// smaller at the edges of a tensor, or the whole tensor).
MOE_HOST_DEVICE float fp8_quantize_tile(const float* x, int64_t ld_x, int rows, int cols, const Fp8Format& f,
                                        bool ue8m0, uint8_t* codes, int64_t ld_codes) {
  float amax = 0.0f;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const float a = fabsf(x[r * ld_x + c]);
      amax = a > amax ? a : amax;
    }
  const float scale = fp8_tile_scale(amax, f, ue8m0);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) codes[r * ld_codes + c] = fp8_quantize_value(x[r * ld_x + c], scale, f);
  return scale;
}

}  // namespace moelab::shared
