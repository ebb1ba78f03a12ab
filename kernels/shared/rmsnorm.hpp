// RMSNorm of one row, single source for the CPU backend and kernels/rmsnorm.cu:
//   y[i] = x[i] * rsqrt(mean(x^2) + eps) * w[i]
// Accumulation in FP32 in index order on the CPU; the GPU kernel reduces in a
// different order, so the two agree to FP32 tolerance, not bit for bit.
#pragma once

#include <cmath>

#include "kernels/shared/host_device.hpp"

namespace moelab::shared {

// 1 / sqrt(mean(x^2) + eps) from a sum of squares over n elements.
MOE_HOST_DEVICE float rmsnorm_inv_rms(float sum_squares, int n, float eps) {
  return 1.0f / sqrtf(sum_squares / static_cast<float>(n) + eps);
}

MOE_HOST_DEVICE void rmsnorm_row(float* y, const float* x, const float* weight, int n, float eps) {
  float sum_squares = 0.0f;
  for (int i = 0; i < n; ++i) sum_squares += x[i] * x[i];
  const float inv_rms = rmsnorm_inv_rms(sum_squares, n, eps);
  for (int i = 0; i < n; ++i) y[i] = x[i] * inv_rms * weight[i];
}

}  // namespace moelab::shared
