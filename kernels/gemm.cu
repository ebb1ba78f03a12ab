// Dense GEMMs through cuBLAS, in the CPU backend's convention (row-major,
// layers' weights W [N, K], y = x W^T): FP32 (cublasSgemm, TF32 off) and BF16
// inputs with FP32 accumulation (cublasGemmEx), the twin of the CPU
// backend's bf16 mode, which rounds inputs to bf16 and accumulates in FP32.
// Row-major C = A B^T is column-major C^T = B A^T: cuBLAS sees the operands
// swapped.
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include "kernels/cublas_check.hpp"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

namespace {

cublasHandle_t handle_for(cudaStream_t stream) {
  static cublasHandle_t handle = [] {
    cublasHandle_t h;
    MOE_CUBLAS_CHECK(cublasCreate(&h));
    MOE_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH));  // no TF32: FP32 means FP32
    return h;
  }();
  MOE_CUBLAS_CHECK(cublasSetStream(handle, stream));
  return handle;
}

__global__ void to_bf16_kernel(__nv_bfloat16* out, const float* in, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2bfloat16_rn(in[i]);
}

}  // namespace

void gemm_xwt_f32(float* y, const float* x, const float* w, int64_t m, int64_t n, int64_t k, cudaStream_t stream) {
  const float one = 1.0f, zero = 0.0f;
  MOE_CUBLAS_CHECK(cublasSgemm(handle_for(stream), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                               static_cast<int>(m), static_cast<int>(k), &one, w, static_cast<int>(k), x,
                               static_cast<int>(k), &zero, y, static_cast<int>(n)));
}

void gemm_xwt_bf16(float* y, const float* x, const float* w, int64_t m, int64_t n, int64_t k, cudaStream_t stream) {
  __nv_bfloat16 *xb = nullptr, *wb = nullptr;
  MOE_CUDA_CHECK(cudaMallocAsync(&xb, m * k * sizeof(__nv_bfloat16), stream));
  MOE_CUDA_CHECK(cudaMallocAsync(&wb, n * k * sizeof(__nv_bfloat16), stream));
  to_bf16_kernel<<<static_cast<unsigned>((m * k + 255) / 256), 256, 0, stream>>>(xb, x, m * k);
  to_bf16_kernel<<<static_cast<unsigned>((n * k + 255) / 256), 256, 0, stream>>>(wb, w, n * k);
  MOE_CUDA_CHECK(cudaGetLastError());
  const float one = 1.0f, zero = 0.0f;
  MOE_CUBLAS_CHECK(cublasGemmEx(handle_for(stream), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                                static_cast<int>(m), static_cast<int>(k), &one, wb, CUDA_R_16BF,
                                static_cast<int>(k), xb, CUDA_R_16BF, static_cast<int>(k), &zero, y, CUDA_R_32F,
                                static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  MOE_CUDA_CHECK(cudaFreeAsync(xb, stream));
  MOE_CUDA_CHECK(cudaFreeAsync(wb, stream));
}

}  // namespace moelab::cuda
