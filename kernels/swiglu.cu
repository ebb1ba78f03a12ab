// SwiGLU forward and backward on the GPU, one thread per element, through
// the single-source element functions of kernels/shared/swiglu.hpp (the CPU
// backend calls the same ones). g and u may be interleaved in one buffer
// (row stride ld_in), as the fused [gate | up] GEMM output is.
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "kernels/shared/swiglu.hpp"

namespace moelab::cuda {

namespace {

__global__ void swiglu_forward_kernel(float* h, const float* g, const float* u, int64_t rows, int64_t n,
                                      int64_t ld_in) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * n) return;
  const int64_t r = i / n, c = i % n;
  h[i] = shared::swiglu_value(g[r * ld_in + c], u[r * ld_in + c]);
}

__global__ void swiglu_backward_kernel(float* dg, float* du, const float* dh, const float* g, const float* u,
                                       int64_t rows, int64_t n, int64_t ld_in) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * n) return;
  const int64_t r = i / n, c = i % n, at = r * ld_in + c;
  shared::swiglu_grad(&dg[at], &du[at], dh[i], g[at], u[at]);
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + 255) / 256); }

}  // namespace

void swiglu_forward(float* h, const float* g, const float* u, int64_t rows, int64_t n, int64_t ld_in,
                    cudaStream_t stream) {
  if (rows * n == 0) return;
  swiglu_forward_kernel<<<blocks_for(rows * n), 256, 0, stream>>>(h, g, u, rows, n, ld_in);
  MOE_CUDA_CHECK(cudaGetLastError());
}

void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t rows, int64_t n,
                     int64_t ld_in, cudaStream_t stream) {
  if (rows * n == 0) return;
  swiglu_backward_kernel<<<blocks_for(rows * n), 256, 0, stream>>>(dg, du, dh, g, u, rows, n, ld_in);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
