// Fine-grained FP8 quantization of a 2-D tensor x [R, C] (row-major), as in
// DeepSeek-V3 §3.3.2 and Transformer Engine's Float8BlockScaling:
//   none     codes = fp8(x), no scale (values outside the range saturate)
//   tensor   one scale for the whole tensor                scales [1, 1]
//   1x128    per row per 128 columns (activations, forward) scales [R, ceil(C/128)]
//   128x1    per 128 rows per column (activations, backward) scales [ceil(R/128), C]
//   128x128  per 128x128 block (weights)                   scales [ceil(R/128), ceil(C/128)]
// Tiles at the right/bottom edges are partial (their amax covers what exists).
// Each tile is quantized by shared::fp8_quantize_tile (kernels/shared/fp8_quant.hpp).
//
// Statistics follow Transformer Engine's FP8 tensor statistics: the share of
// non-zero inputs that underflow to zero, the share that saturate at
// +-max_finite, the range of the scales, and the error of the dequantized
// tensor against the input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "numerics/fp8_format.hpp"

namespace moelab::numerics {

constexpr int kFp8TileSize = 128;

enum class Granularity { none, tensor, tile_1x128, tile_128x1, block_128x128 };

std::string granularity_name(Granularity g);            // "none" | "tensor" | "1x128" | "128x1" | "128x128"
Granularity parse_granularity(const std::string& name);  // throws on anything else

struct QuantizeOptions {
  Fp8Kind format = Fp8Kind::e4m3;
  Granularity granularity = Granularity::tile_1x128;
  bool ue8m0 = false;  // power-of-two scales: 2^ceil(log2 s)
};

struct QuantizedTensor {
  Fp8Kind format = Fp8Kind::e4m3;
  Granularity granularity = Granularity::none;
  bool ue8m0 = false;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;  // [rows, cols]
  int64_t scale_rows = 0, scale_cols = 0;
  std::vector<float> scales;   // [scale_rows, scale_cols]; empty for none

  // Scale of element (row, col): 1 for none.
  float scale_at(int64_t row, int64_t col) const;
};

struct QuantStats {
  int64_t numel = 0;
  int64_t nonzero_inputs = 0;
  int64_t underflow_count = 0;  // x != 0 but code is +-0
  int64_t saturated_count = 0;  // |x / scale| > max_finite (clamped to +-max)
  double underflow_pct = 0.0;   // of the non-zero inputs
  double saturated_pct = 0.0;   // of all elements
  double amax = 0.0;
  double scale_min = 0.0, scale_max = 0.0;  // 1 and 1 for none
  double mse = 0.0;             // mean (dequant - x)^2
  double rel_rms_error = 0.0;   // sqrt(mse) / rms(x) (0 when x is all zero)
};

// x [rows, cols] -> codes and scales. Throws on a non-finite input, naming
// its coordinates.
QuantizedTensor quantize(const float* x, int64_t rows, int64_t cols, const QuantizeOptions& options);

// codes * scale -> [rows, cols]. In float the product (up to 4 + 24
// significant bits) is rounded once, unless scales are powers of two (UE8M0);
// in double it is exact.
std::vector<float> dequantize(const QuantizedTensor& q);
std::vector<double> dequantize_f64(const QuantizedTensor& q);

QuantStats quant_stats(const float* x, const QuantizedTensor& q);

// Bytes moved by quantize: read x (4 B per element), write codes (1 B per
// element) and scales (4 B each). For rate counters.
double quantize_bytes(const QuantizedTensor& q);

}  // namespace moelab::numerics
