// RMSNorm over the last dimension (DeepSeek-V3: eps 1e-6, no bias):
//   y = x * r * w,   r = 1 / sqrt(mean(x^2) + eps)   per row
// Backward (gradient rule: dx =, dw +=):
//   dx_i = r * w_i dy_i - x_i * r^3 / n * sum_j w_j dy_j x_j
//   dw_i += sum_rows dy_i * x_i * r
// The float forward is the arithmetic of kernels/shared/rmsnorm.hpp (rmsnorm_row).
#pragma once

#include <cstdint>

namespace moelab::cpu {

// y, x [rows, dim]; w [dim]; inv_rms [rows] saved for backward (may be null).
template <typename T>
void rmsnorm_forward(T* y, T* inv_rms, const T* x, const T* w, int64_t rows, int64_t dim, double eps);

// dx [rows, dim] (=), dw [dim] (+=), from dy, x, w and the saved inv_rms.
template <typename T>
void rmsnorm_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, const T* inv_rms, int64_t rows,
                      int64_t dim);

inline double rmsnorm_flops(int64_t rows, int64_t dim) { return 4.0 * rows * dim; }
inline double rmsnorm_bytes(int64_t rows, int64_t dim, int elem_bytes) {
  return static_cast<double>(elem_bytes) * (2.0 * rows * dim + dim);
}
inline double rmsnorm_backward_flops(int64_t rows, int64_t dim) { return 9.0 * rows * dim; }
inline double rmsnorm_backward_bytes(int64_t rows, int64_t dim, int elem_bytes) {
  return static_cast<double>(elem_bytes) * (3.0 * rows * dim + 2.0 * dim);
}

}  // namespace moelab::cpu
