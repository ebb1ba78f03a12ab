// Grouped GEMM over experts: the permuted rows of expert e (rows
// offsets[e] .. offsets[e+1]) multiply that expert's own weight, one BLAS
// call per non-empty expert (OpenBLAS threads inside each call).
//
//   forward / data grad:  C_e [M_e, N] = A_e [M_e, K] · op(B_e) + beta C_e
//        op(B_e) = B_e^T for B_e [N, K] (trans_b, nn.Linear order) or B_e [K, N]
//   weight grad:          D_e [N, K] += G_e^T [N, M_e] · A_e [M_e, K]
#pragma once

#include <cstdint>

#include "backend/cpu/gemm.hpp"

namespace moelab::cpu {

template <typename T>
void grouped_gemm(bool trans_b, const int64_t* offsets, int64_t groups, int64_t n, int64_t k, const T* a,
                  int64_t lda, const T* const* b, T beta, T* c, int64_t ldc,
                  GemmPrecision precision = GemmPrecision::fp32);

template <typename T>
void grouped_gemm_wgrad(const int64_t* offsets, int64_t groups, int64_t n, int64_t k, const T* g, int64_t ldg,
                        const T* a, int64_t lda, T* const* d, GemmPrecision precision = GemmPrecision::fp32);

inline double grouped_gemm_flops(int64_t total_rows, int64_t n, int64_t k) { return 2.0 * total_rows * n * k; }
inline double grouped_gemm_bytes(int64_t total_rows, int64_t groups, int64_t n, int64_t k, int elem_bytes) {
  return static_cast<double>(elem_bytes) * (total_rows * (n + k) + groups * n * k);
}

}  // namespace moelab::cpu
