// One comparison helper for every numerical test (STYLE.md habit 3):
//
//   EXPECT_TRUE(expect_close("dx", got, ref, n, tol_for<float>()));
//
// An element passes when |got - ref| <= abs + rel * |ref|. On failure the
// message gives the max abs and rel errors with their coordinates, the
// fraction passing and the first few failing pairs. Tightening a tolerance
// is free; loosening one needs a comment saying why.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace moelab::test {

struct Tolerance {
  double abs;
  double rel;
};

// Per-dtype defaults: a few ulps of accumulated rounding for sums of ~100 terms.
template <typename T>
constexpr Tolerance tol_for();
template <>
constexpr Tolerance tol_for<double>() { return {1e-12, 1e-10}; }
template <>
constexpr Tolerance tol_for<float>() { return {1e-5, 1e-4}; }
// BF16 inputs (8 mantissa bits) with FP32 accumulation.
constexpr Tolerance tol_bf16() { return {1e-2, 2e-2}; }

template <typename G, typename R>
::testing::AssertionResult expect_close(const std::string& name, const G* got, const R* ref, int64_t count,
                                        Tolerance tol) {
  int64_t failing = 0, worst_abs_at = -1, worst_rel_at = -1;
  double max_abs = 0, max_rel = 0;
  std::ostringstream pairs;
  for (int64_t i = 0; i < count; ++i) {
    const double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    const double err = std::fabs(g - r);
    const double rel = r != 0 ? err / std::fabs(r) : (err == 0 ? 0 : INFINITY);
    const bool nan_mismatch = std::isnan(g) != std::isnan(r);
    if (err > max_abs || (std::isnan(err) && worst_abs_at < 0)) max_abs = err, worst_abs_at = i;
    if (rel > max_rel) max_rel = rel, worst_rel_at = i;
    if (nan_mismatch || !(err <= tol.abs + tol.rel * std::fabs(r))) {
      if (failing < 5) pairs << "\n    [" << i << "] got " << g << " ref " << r << " (abs " << err << ")";
      ++failing;
    }
  }
  if (failing == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << name << ": " << (count - failing) << "/" << count << " within abs " << tol.abs << " + rel " << tol.rel
         << "; max abs " << max_abs << " at [" << worst_abs_at << "], max rel " << max_rel << " at ["
         << worst_rel_at << "]; first failures:" << pairs.str();
}

template <typename G, typename R>
::testing::AssertionResult expect_close(const std::string& name, const std::vector<G>& got,
                                        const std::vector<R>& ref, Tolerance tol) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << name << ": size " << got.size() << " vs reference " << ref.size();
  return expect_close(name, got.data(), ref.data(), static_cast<int64_t>(got.size()), tol);
}

// Exact equality (routing indices, permutations), with the first mismatches.
template <typename A, typename B>
::testing::AssertionResult expect_equal(const std::string& name, const std::vector<A>& got,
                                        const std::vector<B>& ref) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << name << ": size " << got.size() << " vs reference " << ref.size();
  int64_t failing = 0;
  std::ostringstream pairs;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(got[i] == ref[i])) {
      if (failing < 5) pairs << "\n    [" << i << "] got " << got[i] << " ref " << ref[i];
      ++failing;
    }
  if (failing == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << name << ": " << failing << "/" << got.size()
                                       << " differ; first:" << pairs.str();
}

}  // namespace moelab::test
