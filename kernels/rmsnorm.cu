// RMSNorm forward on the GPU: one block per row, a block-wide sum of squares,
// then the single-source inverse RMS of kernels/shared/rmsnorm.hpp (the CPU
// backend calls the same function), so CPU and GPU differ only by the order
// of the FP32 reduction.
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "kernels/shared/rmsnorm.hpp"

namespace moelab::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void rmsnorm_forward_kernel(float* y, const float* x, const float* weight, int n, float eps) {
  const float* row_x = x + static_cast<int64_t>(blockIdx.x) * n;
  float* row_y = y + static_cast<int64_t>(blockIdx.x) * n;
  float partial = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) partial += row_x[i] * row_x[i];
  // Warp reduction, then one value per warp through shared memory.
  for (int offset = 16; offset > 0; offset /= 2) partial += __shfl_down_sync(0xffffffffu, partial, offset);
  __shared__ float warp_sums[kThreads / 32];
  __shared__ float inv_rms;
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = partial;
  __syncthreads();
  if (threadIdx.x == 0) {
    float sum_squares = 0.0f;
    for (int w = 0; w < kThreads / 32; ++w) sum_squares += warp_sums[w];
    inv_rms = shared::rmsnorm_inv_rms(sum_squares, n, eps);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) row_y[i] = row_x[i] * inv_rms * weight[i];
}

}  // namespace

void rmsnorm_forward(float* y, const float* x, const float* weight, int64_t rows, int n, float eps,
                     cudaStream_t stream) {
  if (rows == 0) return;
  rmsnorm_forward_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(y, x, weight, n, eps);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
