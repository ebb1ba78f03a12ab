// Dense GEMMs through cuBLAS, in the CPU backend's convention (row-major,
// layers' weights W [N, K], y = x W^T): FP32 (cublasSgemm, TF32 off) and BF16
// inputs with FP32 accumulation (cublasGemmEx), the twin of the CPU
// backend's bf16 mode, which rounds inputs to bf16 and accumulates in FP32.
// Row-major C = A B^T is column-major C^T = B A^T: cuBLAS sees the operands
// swapped.
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>

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

// Row-major C = alpha op(A) op(B) + beta C is column-major C^T = alpha
// op(B)^T op(A)^T + beta C^T: cuBLAS gets (B, A) with the same transposes.
// For bf16 the stored extent of each operand ((rows - 1) * ld + cols values,
// gaps included) is rounded to a BF16 copy with the same leading dimension.
void gemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, float* c, int64_t ldc, bool bf16, cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (!bf16) {
    MOE_CUBLAS_CHECK(cublasSgemm(handle_for(stream), op_b, op_a, static_cast<int>(n), static_cast<int>(m),
                                 static_cast<int>(k), &alpha, b, static_cast<int>(ldb), a, static_cast<int>(lda), &beta,
                                 c, static_cast<int>(ldc)));
    return;
  }
  // Stored extents: A is [m, k] or, transposed, [k, m]; B is [k, n] or [n, k].
  const int64_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
  const int64_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
  const int64_t a_len = a_rows > 0 ? (a_rows - 1) * lda + a_cols : 0;
  const int64_t b_len = b_rows > 0 ? (b_rows - 1) * ldb + b_cols : 0;
  __nv_bfloat16 *ab = nullptr, *bb = nullptr;
  MOE_CUDA_CHECK(cudaMallocAsync(&ab, std::max<int64_t>(1, a_len) * sizeof(__nv_bfloat16), stream));
  MOE_CUDA_CHECK(cudaMallocAsync(&bb, std::max<int64_t>(1, b_len) * sizeof(__nv_bfloat16), stream));
  if (a_len > 0) to_bf16_kernel<<<static_cast<unsigned>((a_len + 255) / 256), 256, 0, stream>>>(ab, a, a_len);
  if (b_len > 0) to_bf16_kernel<<<static_cast<unsigned>((b_len + 255) / 256), 256, 0, stream>>>(bb, b, b_len);
  MOE_CUDA_CHECK(cudaGetLastError());
  MOE_CUBLAS_CHECK(cublasGemmEx(handle_for(stream), op_b, op_a, static_cast<int>(n), static_cast<int>(m),
                                static_cast<int>(k), &alpha, bb, CUDA_R_16BF, static_cast<int>(ldb), ab, CUDA_R_16BF,
                                static_cast<int>(lda), &beta, c, CUDA_R_32F, static_cast<int>(ldc), CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
  MOE_CUDA_CHECK(cudaFreeAsync(ab, stream));
  MOE_CUDA_CHECK(cudaFreeAsync(bb, stream));
}

}  // namespace moelab::cuda
