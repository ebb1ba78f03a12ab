// DeepSeek-V3's FP8 linear layer (§3.3, Figure 6): all three GEMMs of a
// bias-free linear y = x · Wᵀ take E4M3 operands with fine-grained online
// scales, and accumulate as fp8_gemm emulates (acc_bits, promote).
//
//   x [R, K] activations, W [N, K] weights (nn.Linear order), dy [R, N]
//
//   Fprop  y  [R, N] = Q1x128(x) · Q128x128(W)ᵀ                 reduction over K
//   Dgrad  dx [R, K] = Q1x128(dy) · Q128x128(W)                  reduction over N
//                      (Q128x128(dy) with dgrad_blockwise: Appendix B.2)
//   Wgrad  dW [N, K] += Q128x1(dy)ᵀ · Q128x1(x)                  reduction over R
//
// Every operand's scales must be constant along the GEMM's reduction axis
// within a 128-wide group, so the tile shape follows the reduction: per token
// per 128 channels (1x128) where channels are reduced (Fprop x, Dgrad dy), per
// 128 tokens per channel (128x1) where tokens are reduced (Wgrad dy and x),
// 128x128 blocks for W (the same blocks serve W and Wᵀ). This is the paper's
// "1x128 in forward, 128x1 in backward" for activations and their gradients.
// The backward is the straight-through estimator: quantization is treated as
// the identity, and each GEMM is exact up to the accumulator on its quantized
// operands (tests/numerics/test_fp8_linear.cpp checks against float64).
//
// acc_bits = fp32 (the fast path): each operand is fake-quantized (quantized
// and dequantized tile by tile in one pass) and the GEMM is one sgemm, so
// only quantization error remains. Otherwise the operands are quantized to
// codes and scales and the GEMM is the bit-faithful emulation (fp8_gemm).
//
// What stays in higher precision is the caller's choice: DeepSeek-V3 keeps
// the embedding, output head, MoE gate, norms and attention core out of FP8;
// src/model routes only the other linear layers here.
#pragma once

#include <cstdint>
#include <string>

#include "numerics/fp8_gemm.hpp"
#include "numerics/quantize.hpp"

namespace moelab::numerics {

struct Fp8LinearOptions {
  int acc_bits = kAccFp32;       // numerics.acc_bits: tensor-core fraction bits (13 = H800) or kAccFp32
  int promote = 128;             // numerics.promote: N_C; 0 = never (needs ue8m0 scales)
  bool dgrad_blockwise = false;  // numerics.dgrad_blockwise: dy in 128x128 blocks for Dgrad (Appendix B.2)
  bool ue8m0 = false;            // numerics.ue8m0: power-of-two scales
  Fp8Kind format = Fp8Kind::e4m3;  // E4M3 on all tensors, as the paper

  void validate() const;  // throws naming the numerics.* key
};

// The options model/linear.cpp's fp8 branch uses (process-wide: training sets
// them once from its numerics.* keys before the first step).
const Fp8LinearOptions& fp8_linear_options();
void set_fp8_linear_options(const Fp8LinearOptions& options);

// y [rows, N] (leading dim ldy) = beta * y + Fprop(x [rows, K] (ldx), w [N, K]).
void fp8_linear_forward(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t rows, const float* w, int64_t n,
                        int64_t k, const Fp8LinearOptions& options, float beta = 0.0f);

// dx [rows, K] (lddx; null: skipped) = beta_dx * dx + Dgrad(dy, w);
// dw [N, K] += Wgrad(dy [rows, N] (lddy), x [rows, K] (ldx)).
void fp8_linear_backward(float* dx, int64_t lddx, float beta_dx, float* dw, const float* dy, int64_t lddy,
                         const float* x, int64_t ldx, int64_t rows, const float* w, int64_t n, int64_t k,
                         const Fp8LinearOptions& options);

// out [rows, cols] (ldo) = dequantize(quantize(x [rows, cols] (ldx))) in one
// pass, bit for bit what dequantize(quantize(...)) gives; out may equal x.
void fake_quantize(float* out, int64_t ldo, const float* x, int64_t ldx, int64_t rows, int64_t cols,
                   const QuantizeOptions& options);

// Quantized transpose: codes and scales of xᵀ (1x128 <-> 128x1; tensor and
// 128x128 stay), equal to quantizing xᵀ directly.
QuantizedTensor transpose(const QuantizedTensor& q);

}  // namespace moelab::numerics
