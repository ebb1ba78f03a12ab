// FP8 GEMM with DeepSeek-V3 block scaling through cuBLASLt (CUDA 12.9+ on
// Hopper): activations with one FP32 scale per 1x128 tile
// (CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F), weights with one per 128x128
// block (CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F), FP32 output. The
// twin is numerics::fp8_gemm with an FP32 accumulator promoted every 128
// (tests/kernels/test_fp8_gemm_lt_gpu.cpp).
//
// Row-major y [M, N] = A [M, K] W [N, K]^T is, column-major, y^T = W A^T:
// cuBLASLt's operand A is W (K x N, ld K, transposed: TN is the only FP8
// layout), its B is our A (K x M, ld K). moelab keeps scales row-major
// (a_scales [M, ceil(K/128)], w_scales [ceil(N/128), ceil(K/128)]); cuBLASLt
// wants them with the outer (non-K) index contiguous, so they are transposed
// into a workspace first. That layout is taken from the cuBLAS documentation
// ("scaling factors layout") and is verified only by the GPU test.
#include <cublasLt.h>

#include "kernels/cublas_check.hpp"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

namespace {

// out [cols, rows] = in [rows, cols]^T
__global__ void transpose_kernel(float* out, const float* in, int64_t rows, int64_t cols) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  const int64_t r = i / cols, c = i % cols;
  out[c * rows + r] = in[i];
}

void transpose(float* out, const float* in, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows * cols == 0) return;
  transpose_kernel<<<static_cast<unsigned>((rows * cols + 255) / 256), 256, 0, stream>>>(out, in, rows, cols);
  MOE_CUDA_CHECK(cudaGetLastError());
}

cublasLtHandle_t lt_handle() {
  static cublasLtHandle_t handle = [] {
    cublasLtHandle_t h;
    MOE_CUBLAS_CHECK(cublasLtCreate(&h));
    return h;
  }();
  return handle;
}

}  // namespace

bool fp8_gemm_blockscaled_supported() {
#if CUBLAS_VERSION >= 120900
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
  return major == 9;
#else
  return false;
#endif
}

void fp8_gemm_blockscaled(float* y, const uint8_t* a_codes, const float* a_scales, const uint8_t* w_codes,
                          const float* w_scales, int64_t m, int64_t n, int64_t k, cudaStream_t stream) {
  MOE_CHECK(fp8_gemm_blockscaled_supported())
      << "FP8 block-scaled GEMM through cuBLASLt needs CUDA 12.9+ and a Hopper GPU (sm_90); use "
         "fp8_gemm_emulated elsewhere";
  MOE_CHECK(k % 16 == 0 && m % 16 == 0 && n % 16 == 0)
      << "cuBLASLt FP8 needs M, N, K multiples of 16 (got " << m << ", " << n << ", " << k << ")";
#if CUBLAS_VERSION >= 120900
  const int64_t kb = (k + 127) / 128, nb = (n + 127) / 128;
  float *a_sc = nullptr, *w_sc = nullptr;
  void* workspace = nullptr;
  const size_t workspace_bytes = 32u << 20;
  MOE_CUDA_CHECK(cudaMallocAsync(&a_sc, m * kb * sizeof(float), stream));
  MOE_CUDA_CHECK(cudaMallocAsync(&w_sc, nb * kb * sizeof(float), stream));
  MOE_CUDA_CHECK(cudaMallocAsync(&workspace, workspace_bytes, stream));
  transpose(a_sc, a_scales, m, kb, stream);   // [kb, M]: M contiguous
  transpose(w_sc, w_scales, nb, kb, stream);  // [kb, nb]: N blocks contiguous

  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  MOE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  MOE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t)));
  MOE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n)));
  const cublasLtMatmulMatrixScale_t mode_w = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F,
                                    mode_a = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  MOE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode_w, sizeof(mode_w)));
  MOE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode_a, sizeof(mode_a)));
  const float* w_sc_c = w_sc;
  const float* a_sc_c = a_sc;
  MOE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_sc_c, sizeof(w_sc_c)));
  MOE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &a_sc_c, sizeof(a_sc_c)));
  MOE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, k, n, k));
  MOE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, k, m, k));
  MOE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, n, m, n));
  MOE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  MOE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &workspace_bytes, sizeof(workspace_bytes)));
  cublasLtMatmulHeuristicResult_t heuristic = {};
  int found = 0;
  MOE_CUBLAS_CHECK(
      cublasLtMatmulAlgoGetHeuristic(lt_handle(), desc, la, lb, lc, lc, pref, 1, &heuristic, &found));
  MOE_CHECK(found > 0) << "cuBLASLt has no FP8 block-scaled algorithm for M " << m << ", N " << n << ", K " << k
                       << " with FP32 output";
  const float alpha = 1.0f, beta = 0.0f;
  MOE_CUBLAS_CHECK(cublasLtMatmul(lt_handle(), desc, &alpha, w_codes, la, a_codes, lb, &beta, y, lc, y, lc,
                                    &heuristic.algo, workspace, workspace_bytes, stream));
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatmulDescDestroy(desc);
  MOE_CUDA_CHECK(cudaFreeAsync(workspace, stream));
  MOE_CUDA_CHECK(cudaFreeAsync(w_sc, stream));
  MOE_CUDA_CHECK(cudaFreeAsync(a_sc, stream));
#endif
}

}  // namespace moelab::cuda
