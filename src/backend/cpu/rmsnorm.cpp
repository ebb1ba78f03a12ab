#include "backend/cpu/rmsnorm.hpp"

#include <cmath>
#include <vector>

#include "kernels/shared/rmsnorm.hpp"

namespace moelab::cpu {

template <typename T>
void rmsnorm_forward(T* y, T* inv_rms, const T* x, const T* w, int64_t rows, int64_t dim, double eps) {
#pragma omp parallel for schedule(static) if (rows * dim > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * dim;
    T* yr = y + r * dim;
    T sum_squares = 0;
    for (int64_t i = 0; i < dim; ++i) sum_squares += xr[i] * xr[i];
    T inv;
    if constexpr (std::is_same_v<T, float>)
      inv = shared::rmsnorm_inv_rms(sum_squares, static_cast<int>(dim), static_cast<float>(eps));
    else
      inv = T(1) / std::sqrt(sum_squares / static_cast<T>(dim) + static_cast<T>(eps));
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv * w[i];
    if (inv_rms) inv_rms[r] = inv;
  }
}

template <typename T>
void rmsnorm_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, const T* inv_rms, int64_t rows,
                      int64_t dim) {
  // dx rows are independent; dw is a reduction over rows, kept serial per
  // thread-private buffer so the sum order is fixed (deterministic).
#pragma omp parallel for schedule(static) if (rows * dim > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * dim;
    const T* dyr = dy + r * dim;
    T* dxr = dx + r * dim;
    const T inv = inv_rms[r];
    T dot = 0;
    for (int64_t i = 0; i < dim; ++i) dot += w[i] * dyr[i] * xr[i];
    const T c = dot * inv * inv * inv / static_cast<T>(dim);
    for (int64_t i = 0; i < dim; ++i) dxr[i] = inv * w[i] * dyr[i] - xr[i] * c;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * dim;
    const T* dyr = dy + r * dim;
    const T inv = inv_rms[r];
    for (int64_t i = 0; i < dim; ++i) dw[i] += dyr[i] * xr[i] * inv;
  }
}

template void rmsnorm_forward<float>(float*, float*, const float*, const float*, int64_t, int64_t, double);
template void rmsnorm_forward<double>(double*, double*, const double*, const double*, int64_t, int64_t, double);
template void rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*, const float*, int64_t,
                                      int64_t);
template void rmsnorm_backward<double>(double*, double*, const double*, const double*, const double*, const double*,
                                       int64_t, int64_t);

}  // namespace moelab::cpu
