#include "backend/cpu/grouped_gemm.hpp"

namespace moelab::cpu {

template <typename T>
void grouped_gemm(bool trans_b, const int64_t* offsets, int64_t groups, int64_t n, int64_t k, const T* a,
                  int64_t lda, const T* const* b, T beta, T* c, int64_t ldc, GemmPrecision precision) {
  for (int64_t e = 0; e < groups; ++e) {
    const int64_t m = offsets[e + 1] - offsets[e];
    if (m == 0) continue;
    gemm(false, trans_b, m, n, k, T(1), a + offsets[e] * lda, lda, b[e], trans_b ? k : n, beta, c + offsets[e] * ldc,
         ldc, precision);
  }
}

template <typename T>
void grouped_gemm_wgrad(const int64_t* offsets, int64_t groups, int64_t n, int64_t k, const T* g, int64_t ldg,
                        const T* a, int64_t lda, T* const* d, GemmPrecision precision) {
  for (int64_t e = 0; e < groups; ++e) {
    const int64_t m = offsets[e + 1] - offsets[e];
    if (m == 0) continue;
    gemm(true, false, n, k, m, T(1), g + offsets[e] * ldg, ldg, a + offsets[e] * lda, lda, T(1), d[e], k, precision);
  }
}

template void grouped_gemm<float>(bool, const int64_t*, int64_t, int64_t, int64_t, const float*, int64_t,
                                  const float* const*, float, float*, int64_t, GemmPrecision);
template void grouped_gemm<double>(bool, const int64_t*, int64_t, int64_t, int64_t, const double*, int64_t,
                                   const double* const*, double, double*, int64_t, GemmPrecision);
template void grouped_gemm_wgrad<float>(const int64_t*, int64_t, int64_t, int64_t, const float*, int64_t,
                                        const float*, int64_t, float* const*, GemmPrecision);
template void grouped_gemm_wgrad<double>(const int64_t*, int64_t, int64_t, int64_t, const double*, int64_t,
                                         const double*, int64_t, double* const*, GemmPrecision);

}  // namespace moelab::cpu
