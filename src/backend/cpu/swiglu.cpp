#include "backend/cpu/swiglu.hpp"

#include <cmath>

#include "kernels/shared/swiglu.hpp"

namespace moelab::cpu {

template <typename T>
void swiglu_forward(T* h, const T* g, const T* u, int64_t rows, int64_t n, int64_t ld_in) {
#pragma omp parallel for schedule(static) if (rows * n > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const T* gr = g + r * ld_in;
    const T* ur = u + r * ld_in;
    T* hr = h + r * n;
    for (int64_t i = 0; i < n; ++i) hr[i] = shared::swiglu_value(gr[i], ur[i]);
  }
}

template <typename T>
void swiglu_backward(T* dg, T* du, const T* dh, const T* g, const T* u, int64_t rows, int64_t n, int64_t ld_in) {
#pragma omp parallel for schedule(static) if (rows * n > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const T* gr = g + r * ld_in;
    const T* ur = u + r * ld_in;
    const T* dhr = dh + r * n;
    T* dgr = dg + r * ld_in;
    T* dur = du + r * ld_in;
    for (int64_t i = 0; i < n; ++i) shared::swiglu_grad(&dgr[i], &dur[i], dhr[i], gr[i], ur[i]);
  }
}

template void swiglu_forward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t);
template void swiglu_forward<double>(double*, const double*, const double*, int64_t, int64_t, int64_t);
template void swiglu_backward<float>(float*, float*, const float*, const float*, const float*, int64_t, int64_t,
                                     int64_t);
template void swiglu_backward<double>(double*, double*, const double*, const double*, const double*, int64_t, int64_t,
                                      int64_t);

}  // namespace moelab::cpu
