// RoPE frequencies with YaRN scaling, single source for the CPU backend and
// the CUDA kernels. Exactly the Hugging Face DeepSeek-V3 code
// (DeepseekV3YarnRotaryEmbedding, yarn_find_correction_range,
// yarn_linear_ramp_mask, yarn_get_mscale; reference/deepseek-v3.md §2.2):
//
//   freq_extra[i] = base^(-2i/dim)          freq_inter[i] = freq_extra[i] / factor
//   corr_dim(n)   = dim * ln(orig_max_pos / (n * 2π)) / (2 ln base)
//   low  = max(floor(corr_dim(beta_fast)), 0)   high = min(ceil(corr_dim(beta_slow)), dim - 1)
//   ramp[i] = clamp((i - low) / (high - low), 0, 1)      (high += 0.001 when equal)
//   inv_freq[i] = freq_inter[i] * ramp[i] + freq_extra[i] * (1 - ramp[i])
//   mscale(s, m) = 0.1 m ln s + 1 (1 when s <= 1)
//   cos/sin are multiplied by mscale(factor, mscale) / mscale(factor, mscale_all_dim),
//   the softmax scale by mscale(factor, mscale_all_dim)^2.
//
// For DeepSeek-V3 (dim 64, base 1e4, orig 4096, beta 32/1): low 10, high 23.
// Rotation is of adjacent pairs (x[2i], x[2i+1]) by position * inv_freq[i].
#pragma once

#include <math.h>

#include "kernels/shared/host_device.hpp"

namespace moelab::shared {

MOE_HOST_DEVICE double yarn_correction_dim(double num_rotations, int dim, double base, double original_max_pos) {
  return (dim * log(original_max_pos / (num_rotations * 2.0 * M_PI))) / (2.0 * log(base));
}

MOE_HOST_DEVICE double yarn_low(double beta_fast, int dim, double base, double original_max_pos) {
  const double low = floor(yarn_correction_dim(beta_fast, dim, base, original_max_pos));
  return low > 0 ? low : 0;
}

MOE_HOST_DEVICE double yarn_high(double beta_slow, int dim, double base, double original_max_pos) {
  const double high = ceil(yarn_correction_dim(beta_slow, dim, base, original_max_pos));
  return high < dim - 1 ? high : dim - 1;
}

MOE_HOST_DEVICE double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * log(scale) + 1.0;
}

// Inverse frequency of rotation pair i (0 <= i < dim/2). Without YaRN pass
// factor = 1 (the ramp then has no effect).
MOE_HOST_DEVICE double rope_inv_freq(int i, int dim, double base, double factor, double low, double high) {
  const double freq_extra = 1.0 / pow(base, (2.0 * i) / dim);
  const double freq_inter = freq_extra / factor;
  if (high == low) high += 0.001;
  double ramp = (i - low) / (high - low);
  ramp = ramp < 0 ? 0 : (ramp > 1 ? 1 : ramp);
  return freq_inter * ramp + freq_extra * (1.0 - ramp);
}

// Rotates one adjacent pair by the angle whose (mscale-scaled) cosine and
// sine are c and s; the backward pass passes -s.
template <typename T>
MOE_HOST_DEVICE void rope_rotate_pair(T* x0, T* x1, T c, T s) {
  const T a = *x0, b = *x1;
  *x0 = a * c - b * s;
  *x1 = a * s + b * c;
}

}  // namespace moelab::shared
