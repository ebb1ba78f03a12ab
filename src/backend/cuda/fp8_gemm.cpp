#include "backend/cuda/fp8_gemm.hpp"

#include <algorithm>

#include "backend/cuda/device_array.hpp"
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

}  // namespace

std::vector<float> fp8_gemm(const numerics::QuantizedTensor& a, const numerics::QuantizedTensor& w,
                            const numerics::Fp8GemmOptions& options) {
  numerics::validate_fp8_gemm(a, w, options);
  MOE_CHECK(options.acc_bits != numerics::kAccFp32)
      << "--device cuda: acc-bits fp32 (block-wise FP32) runs on the CPU; the GPU path emulates the tensor core";
  const int64_t m = a.rows, n = w.rows, k = a.cols;
  const int64_t interval = options.promote > 0 ? options.promote : std::max<int64_t>((k + 31) / 32 * 32, 32);
  // Device buffers (freed on every exit, also when a CUDA call throws).
  cuda::DeviceArray<uint8_t> da, dw;
  cuda::DeviceArray<float> dsa, dsw, dy;
  const std::vector<float> sa = interval_scales(a, interval), sw = interval_scales(w, interval);
  da.upload(a.codes.data(), static_cast<int64_t>(a.codes.size()));
  dw.upload(w.codes.data(), static_cast<int64_t>(w.codes.size()));
  dsa.upload(sa.data(), static_cast<int64_t>(sa.size()));
  dsw.upload(sw.data(), static_cast<int64_t>(sw.size()));
  cuda::fp8_gemm_emulated(dy.reserve(m * n), da.get(), dsa.get(), dw.get(), dsw.get(), m, n, k,
                          numerics::fp8_format(a.format), numerics::fp8_format(w.format), options.acc_bits, interval,
                          nullptr);
  std::vector<float> y(m * n);
  dy.download(y.data(), m * n);
  return y;
}

}  // namespace moelab::cuda_backend
