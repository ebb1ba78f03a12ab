// Fine-grained FP8 quantization: scale shapes with partial edge tiles, every
// scale and code recomputed independently from the convention
// (scale = fp32(max(amax, 1e-4) / 448), code = e4m3(fp32(x / scale))), UE8M0
// scales, the 128x1 / 1x128 transpose identity, error bounds and statistics.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "numerics/quantize.hpp"

using namespace moelab;
using namespace moelab::numerics;

namespace {

std::vector<float> random_tensor(int64_t rows, int64_t cols, uint64_t seed, double spread = 4.0) {
  Rng rng(seed);
  std::vector<float> x(rows * cols);
  // Log-normal magnitudes with random signs: a wide dynamic range per tile.
  for (float& v : x) v = static_cast<float>((rng.uniform() < 0.5 ? -1 : 1) * std::exp(spread * rng.normal()));
  return x;
}

struct Case {
  Granularity granularity;
  int64_t tile_rows, tile_cols;  // 0 = whole extent
};

TEST(Quantize, ScalesAndCodesFollowTheConventionWithPartialTiles) {
  const int64_t R = 130, C = 300;  // partial tiles at both edges
  const auto x = random_tensor(R, C, 1);
  for (const Case& c : {Case{Granularity::tensor, 0, 0}, Case{Granularity::tile_1x128, 1, 128},
                        Case{Granularity::tile_128x1, 128, 1}, Case{Granularity::block_128x128, 128, 128}}) {
    for (bool ue8m0 : {false, true}) {
      SCOPED_TRACE(granularity_name(c.granularity) + (ue8m0 ? " ue8m0" : ""));
      const QuantizedTensor q = quantize(x.data(), R, C, {Fp8Kind::e4m3, c.granularity, ue8m0});
      const int64_t tr = c.tile_rows ? c.tile_rows : R, tc = c.tile_cols ? c.tile_cols : C;
      ASSERT_EQ(q.scale_rows, (R + tr - 1) / tr);
      ASSERT_EQ(q.scale_cols, (C + tc - 1) / tc);
      ASSERT_EQ(q.scales.size(), static_cast<size_t>(q.scale_rows * q.scale_cols));
      for (int64_t i = 0; i < q.scale_rows; ++i)
        for (int64_t j = 0; j < q.scale_cols; ++j) {
          float amax = 0;
          for (int64_t r = i * tr; r < std::min(R, (i + 1) * tr); ++r)
            for (int64_t col = j * tc; col < std::min(C, (j + 1) * tc); ++col) amax = std::max(amax, std::fabs(x[r * C + col]));
          float expect = std::max(amax, 1e-4f) / 448.0f;
          if (ue8m0) expect = static_cast<float>(std::exp2(std::ceil(std::log2(static_cast<double>(expect)))));
          ASSERT_EQ(q.scales[i * q.scale_cols + j], expect) << "tile " << i << "," << j;
        }
      for (int64_t r = 0; r < R; ++r)
        for (int64_t col = 0; col < C; ++col) {
          const float s = q.scales[(r / tr) * q.scale_cols + col / tc];
          ASSERT_EQ(q.scale_at(r, col), s);
          ASSERT_EQ(q.codes[r * C + col], fp8_encode(x[r * C + col] / s, Fp8Kind::e4m3)) << r << "," << col;
        }
    }
  }
}

TEST(Quantize, Tiles128x1AreTheTransposeOf1x128) {
  const int64_t R = 200, C = 70;
  const auto x = random_tensor(R, C, 2);
  std::vector<float> xt(C * R);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) xt[c * R + r] = x[r * C + c];
  const auto q = quantize(x.data(), R, C, {Fp8Kind::e4m3, Granularity::tile_128x1, false});
  const auto qt = quantize(xt.data(), C, R, {Fp8Kind::e4m3, Granularity::tile_1x128, false});
  ASSERT_EQ(q.scale_rows, qt.scale_cols);
  ASSERT_EQ(q.scale_cols, qt.scale_rows);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      ASSERT_EQ(q.codes[r * C + c], qt.codes[c * R + r]);
      ASSERT_EQ(q.scale_at(r, c), qt.scale_at(c, r));
    }
}

TEST(Quantize, DequantizedErrorIsWithinHalfAnUlp) {
  // E4M3 keeps 3 fraction bits: relative error <= 2^-4 in the normal range,
  // absolute error <= scale * 2^-10 (half the smallest subnormal) below it.
  const int64_t R = 64, C = 512;
  for (Fp8Kind kind : {Fp8Kind::e4m3, Fp8Kind::e5m2}) {
    const auto& f = fp8_format(kind);
    const auto x = random_tensor(R, C, 3, 1.0);
    const auto q = quantize(x.data(), R, C, {kind, Granularity::tile_1x128, false});
    const auto y = dequantize(q);
    const auto y64 = dequantize_f64(q);
    for (int64_t i = 0; i < R * C; ++i) {
      const double s = q.scale_at(i / C, i % C);
      const double half_ulp_rel = std::ldexp(1.0, -f.mantissa_bits - 1);
      const double half_subnormal = s * std::ldexp(1.0, -f.bias - f.mantissa_bits);
      ASSERT_LE(std::fabs(y64[i] - x[i]), std::max(half_ulp_rel * std::fabs(x[i]), half_subnormal)) << i;
      ASSERT_EQ(y[i], static_cast<float>(y64[i])) << "float dequantization rounds the exact product once";
    }
  }
}

TEST(Quantize, StatisticsCountUnderflowAndSaturation) {
  // One 1x128 tile: amax 448 gives scale 1; 1e-4 underflows (below 2^-10).
  std::vector<float> x(128, 1.0f);
  x[0] = 448.0f;
  x[1] = 1e-4f;
  x[2] = 0.0f;
  x[3] = -3.0f;
  const auto q = quantize(x.data(), 1, 128, {Fp8Kind::e4m3, Granularity::tile_1x128, false});
  auto s = quant_stats(x.data(), q);
  EXPECT_EQ(q.scales[0], 1.0f);
  EXPECT_EQ(s.numel, 128);
  EXPECT_EQ(s.nonzero_inputs, 127);
  EXPECT_EQ(s.underflow_count, 1);
  EXPECT_NEAR(s.underflow_pct, 100.0 / 127, 1e-12);
  EXPECT_EQ(s.saturated_count, 0);
  EXPECT_EQ(s.amax, 448.0);
  EXPECT_EQ(s.scale_min, 1.0);
  EXPECT_NEAR(s.mse, 1e-8 / 128, 1e-15);  // only the underflowed element is off
  // Without scaling, 1000 saturates at 448.
  x[0] = 1000.0f;
  const auto raw = quantize(x.data(), 1, 128, {Fp8Kind::e4m3, Granularity::none, false});
  EXPECT_TRUE(raw.scales.empty());
  s = quant_stats(x.data(), raw);
  EXPECT_EQ(raw.codes[0], 0x7E);
  EXPECT_EQ(s.saturated_count, 1);
  EXPECT_NEAR(s.saturated_pct, 100.0 / 128, 1e-12);
  EXPECT_NEAR(s.mse, (552.0 * 552.0 + 1e-8) / 128, 1e-6);
}

TEST(Quantize, AllZeroTileUsesTheAmaxFloor) {
  std::vector<float> x(256, 0.0f);
  const auto q = quantize(x.data(), 2, 128, {Fp8Kind::e4m3, Granularity::tile_1x128, false});
  for (float s : q.scales) EXPECT_EQ(s, 1e-4f / 448.0f);
  for (uint8_t c : q.codes) EXPECT_EQ(c, 0);
}

TEST(Quantize, RejectsNonFiniteInputAndUnknownNames) {
  std::vector<float> x(8, 1.0f);
  x[5] = NAN;
  EXPECT_THROW(quantize(x.data(), 2, 4, {}), Error);
  try {
    quantize(x.data(), 2, 4, {});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 1]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_granularity("64x64"), Error);
  EXPECT_THROW(parse_fp8_kind("e3m4"), Error);
  EXPECT_EQ(parse_granularity("128x128"), Granularity::block_128x128);
}

}  // namespace
