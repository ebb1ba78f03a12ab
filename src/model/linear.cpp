#include "model/linear.hpp"

#include <algorithm>
#include <atomic>
#include <type_traits>

#include "numerics/fp8_linear.hpp"

namespace moelab {

namespace {

// The fp8 branch: DeepSeek-V3's fine-grained FP8 linear (Fprop, Dgrad and
// Wgrad in FP8, §3.3, Figure 6) from src/numerics/fp8_linear.hpp, with the
// process-wide numerics.* options (acc_bits, promote, dgrad_blockwise).
// Float only: the double instantiation exists for gradient checks in fp32.
template <typename T>
constexpr bool kHasFp8 = std::is_same_v<T, float>;

template <typename T>
WeightGradStore<T>*& active_store() {
  thread_local WeightGradStore<T>* store = nullptr;
  return store;
}

std::atomic<LinearGemm>& installed_gemm() {
  static std::atomic<LinearGemm> gemm{nullptr};
  return gemm;
}

// cpu::gemm, or for float the installed device GEMM.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc, GemmPrecision precision) {
  if constexpr (std::is_same_v<T, float>) {
    if (LinearGemm device = installed_gemm().load(std::memory_order_relaxed)) {
      device(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, precision);
      return;
    }
  }
  cpu::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, precision);
}

[[noreturn]] void fp8_needs_float(const char* which) {
  MOE_FAIL() << "linear " << which << ": fp8 precision runs in float (double is for fp32 gradient checks)";
}

}  // namespace

template <typename T>
void linear_forward(T* y, int64_t ldy, const T* x, int64_t ldx, int64_t rows, const Tensor<T>& w,
                    GemmPrecision precision, T beta) {
  MOE_CHECK(w.rank() == 2) << "linear: weight must be 2-D, got " << shape_str(w.shape);
  const int64_t n = w.dim(0), k = w.dim(1);
  if (precision == GemmPrecision::fp8) {
    if constexpr (kHasFp8<T>)
      numerics::fp8_linear_forward(y, ldy, x, ldx, rows, w.ptr(), n, k, numerics::fp8_linear_options(), beta);
    else
      fp8_needs_float("forward");
    return;
  }
  gemm(false, true, rows, n, k, T(1), x, ldx, w.ptr(), k, beta, y, ldy, precision);
}

template <typename T>
void linear_backward(T* dx, int64_t lddx, T beta_dx, Tensor<T>& dw, const T* dy, int64_t lddy, const T* x,
                     int64_t ldx, int64_t rows, const Tensor<T>& w, GemmPrecision precision) {
  const int64_t n = w.dim(0), k = w.dim(1);
  if (precision == GemmPrecision::fp8) {
    if constexpr (kHasFp8<T>)
      numerics::fp8_linear_backward(dx, lddx, beta_dx, dw.ptr(), dy, lddy, x, ldx, rows, w.ptr(), n, k,
                                    numerics::fp8_linear_options());
    else
      fp8_needs_float("backward");
    return;
  }
  if (dx) gemm(false, false, rows, k, n, T(1), dy, lddy, w.ptr(), k, beta_dx, dx, lddx, precision);
  if (WeightGradStore<T>* store = active_store<T>()) {
    store->record(dw, dy, lddy, x, ldx, rows, n, k, precision);
    return;
  }
  gemm(true, false, n, k, rows, T(1), dy, lddy, x, ldx, T(1), dw.ptr(), k, precision);
}

template <typename T>
void WeightGradStore<T>::record(Tensor<T>& dw, const T* dy, int64_t lddy, const T* x, int64_t ldx, int64_t rows,
                                int64_t n, int64_t k, GemmPrecision precision) {
  Item it{&dw, std::vector<T>(static_cast<size_t>(rows * n)), std::vector<T>(static_cast<size_t>(rows * k)), rows, n, k,
          precision};
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(dy + r * lddy, n, it.dy.begin() + r * n);
    std::copy_n(x + r * ldx, k, it.x.begin() + r * k);
  }
  items_.push_back(std::move(it));
}

template <typename T>
void WeightGradStore<T>::flush() {
  for (Item& it : items_)
    gemm(true, false, it.n, it.k, it.rows, T(1), it.dy.data(), it.n, it.x.data(), it.k, T(1), it.dw->ptr(), it.k,
              it.precision);
  items_.clear();
}

LinearGemmScope::LinearGemmScope(LinearGemm gemm) : previous_(installed_gemm().exchange(gemm)) {}
LinearGemmScope::~LinearGemmScope() { installed_gemm().store(previous_); }

template <typename T>
DeferWeightGrads<T>::DeferWeightGrads(WeightGradStore<T>& store) : previous_(active_store<T>()) {
  active_store<T>() = &store;
}

template <typename T>
DeferWeightGrads<T>::~DeferWeightGrads() {
  active_store<T>() = previous_;
}

template <typename T>
void linear_forward(Tensor<T>& y, const Tensor<T>& x, const Param<T>& w, GemmPrecision precision) {
  const int64_t k = w.value.dim(1), rows = x.numel() / k;
  MOE_CHECK(x.numel() == rows * k) << w.name << ": input " << shape_str(x.shape) << " does not end in " << k;
  prepare(y, {rows, w.value.dim(0)});
  linear_forward(y.ptr(), w.value.dim(0), x.ptr(), k, rows, w.value, precision);
}

template <typename T>
void linear_backward(Tensor<T>* dx, Param<T>& w, const Tensor<T>& dy, const Tensor<T>& x, GemmPrecision precision,
                     bool accumulate_dx) {
  const int64_t n = w.value.dim(0), k = w.value.dim(1), rows = x.numel() / k;
  MOE_CHECK(dy.numel() == rows * n) << w.name << ": gradient " << shape_str(dy.shape) << " for " << rows
                                    << " rows of " << n;
  if (dx && !accumulate_dx) prepare(*dx, {rows, k});
  linear_backward(dx ? dx->ptr() : nullptr, k, accumulate_dx ? T(1) : T(0), w.grad, dy.ptr(), n, x.ptr(), k, rows,
                  w.value, precision);
}

#define MOELAB_LINEAR_INSTANTIATE(T)                                                                        \
  template void linear_forward<T>(T*, int64_t, const T*, int64_t, int64_t, const Tensor<T>&, GemmPrecision, T); \
  template void linear_backward<T>(T*, int64_t, T, Tensor<T>&, const T*, int64_t, const T*, int64_t, int64_t,   \
                                   const Tensor<T>&, GemmPrecision);                                        \
  template void linear_forward<T>(Tensor<T>&, const Tensor<T>&, const Param<T>&, GemmPrecision);             \
  template void linear_backward<T>(Tensor<T>*, Param<T>&, const Tensor<T>&, const Tensor<T>&, GemmPrecision, bool);
MOELAB_LINEAR_INSTANTIATE(float)
MOELAB_LINEAR_INSTANTIATE(double)
template class WeightGradStore<float>;
template class WeightGradStore<double>;
template class DeferWeightGrads<float>;
template class DeferWeightGrads<double>;

}  // namespace moelab
