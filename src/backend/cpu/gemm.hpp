// GEMM of the CPU backend: row-major C = alpha * op(A) * op(B) + beta * C over
// OpenBLAS (sgemm / dgemm). Layers use weights in nn.Linear order W [N, K], so
// a linear layer is gemm(no_trans, trans, ...) with B = W.
//
// Precision modes for float: fp32 (plain sgemm) and bf16 (inputs rounded to
// BF16, accumulation in FP32, as a BF16 tensor-core GEMM with FP32 output).
#pragma once

#include <cstdint>
#include <vector>

namespace moelab::cpu {

// fp8: fine-grained FP8 (E4M3, 1x128 / 128x128 scales) through src/numerics;
// the layers' linear dispatches it there, cpu::gemm itself refuses it.
enum class GemmPrecision { fp32, bf16, fp8 };
const char* gemm_precision_name(GemmPrecision p);  // "fp32" | "bf16" | "fp8"

struct GemmShape {
  int64_t m, n, k;
};

// 2*M*N*K multiply-adds counted as two FLOPs each.
inline double gemm_flops(const GemmShape& s) { return 2.0 * s.m * s.n * s.k; }
// Bytes touched once each: A, B read, C written (and read when beta != 0).
inline double gemm_bytes(const GemmShape& s, int elem_bytes, bool reads_c = false) {
  return static_cast<double>(elem_bytes) * (s.m * s.k + s.k * s.n + s.m * s.n * (reads_c ? 2 : 1));
}

// C [M, N] (leading dim ldc) = alpha * op(A) op(B) + beta * C.
// op(A) is [M, K]: A is [M, K] (lda >= K) or, when trans_a, [K, M] (lda >= M).
// op(B) is [K, N]: B is [K, N] (ldb >= N) or, when trans_b, [N, K] (ldb >= K).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          GemmPrecision precision = GemmPrecision::fp32);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc,
          GemmPrecision precision = GemmPrecision::fp32);

// ---- call recording (benchmarks) --------------------------------------------
// While a recorder is installed, every float/double gemm call appends its
// shape and wall time. Benchmarks use it to replay a layer's exact GEMM
// shapes through plain sgemm ("the machine's sgemm on the same shapes") and
// to split a layer's time into GEMM and non-GEMM work. Not thread-safe:
// install it only around single-threaded callers.
struct GemmCall {
  bool trans_a, trans_b;
  int64_t m, n, k;
  double seconds;
};
struct GemmRecorder {
  std::vector<GemmCall> calls;
  double flops() const;
  double seconds() const;
};
void set_gemm_recorder(GemmRecorder* recorder);  // null: stop recording

}  // namespace moelab::cpu
