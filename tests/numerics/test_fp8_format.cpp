// FP8 E4M3/E5M2, BF16 and UE8M0 conversions against brute force: every code
// round-trips, and encode equals a nearest-even search over all decoded code
// values on a dense sweep that includes every tie, saturation, subnormals,
// NaN and +-inf (cvt.rn.satfinite semantics, fp8-accumulation.md section 2).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/bf16.hpp"
#include "kernels/shared/fp8.hpp"
#include "numerics/fp8_format.hpp"

using namespace moelab;
using numerics::Fp8Kind;

namespace {

float from_bits(uint32_t b) {
  float x;
  std::memcpy(&x, &b, 4);
  return x;
}

// Nearest finite code by exhaustive search; ties go to the even code (last
// mantissa bit 0); beyond max everything saturates (satfinite).
uint8_t brute_force_encode(float x, Fp8Kind kind) {
  if (std::isnan(x)) return 0x7F;
  const auto& table = numerics::fp8_decode_table(kind);
  const double a = std::fabs(static_cast<double>(x));
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  // satfinite: beyond max_finite (and at it) the answer is max_finite. Said
  // explicitly because far above the range the distances below are rounded.
  const auto& f = numerics::fp8_format(kind);
  if (a >= f.max_finite) return sign | f.max_code;
  int best = 0;
  double best_dist = std::numeric_limits<double>::infinity();
  for (int code = 0; code < 0x80; ++code) {
    if (!std::isfinite(table[code])) continue;
    const double dist = std::fabs(table[code] - a);
    if (dist < best_dist || (dist == best_dist && (code & 1) == 0)) {
      best = code;
      best_dist = dist;
    }
  }
  return static_cast<uint8_t>(sign | best);
}

// The points that matter: every code value, every midpoint between
// neighbours (the ties), one FP32 ulp either side of both.
std::vector<float> critical_points(Fp8Kind kind) {
  const auto& table = numerics::fp8_decode_table(kind);
  std::vector<float> magnitudes;
  for (int code = 0; code < 0x80; ++code)
    if (std::isfinite(table[code])) magnitudes.push_back(table[code]);
  // One step past max: where the next code would sit (2 * max - previous).
  const float max = magnitudes.back(), below_max = magnitudes[magnitudes.size() - 2];
  magnitudes.push_back(max + (max - below_max));
  std::vector<float> points;
  for (size_t i = 0; i + 1 < magnitudes.size(); ++i) {
    const float lo = magnitudes[i], hi = magnitudes[i + 1];
    const float mid = static_cast<float>((static_cast<double>(lo) + hi) / 2);  // exact in FP32
    for (float p : {lo, hi, mid}) {
      points.push_back(p);
      points.push_back(std::nextafter(p, 0.0f));
      points.push_back(std::nextafter(p, INFINITY));
    }
  }
  return points;
}

class Fp8Formats : public ::testing::TestWithParam<Fp8Kind> {};

TEST_P(Fp8Formats, AllCodesRoundTrip) {
  const Fp8Kind kind = GetParam();
  const auto& f = numerics::fp8_format(kind);
  int finite = 0;
  for (int code = 0; code < 256; ++code) {
    const float value = numerics::fp8_decode(static_cast<uint8_t>(code), kind);
    EXPECT_EQ(shared::float_to_bits(value), shared::float_to_bits(shared::fp8_to_float(static_cast<uint8_t>(code), f)))
        << "table vs shared decode, code " << code;
    if (std::isnan(value)) {
      EXPECT_EQ(numerics::fp8_encode(value, kind), 0x7F) << "NaN code " << code;
    } else if (std::isinf(value)) {
      EXPECT_EQ(numerics::fp8_encode(value, kind), (code & 0x80) | f.max_code) << "inf saturates, code " << code;
    } else {
      ++finite;
      EXPECT_EQ(numerics::fp8_encode(value, kind), code) << "code " << code << " value " << value;
    }
  }
  // E4M3: 256 - 2 NaNs; E5M2: 256 - 2 infs - 6 NaNs.
  EXPECT_EQ(finite, kind == Fp8Kind::e4m3 ? 254 : 248);
}

TEST_P(Fp8Formats, EncodeEqualsBruteForceOnTiesAndNeighbours) {
  const Fp8Kind kind = GetParam();
  int checked = 0;
  for (float p : critical_points(kind))
    for (float x : {p, -p}) {
      ASSERT_EQ(numerics::fp8_encode(x, kind), brute_force_encode(x, kind)) << "x = " << x;
      ++checked;
    }
  EXPECT_GT(checked, 1000);
}

TEST_P(Fp8Formats, EncodeEqualsBruteForceOnStridedFp32Sweep) {
  // Every 4099th FP32 bit pattern from +0 to +inf (subnormals included),
  // both signs: ~520k values per sign.
  const Fp8Kind kind = GetParam();
  for (uint32_t bits = 0; bits < 0x7f800000u; bits += 4099) {
    const float x = from_bits(bits);
    ASSERT_EQ(numerics::fp8_encode(x, kind), brute_force_encode(x, kind)) << "x = " << x;
    ASSERT_EQ(numerics::fp8_encode(-x, kind), brute_force_encode(-x, kind)) << "x = " << -x;
  }
}

TEST_P(Fp8Formats, SpecialValues) {
  const Fp8Kind kind = GetParam();
  const auto& f = numerics::fp8_format(kind);
  const auto enc = [&](float x) { return numerics::fp8_encode(x, kind); };
  EXPECT_EQ(enc(std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(enc(-std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(enc(from_bits(0x7f800001u)), 0x7F);  // signalling NaN
  EXPECT_EQ(enc(INFINITY), f.max_code);
  EXPECT_EQ(enc(-INFINITY), 0x80 | f.max_code);
  EXPECT_EQ(enc(std::numeric_limits<float>::max()), f.max_code);
  EXPECT_EQ(enc(f.max_finite), f.max_code);
  EXPECT_EQ(enc(0.0f), 0x00);
  EXPECT_EQ(enc(-0.0f), 0x80);
  EXPECT_EQ(enc(std::numeric_limits<float>::denorm_min()), 0x00);
  EXPECT_EQ(enc(-std::numeric_limits<float>::denorm_min()), 0x80);
  const float min_subnormal = std::ldexp(1.0f, 1 - f.bias - f.mantissa_bits);
  EXPECT_EQ(enc(min_subnormal), 0x01);
  EXPECT_EQ(enc(min_subnormal / 2), 0x00);  // tie to even: 0
  EXPECT_EQ(enc(std::nextafter(min_subnormal / 2, 1.0f)), 0x01);
  EXPECT_EQ(enc(1.5f * min_subnormal), 0x02);  // tie between 1 and 2: even is 2
}

INSTANTIATE_TEST_SUITE_P(Fp8, Fp8Formats, ::testing::Values(Fp8Kind::e4m3, Fp8Kind::e5m2),
                         [](const auto& info) { return numerics::fp8_name(info.param); });

TEST(Fp8, SaturationThresholdsOfCvtRnSatfinite) {
  // E4M3: 464 = 448 + ulp/2 is a tie and rounds to even (448); above it
  // still saturates to 448. E5M2: the tie 61440 rounds up, out of range, and
  // saturates to 57344.
  EXPECT_EQ(shared::float_to_e4m3(464.0f), 0x7E);
  EXPECT_EQ(shared::float_to_e4m3(465.0f), 0x7E);
  EXPECT_EQ(shared::float_to_e4m3(1e30f), 0x7E);
  EXPECT_EQ(shared::float_to_e4m3(-1e30f), 0xFE);
  EXPECT_EQ(shared::float_to_e5m2(61440.0f), 0x7B);
  EXPECT_EQ(shared::float_to_e5m2(-1e30f), 0xFB);
  EXPECT_EQ(shared::e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(shared::e5m2_to_float(0x7B), 57344.0f);
  EXPECT_EQ(shared::e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(shared::e5m2_to_float(0x3C), 1.0f);
  EXPECT_TRUE(std::isnan(shared::e4m3_to_float(0x7F)));
  EXPECT_TRUE(std::isinf(shared::e5m2_to_float(0x7C)));
}

TEST(Bf16, RoundToNearestEvenAgainstBruteForce) {
  // Neighbours lo = bits with the low 16 cleared and hi = lo + 1 ulp; pick
  // the nearer in double, ties to the even BF16 pattern.
  for (uint32_t bits = 0; bits < 0x7f7f0000u; bits += 65521) {
    for (uint32_t offset : {0u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu}) {
      const uint32_t b = (bits & 0xffff0000u) + offset;
      const float x = from_bits(b);
      const float lo = from_bits(b & 0xffff0000u), hi = from_bits((b & 0xffff0000u) + 0x10000u);
      const double dlo = static_cast<double>(x) - lo, dhi = static_cast<double>(hi) - x;
      const bool lo_even = ((b >> 16) & 1u) == 0;
      const float expect = dlo < dhi ? lo : dhi < dlo ? hi : (lo_even ? lo : hi);
      ASSERT_EQ(round_to_bf16(x), expect) << "bits 0x" << std::hex << b;
      ASSERT_EQ(round_to_bf16(-x), -expect) << "bits 0x" << std::hex << b;
    }
  }
  EXPECT_TRUE(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
}

TEST(Ue8m0, RoundsScalesUpToPowersOfTwo) {
  for (int e = -40; e <= 40; ++e) {
    const float p = std::ldexp(1.0f, e);
    EXPECT_EQ(shared::ue8m0_round_up(p), p) << "powers of two are kept";
    EXPECT_EQ(shared::ue8m0_round_up(std::nextafter(p, INFINITY)), 2 * p);
    EXPECT_EQ(shared::ue8m0_round_up(1.3f * p), 2 * p);
    EXPECT_EQ(shared::ue8m0_decode(shared::ue8m0_encode(p)), p);
    EXPECT_EQ(shared::ue8m0_encode(p), e + 127);
  }
  for (float s : {1e-4f / 448, 3.0f / 448, 0.7f}) {
    EXPECT_EQ(shared::ue8m0_round_up(s), std::exp2(std::ceil(std::log2(static_cast<double>(s)))));
  }
}

}  // namespace

TEST(Fp8Round, EqualsDecodeOfEncodeForEveryFiniteValueOnAStridedSweep) {
  // The float-domain rounding of the fake-quantization fast path against the
  // codes: every 1021st FP32 bit pattern below inf, both signs, and -0.
  for (Fp8Kind kind : {Fp8Kind::e4m3, Fp8Kind::e5m2}) {
    const auto& f = numerics::fp8_format(kind);
    for (uint32_t bits = 0; bits < 0x7f800000u; bits += 1021)
      for (uint32_t sign : {0u, 0x80000000u}) {
        const float x = from_bits(bits | sign);
        const float expect = numerics::fp8_decode(numerics::fp8_encode(x, kind), kind);
        ASSERT_EQ(shared::float_to_bits(shared::fp8_round(x, f)), shared::float_to_bits(expect))
            << numerics::fp8_name(kind) << " x = " << x;
      }
    for (float p : critical_points(kind))
      for (float x : {p, -p})
        ASSERT_EQ(shared::float_to_bits(shared::fp8_round(x, f)),
                  shared::float_to_bits(numerics::fp8_decode(numerics::fp8_encode(x, kind), kind)))
            << numerics::fp8_name(kind) << " x = " << x;
  }
}
