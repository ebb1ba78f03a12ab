// Grouped expert GEMM on the GPU, the twin of cpu::grouped_gemm (trans_b,
// beta 0): the permuted rows of expert e (offsets[e] .. offsets[e+1]) times
// that expert's own weight W_e [N, K]^T, one cuBLAS call per non-empty
// expert on the stream (FP32 without TF32, or BF16 inputs with FP32
// accumulation, as gemm_xwt_*).
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

void grouped_gemm_xwt(float* c, const float* a, const float* const* w, const int64_t* offsets, int64_t groups,
                      int64_t n, int64_t k, bool bf16, cudaStream_t stream) {
  for (int64_t e = 0; e < groups; ++e) {
    const int64_t rows = offsets[e + 1] - offsets[e];
    if (rows == 0) continue;
    float* ce = c + offsets[e] * n;
    const float* ae = a + offsets[e] * k;
    if (bf16)
      gemm_xwt_bf16(ce, ae, w[e], rows, n, k, stream);
    else
      gemm_xwt_f32(ce, ae, w[e], rows, n, k, stream);
  }
}

}  // namespace moelab::cuda
