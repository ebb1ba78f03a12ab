// The single-source MMA step (kernels/shared/fp8_mma_step.hpp, the GPU
// emulated GEMM's arithmetic) against the __int128 reference of
// src/numerics/mma_reference.cpp: exact equality on random steps with random
// accumulators (normal, subnormal, zero, both signs), both formats, several F.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/rng.hpp"
#include "kernels/shared/fp8_mma_step.hpp"
#include "numerics/mma_reference.hpp"

using namespace moelab;
using namespace moelab::numerics;

namespace {

uint8_t random_finite_code(Fp8Kind kind, Rng& rng) {
  const auto& table = fp8_decode_table(kind);
  uint8_t c;
  do {
    c = static_cast<uint8_t>(rng.below(256));
    if (rng.below(16) == 0) c &= 0x87;  // zero or subnormal
  } while (!std::isfinite(table[c]));
  return c;
}

float random_accumulator(Rng& rng) {
  switch (rng.below(5)) {
    case 0: return 0.0f;
    case 1: return std::ldexp(static_cast<float>(rng.normal()), -130);  // subnormal
    case 2: return std::ldexp(static_cast<float>(rng.normal()), static_cast<int>(rng.below(40)) - 20);
    default: return static_cast<float>(rng.normal() * 50.0);
  }
}

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

}  // namespace

TEST(SharedMmaStep, EqualsIntegerReference) {
  Rng rng(2024);
  int checked = 0;
  for (Fp8Kind a_kind : {Fp8Kind::e4m3, Fp8Kind::e5m2})
    for (Fp8Kind b_kind : {Fp8Kind::e4m3, Fp8Kind::e5m2})
      for (int F : {10, 13, 14, 23})
        for (int trial = 0; trial < 500; ++trial) {
          const int n = 1 + static_cast<int>(rng.below(32));
          std::vector<uint8_t> a(n), b(n);
          for (int i = 0; i < n; ++i) a[i] = random_finite_code(a_kind, rng), b[i] = random_finite_code(b_kind, rng);
          const float c = random_accumulator(rng);
          const float ref = mma_step_reference(c, a.data(), a_kind, b.data(), b_kind, n, F);
          const float got =
              shared::fp8_mma_step(c, a.data(), fp8_format(a_kind), b.data(), fp8_format(b_kind), n, F);
          ASSERT_EQ(bits_of(got), bits_of(ref)) << "F=" << F << " trial " << trial << " c=" << c;
          ++checked;
        }
  EXPECT_EQ(checked, 8000);
}
