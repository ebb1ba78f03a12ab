#include "numerics/quantize.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "kernels/shared/fp8_quant.hpp"

namespace moelab::numerics {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Tile extent (rows, cols) of a granularity for a [rows, cols] tensor.
struct TileShape {
  int64_t rows, cols;
};

TileShape tile_shape(Granularity g, int64_t rows, int64_t cols) {
  switch (g) {
    case Granularity::none:
    case Granularity::tensor: return {std::max<int64_t>(rows, 1), std::max<int64_t>(cols, 1)};
    case Granularity::tile_1x128: return {1, kFp8TileSize};
    case Granularity::tile_128x1: return {kFp8TileSize, 1};
    case Granularity::block_128x128: return {kFp8TileSize, kFp8TileSize};
  }
  return {1, 1};
}

}  // namespace

std::string granularity_name(Granularity g) {
  switch (g) {
    case Granularity::none: return "none";
    case Granularity::tensor: return "tensor";
    case Granularity::tile_1x128: return "1x128";
    case Granularity::tile_128x1: return "128x1";
    case Granularity::block_128x128: return "128x128";
  }
  return "?";
}

Granularity parse_granularity(const std::string& name) {
  for (Granularity g : {Granularity::none, Granularity::tensor, Granularity::tile_1x128, Granularity::tile_128x1,
                        Granularity::block_128x128})
    if (name == granularity_name(g)) return g;
  MOE_FAIL() << "unknown FP8 granularity '" << name << "' (expected none, tensor, 1x128, 128x1 or 128x128)";
  return Granularity::none;
}

float QuantizedTensor::scale_at(int64_t row, int64_t col) const {
  if (granularity == Granularity::none) return 1.0f;
  const TileShape t = tile_shape(granularity, rows, cols);
  return scales[(row / t.rows) * scale_cols + col / t.cols];
}

QuantizedTensor quantize(const float* x, int64_t rows, int64_t cols, const QuantizeOptions& options) {
  MOE_CHECK(rows >= 0 && cols >= 0) << "quantize: negative shape [" << rows << ", " << cols << "]";
  for (int64_t i = 0; i < rows * cols; ++i)
    MOE_CHECK(std::isfinite(x[i])) << "quantize: non-finite value " << x[i] << " at [" << i / cols << ", "
                                   << i % cols << "]";
  const shared::Fp8Format& f = fp8_format(options.format);
  QuantizedTensor q;
  q.format = options.format;
  q.granularity = options.granularity;
  q.ue8m0 = options.ue8m0;
  q.rows = rows;
  q.cols = cols;
  q.codes.resize(static_cast<size_t>(rows * cols));
  if (options.granularity == Granularity::none) {
    for (int64_t i = 0; i < rows * cols; ++i) q.codes[i] = shared::float_to_fp8(x[i], f);
    return q;
  }
  const TileShape t = tile_shape(options.granularity, rows, cols);
  q.scale_rows = ceil_div(rows, t.rows);
  q.scale_cols = ceil_div(cols, t.cols);
  q.scales.resize(static_cast<size_t>(q.scale_rows * q.scale_cols));
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
  for (int64_t tr = 0; tr < q.scale_rows; ++tr)
    for (int64_t tc = 0; tc < q.scale_cols; ++tc) {
      const int64_t r0 = tr * t.rows, c0 = tc * t.cols;
      const int tile_rows = static_cast<int>(std::min(t.rows, rows - r0));
      const int tile_cols = static_cast<int>(std::min(t.cols, cols - c0));
      q.scales[tr * q.scale_cols + tc] = shared::fp8_quantize_tile(
          x + r0 * cols + c0, cols, tile_rows, tile_cols, f, options.ue8m0, q.codes.data() + r0 * cols + c0, cols);
    }
  return q;
}

std::vector<float> dequantize(const QuantizedTensor& q) {
  const auto& table = fp8_decode_table(q.format);
  std::vector<float> x(q.codes.size());
#pragma omp parallel for schedule(static) if (q.rows * q.cols > (1 << 16))
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t c = 0; c < q.cols; ++c) x[r * q.cols + c] = table[q.codes[r * q.cols + c]] * q.scale_at(r, c);
  return x;
}

std::vector<double> dequantize_f64(const QuantizedTensor& q) {
  const auto& table = fp8_decode_table(q.format);
  std::vector<double> x(q.codes.size());
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t c = 0; c < q.cols; ++c)
      x[r * q.cols + c] = static_cast<double>(table[q.codes[r * q.cols + c]]) * q.scale_at(r, c);
  return x;
}

QuantStats quant_stats(const float* x, const QuantizedTensor& q) {
  const auto& table = fp8_decode_table(q.format);
  const float max_finite = fp8_format(q.format).max_finite;
  QuantStats s;
  s.numel = q.rows * q.cols;
  double sum_sq_err = 0.0, sum_sq = 0.0;
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t c = 0; c < q.cols; ++c) {
      const int64_t i = r * q.cols + c;
      const float scale = q.scale_at(r, c);
      const uint8_t code = q.codes[i];
      if (x[i] != 0.0f) {
        ++s.nonzero_inputs;
        if ((code & 0x7F) == 0) ++s.underflow_count;
      }
      if (std::fabs(x[i] / scale) > max_finite) ++s.saturated_count;
      const double err = static_cast<double>(table[code]) * scale - x[i];
      sum_sq_err += err * err;
      sum_sq += static_cast<double>(x[i]) * x[i];
      s.amax = std::max(s.amax, std::fabs(static_cast<double>(x[i])));
    }
  if (q.scales.empty()) {
    s.scale_min = s.scale_max = 1.0;
  } else {
    const auto [lo, hi] = std::minmax_element(q.scales.begin(), q.scales.end());
    s.scale_min = *lo;
    s.scale_max = *hi;
  }
  if (s.nonzero_inputs > 0) s.underflow_pct = 100.0 * s.underflow_count / s.nonzero_inputs;
  if (s.numel > 0) {
    s.saturated_pct = 100.0 * s.saturated_count / s.numel;
    s.mse = sum_sq_err / s.numel;
  }
  if (sum_sq > 0) s.rel_rms_error = std::sqrt(sum_sq_err / sum_sq);
  return s;
}

double quantize_bytes(const QuantizedTensor& q) {
  return 5.0 * static_cast<double>(q.rows * q.cols) + 4.0 * static_cast<double>(q.scales.size());
}

}  // namespace moelab::numerics
