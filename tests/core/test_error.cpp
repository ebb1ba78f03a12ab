#include <gtest/gtest.h>

#include <cmath>

#include "core/bf16.hpp"
#include "core/error.hpp"
#include "core/tensor.hpp"

using namespace moelab;

TEST(Error, CheckThrowsWithMessageConditionAndLocation) {
  const int experts = 7, ep = 2;
  try {
    MOE_CHECK(experts % ep == 0) << "experts (" << experts << ") not divisible by EP degree (" << ep << ")";
    FAIL() << "MOE_CHECK did not throw";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("experts (7) not divisible by EP degree (2)"), std::string::npos) << what;
    EXPECT_NE(what.find("experts % ep == 0"), std::string::npos) << what;
    EXPECT_NE(what.find("test_error.cpp:"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
  }
}

TEST(Error, PassingCheckDoesNotEvaluateMessage) {
  int evaluated = 0;
  auto side_effect = [&] { return ++evaluated; };
  MOE_CHECK(true) << side_effect();
  EXPECT_EQ(evaluated, 0);
}

TEST(Tensor, ShapeMismatchIsAnError) {
  EXPECT_THROW(Tensor<float>({2, 3}, std::vector<float>(5)), Error);
  Tensor<float> t({2, 3}, 1.5f);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.dim(-1), 3);
  EXPECT_EQ(shape_str(t.shape), "[2, 3]");
}

TEST(Bf16, RoundsToNearestEven) {
  // 1 + 2^-8 is exactly half way between bf16 1.0 and 1 + 2^-7: ties to even (1.0).
  EXPECT_EQ(round_to_bf16(1.0f + 0x1.0p-8f), 1.0f);
  // 1 + 3*2^-8 is half way between 1+2^-7 (odd) and 1+2^-6 (even).
  EXPECT_EQ(round_to_bf16(1.0f + 3 * 0x1.0p-8f), 1.0f + 0x1.0p-6f);
  EXPECT_EQ(round_to_bf16(1.0f + 0x1.0p-8f + 0x1.0p-20f), 1.0f + 0x1.0p-7f);
  EXPECT_EQ(float_to_bf16_bits(-2.0f), 0xC000);
  EXPECT_TRUE(std::isnan(round_to_bf16(std::nanf(""))));
}
