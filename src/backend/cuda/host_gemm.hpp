// cpu::gemm's contract run on the GPU: host operands are copied to the
// device (packed), multiplied through cuBLAS (kernels' gemm_f32: FP32
// without TF32, or BF16 inputs with FP32 accumulation) and C copied back.
// `moelab train --device cuda` installs it as the model's LinearGemm, so
// every dense linear (attention projections, dense and shared-expert MLPs,
// LM head, MTP projection) multiplies on the GPU. The copies cost PCIe
// time on every call: this places the arithmetic on the GPU, it does not
// keep activations there.
#pragma once

#include <cstdint>

#include "backend/cpu/gemm.hpp"

namespace moelab::cuda {

// Same arguments as cpu::gemm (float); fp8 is refused (the fp8 linear runs
// through src/numerics on the CPU).
void host_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc, cpu::GemmPrecision precision);

}  // namespace moelab::cuda
