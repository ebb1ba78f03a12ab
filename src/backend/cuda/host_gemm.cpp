#include "backend/cuda/host_gemm.hpp"

#include <mutex>

#include "backend/cuda/device_array.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

void host_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc, cpu::GemmPrecision precision) {
  MOE_CHECK(precision != cpu::GemmPrecision::fp8) << "host_gemm: fp8 GEMMs run through src/numerics";
  if (m == 0 || n == 0) return;
  if (k == 0) {  // no products: C = beta * C, on the host
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  // One set of device buffers for the process, grown as needed; one caller at a time.
  static std::mutex mutex;
  static DeviceArray<float> da, db, dc;
  std::lock_guard<std::mutex> lock(mutex);
  const int64_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
  const int64_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
  const float* pa = da.upload_rows(a, a_rows, a_cols, lda);
  const float* pb = db.upload_rows(b, b_rows, b_cols, ldb);
  float* pc = beta != 0.0f ? dc.upload_rows(c, m, n, ldc) : dc.reserve(m * n);
  gemm_f32(trans_a, trans_b, m, n, k, alpha, pa, a_cols, pb, b_cols, beta,
           pc, n, precision == cpu::GemmPrecision::bf16, nullptr);
  dc.download_rows(c, m, n, ldc);
}

}  // namespace moelab::cuda
