// Emulated FP8 GEMM on the GPU, y = A · Wᵀ with Hopper's limited-precision
// accumulation and promotion to FP32 every `interval` K elements: one thread
// per output, K in MMA steps of 32 through the single-source step of
// kernels/shared/fp8_mma_step.hpp, and at each promotion
// out = fma(fp32(sa * sw), D, out) exactly as the CPU emulation
// (src/numerics/fp8_gemm.cpp) does, so the two agree bit for bit. This is the
// numerics study's GEMM (what would Hopper compute?), not a fast FP8 GEMM.
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "kernels/shared/fp8_mma_step.hpp"

namespace moelab::cuda {

namespace {

constexpr int kMmaK = 32;

__global__ void fp8_gemm_emulated_kernel(float* y, const uint8_t* a_codes, const float* a_scale,
                                         const uint8_t* w_codes, const float* w_scale, int64_t m, int64_t n,
                                         int64_t k, shared::Fp8Format fa, shared::Fp8Format fw, int fraction_bits,
                                         int64_t interval, int64_t intervals) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t row = blockIdx.y;
  if (col >= n) return;
  const uint8_t* a = a_codes + row * k;
  const uint8_t* w = w_codes + col * k;
  float out = 0.0f;
  uint8_t step_a[kMmaK], step_w[kMmaK];
  for (int64_t i = 0; i < intervals; ++i) {
    float c = 0.0f;
    const int64_t end = (i + 1) * interval < k ? (i + 1) * interval : k;
    for (int64_t k0 = i * interval; k0 < end; k0 += kMmaK) {
      const int count = static_cast<int>(end - k0 < kMmaK ? end - k0 : kMmaK);
      for (int j = 0; j < count; ++j) step_a[j] = a[k0 + j], step_w[j] = w[k0 + j];
      c = shared::fp8_mma_step(c, step_a, fa, step_w, fw, count, fraction_bits);
    }
    out = fmaf(a_scale[row * intervals + i] * w_scale[col * intervals + i], c, out);
  }
  y[row * n + col] = out;
}

}  // namespace

void fp8_gemm_emulated(float* y, const uint8_t* a_codes, const float* a_scale, const uint8_t* w_codes,
                       const float* w_scale, int64_t m, int64_t n, int64_t k, const shared::Fp8Format& a_format,
                       const shared::Fp8Format& w_format, int fraction_bits, int64_t interval, cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  MOE_CHECK(interval > 0 && interval % kMmaK == 0) << "fp8_gemm_emulated: interval " << interval
                                                   << " is not a positive multiple of " << kMmaK;
  const int64_t intervals = (k + interval - 1) / interval;
  const dim3 grid(static_cast<unsigned>((n + 127) / 128), static_cast<unsigned>(m));
  fp8_gemm_emulated_kernel<<<grid, 128, 0, stream>>>(y, a_codes, a_scale, w_codes, w_scale, m, n, k, a_format,
                                                     w_format, fraction_bits, interval, intervals);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
