// RMSNorm backward on the GPU, the twin of cpu::rmsnorm_backward:
//   dx_i = r w_i dy_i - x_i r^3 / n * sum_j w_j dy_j x_j   (one block per row)
//   dw_i += sum_rows dy_i x_i r                           (one thread per column,
//                                                          rows in order: deterministic)
// with r the inverse RMS saved by the forward. FP32; the row reduction order
// differs from the CPU's, so they agree to FP32 tolerance.
#include "kernels/block_reduce.cuh"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void rmsnorm_backward_dx_kernel(float* dx, const float* dy, const float* x, const float* w,
                                           const float* inv_rms, int64_t n) {
  const int64_t row = blockIdx.x;
  const float* xr = x + row * n;
  const float* dyr = dy + row * n;
  float partial = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) partial += w[i] * dyr[i] * xr[i];
  const float dot = block_sum(partial);
  const float r = inv_rms[row];
  const float c = r * r * r / static_cast<float>(n) * dot;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) dx[row * n + i] = r * w[i] * dyr[i] - xr[i] * c;
}

__global__ void rmsnorm_backward_dw_kernel(float* dw, const float* dy, const float* x, const float* inv_rms,
                                           int64_t rows, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float acc = 0.0f;
  for (int64_t r = 0; r < rows; ++r) acc += dy[r * n + i] * x[r * n + i] * inv_rms[r];
  dw[i] += acc;
}

}  // namespace

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* weight,
                      const float* inv_rms, int64_t rows, int64_t n, cudaStream_t stream) {
  if (rows == 0 || n == 0) return;
  rmsnorm_backward_dx_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(dx, dy, x, weight, inv_rms, n);
  MOE_CUDA_CHECK(cudaGetLastError());
  rmsnorm_backward_dw_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(dw, dy, x, inv_rms, rows, n);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
