#include "backend/cuda/fp8_gemm.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda_backend {

namespace {

// Each row's scale over each promotion interval (constant within one, which
// validate_fp8_gemm guarantees).
std::vector<float> interval_scales(const numerics::QuantizedTensor& q, int64_t interval) {
  const int64_t intervals = (q.cols + interval - 1) / interval;
  std::vector<float> s(q.rows * intervals);
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t i = 0; i < intervals; ++i) s[r * intervals + i] = q.scale_at(r, std::min(i * interval, q.cols - 1));
  return s;
}

template <typename T>
T* to_device(const std::vector<T>& host) {
  T* p = nullptr;
  MOE_CUDA_CHECK(cudaMalloc(&p, host.size() * sizeof(T) + 1));
  MOE_CUDA_CHECK(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

}  // namespace

std::vector<float> fp8_gemm(const numerics::QuantizedTensor& a, const numerics::QuantizedTensor& w,
                            const numerics::Fp8GemmOptions& options) {
  numerics::validate_fp8_gemm(a, w, options);
  MOE_CHECK(options.acc_bits != numerics::kAccFp32)
      << "--device cuda: acc-bits fp32 (block-wise FP32) runs on the CPU; the GPU path emulates the tensor core";
  const int64_t m = a.rows, n = w.rows, k = a.cols;
  const int64_t interval = options.promote > 0 ? options.promote : std::max<int64_t>((k + 31) / 32 * 32, 32);
  uint8_t* da = to_device(a.codes);
  uint8_t* dw = to_device(w.codes);
  float* dsa = to_device(interval_scales(a, interval));
  float* dsw = to_device(interval_scales(w, interval));
  float* dy = nullptr;
  MOE_CUDA_CHECK(cudaMalloc(&dy, m * n * sizeof(float) + 1));
  cuda::fp8_gemm_emulated(dy, da, dsa, dw, dsw, m, n, k, numerics::fp8_format(a.format),
                          numerics::fp8_format(w.format), options.acc_bits, interval, nullptr);
  std::vector<float> y(m * n);
  MOE_CUDA_CHECK(cudaMemcpy(y.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
  for (void* p : {static_cast<void*>(da), static_cast<void*>(dw), static_cast<void*>(dsa), static_cast<void*>(dsw),
                  static_cast<void*>(dy)})
    cudaFree(p);
  return y;
}

}  // namespace moelab::cuda_backend
