#include "backend/cpu/gemm.hpp"

#include <cblas.h>

#include <chrono>
#include <vector>

#include "core/bf16.hpp"
#include "core/error.hpp"

namespace moelab::cpu {

namespace {

std::vector<float> rounded_to_bf16(const float* x, int64_t rows, int64_t cols, int64_t ld) {
  std::vector<float> out(static_cast<size_t>(rows * ld));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * ld + c] = round_to_bf16(x[r * ld + c]);
  return out;
}

GemmRecorder* g_recorder = nullptr;

// Times one call into the recorder when one is installed.
class RecordScope {
 public:
  RecordScope(bool ta, bool tb, int64_t m, int64_t n, int64_t k)
      : active_(g_recorder != nullptr), call_{ta, tb, m, n, k, 0.0} {
    if (active_) start_ = std::chrono::steady_clock::now();
  }
  ~RecordScope() {
    if (!active_) return;
    call_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    g_recorder->calls.push_back(call_);
  }

 private:
  bool active_;
  GemmCall call_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

void set_gemm_recorder(GemmRecorder* recorder) { g_recorder = recorder; }

double GemmRecorder::flops() const {
  double f = 0;
  for (const auto& c : calls) f += gemm_flops({c.m, c.n, c.k});
  return f;
}

double GemmRecorder::seconds() const {
  double s = 0;
  for (const auto& c : calls) s += c.seconds;
  return s;
}

const char* gemm_precision_name(GemmPrecision p) {
  switch (p) {
    case GemmPrecision::fp32: return "fp32";
    case GemmPrecision::bf16: return "bf16";
    case GemmPrecision::fp8: return "fp8";
  }
  return "?";
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc, GemmPrecision precision) {
  MOE_CHECK(m >= 0 && n >= 0 && k >= 0) << "gemm: negative size m=" << m << " n=" << n << " k=" << k;
  MOE_CHECK(precision != GemmPrecision::fp8)
      << "gemm: fp8 GEMMs are emulated by src/numerics (fp8_gemm), not by the backend's sgemm";
  if (m == 0 || n == 0) return;
  if (precision == GemmPrecision::bf16) {
    // BF16 inputs, FP32 accumulation: round copies of A and B, then sgemm.
    auto a16 = rounded_to_bf16(a, trans_a ? k : m, trans_a ? m : k, lda);
    auto b16 = rounded_to_bf16(b, trans_b ? n : k, trans_b ? k : n, ldb);
    gemm(trans_a, trans_b, m, n, k, alpha, a16.data(), lda, b16.data(), ldb, beta, c, ldc, GemmPrecision::fp32);
    return;
  }
  RecordScope record(trans_a, trans_b, m, n, k);  // the sgemm itself (once per bf16 call too)
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
              alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc, GemmPrecision precision) {
  MOE_CHECK(precision == GemmPrecision::fp32) << "gemm: double precision supports only the fp32 (exact) mode";
  MOE_CHECK(m >= 0 && n >= 0 && k >= 0) << "gemm: negative size m=" << m << " n=" << n << " k=" << k;
  if (m == 0 || n == 0) return;
  RecordScope record(trans_a, trans_b, m, n, k);
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
              alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace moelab::cpu
