// Finite-difference gradient checker, double precision.
//
// A layer's backward is checked by projecting its output on a fixed random
// tensor R: L(θ) = Σ y(θ)·R. Backward run with dy = R gives dL/dθ
// analytically; central differences (L(θ+h) - L(θ-h)) / 2h give it
// numerically. With h = 1e-6 in double, truncation error is O(h²·L''') and
// rounding O(ε·|L|/h) ~ 1e-10·|L|, so 1e-6 relative agreement is a real check.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.hpp"

namespace moelab::test {

struct GradCheckOptions {
  double step = 1e-6;
  double abs_tol = 1e-7;   // for gradients near zero
  double rel_tol = 1e-5;   // |fd - an| <= abs_tol + rel_tol * max(|fd|, |an|)
  int64_t max_coords = 24; // coordinates checked per tensor (spread over the tensor)
};

// Checks analytic[i] against central differences of `loss` w.r.t. values[i]
// for a deterministic sample of coordinates. `values` is perturbed in place
// and restored.
inline ::testing::AssertionResult grad_check(const std::string& name, double* values, const double* analytic,
                                             int64_t count, const std::function<double()>& loss,
                                             GradCheckOptions options = {}) {
  std::ostringstream failures;
  int64_t failing = 0, checked = 0;
  double max_err = 0;
  const int64_t stride = count <= options.max_coords ? 1 : count / options.max_coords;
  for (int64_t i = (count > options.max_coords ? stride / 2 : 0); i < count && checked < options.max_coords;
       i += stride, ++checked) {
    const double saved = values[i];
    values[i] = saved + options.step;
    const double lp = loss();
    values[i] = saved - options.step;
    const double lm = loss();
    values[i] = saved;
    const double fd = (lp - lm) / (2 * options.step);
    const double err = std::fabs(fd - analytic[i]);
    const double bound = options.abs_tol + options.rel_tol * std::max(std::fabs(fd), std::fabs(analytic[i]));
    max_err = std::max(max_err, err);
    if (!(err <= bound)) {
      if (failing < 5) failures << "\n    [" << i << "] analytic " << analytic[i] << " finite-diff " << fd;
      ++failing;
    }
  }
  if (failing == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << name << ": " << failing << "/" << checked
                                       << " coordinates disagree (max abs err " << max_err << "):"
                                       << failures.str();
}

inline ::testing::AssertionResult grad_check(const std::string& name, std::vector<double>& values,
                                             const std::vector<double>& analytic,
                                             const std::function<double()>& loss, GradCheckOptions options = {}) {
  if (values.size() != analytic.size())
    return ::testing::AssertionFailure() << name << ": " << values.size() << " values, " << analytic.size()
                                         << " gradients";
  return grad_check(name, values.data(), analytic.data(), static_cast<int64_t>(values.size()), loss, options);
}

inline std::vector<double> random_vector(int64_t n, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = scale * rng.normal();
  return v;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace moelab::test
