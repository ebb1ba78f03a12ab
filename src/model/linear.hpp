// Linear layer without bias, nn.Linear weight order W [N, K]:
//   forward   y [rows, N] = x [rows, K] · W^T
//   backward  dx [rows, K] = dy · W (= or +=),   dW [N, K] += dy^T · x
// Precision: fp32 (sgemm), bf16 (inputs rounded to BF16, FP32 accumulation)
// and fp8 (DeepSeek-V3 fine-grained FP8: 1x128 activation tiles, 128x128
// weight blocks, all three GEMMs; emulated by src/numerics). double
// (gradient checks) supports fp32 only.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cpu/gemm.hpp"
#include "core/tensor.hpp"
#include "model/param.hpp"

namespace moelab {

using GemmPrecision = cpu::GemmPrecision;

// Pointer form for strided outputs/inputs (a slice of a wider row):
// y [rows, N] (leading dim ldy) = beta * y + x [rows, K] (leading dim ldx) · W^T.
template <typename T>
void linear_forward(T* y, int64_t ldy, const T* x, int64_t ldx, int64_t rows, const Tensor<T>& w,
                    GemmPrecision precision, T beta = T(0));

// dx (may be null: skipped) [rows, K] (ldx) = beta_dx * dx + dy · W;  dW [N, K] += dy^T · x.
template <typename T>
void linear_backward(T* dx, int64_t lddx, T beta_dx, Tensor<T>& dw, const T* dy, int64_t lddy, const T* x,
                     int64_t ldx, int64_t rows, const Tensor<T>& w, GemmPrecision precision);

// Tensor forms: x [rows, K] -> y [rows, N] (y resized).
template <typename T>
void linear_forward(Tensor<T>& y, const Tensor<T>& x, const Param<T>& w, GemmPrecision precision);

// dx (=, resized; or += when accumulate_dx) from dy [rows, N]; w.grad +=.
template <typename T>
void linear_backward(Tensor<T>* dx, Param<T>& w, const Tensor<T>& dy, const Tensor<T>& x, GemmPrecision precision,
                     bool accumulate_dx = false);

// Where the fp32/bf16 GEMMs of every float linear run (forward, dgrad,
// wgrad, deferred wgrads): cpu::gemm, unless a device backend installs its
// own for the process (`moelab train --device cuda` installs
// cuda::host_gemm, which runs them through cuBLAS on host operands). Same
// signature and contract as cpu::gemm. double (gradient checks) and the fp8
// path always stay on the CPU.
using LinearGemm = void (*)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                            int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                            GemmPrecision precision);
// Installs `gemm` (null: cpu::gemm) while alive; restores the previous one on exit.
class LinearGemmScope {
 public:
  explicit LinearGemmScope(LinearGemm gemm);
  ~LinearGemmScope();
  LinearGemmScope(const LinearGemmScope&) = delete;
  LinearGemmScope& operator=(const LinearGemmScope&) = delete;

 private:
  LinearGemm previous_;
};

// Zero-bubble weight-gradient deferral (DualPipe's WeightGradStore): while
// a DeferWeightGrads scope is alive on this thread, every fp32/bf16
// linear_backward computes dx only and records dW += dy^T . x (with copies of
// dy and x) into the store; store.flush() later runs the recorded GEMMs in
// order (the W op of ZB1P/DualPipe). The fp8 path (one fused numerics call)
// is not deferred. The deferred GEMMs are the ones the undeferred backward
// runs; only the order in which contributions add into dW can change.
template <typename T>
class WeightGradStore {
 public:
  void flush();
  size_t pending() const { return items_.size(); }
  void record(Tensor<T>& dw, const T* dy, int64_t lddy, const T* x, int64_t ldx, int64_t rows, int64_t n, int64_t k,
              GemmPrecision precision);

 private:
  struct Item {
    Tensor<T>* dw;
    std::vector<T> dy, x;  // [rows, n], [rows, k] compact
    int64_t rows, n, k;
    GemmPrecision precision;
  };
  std::vector<Item> items_;
};

template <typename T>
class DeferWeightGrads {
 public:
  explicit DeferWeightGrads(WeightGradStore<T>& store);  // nests: restores the outer store on exit
  ~DeferWeightGrads();
  DeferWeightGrads(const DeferWeightGrads&) = delete;
  DeferWeightGrads& operator=(const DeferWeightGrads&) = delete;

 private:
  WeightGradStore<T>* previous_;
};

}  // namespace moelab
