// Launchers of moelab's CUDA kernels, one line per op; outputs first, then
// inputs, then sizes, then the stream. All pointers are device pointers.
// Every op has a CPU twin (the CPU backend, sharing kernels/shared/) and a
// test comparing the two wherever a GPU is present.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/shared/fp8.hpp"
#include "kernels/shared/route.hpp"

namespace moelab::cuda {

// y [rows, n] = RMSNorm(x [rows, n]) * weight [n]; one block per row.
void rmsnorm_forward(float* y, const float* x, const float* weight, int64_t rows, int n, float eps,
                     cudaStream_t stream);

// codes [rows, cols] and scales [ceil(rows/tile_rows), ceil(cols/tile_cols)]
// = FP8 quantization of x [rows, cols] in tiles of tile_rows x tile_cols
// (1x128, 128x1, 128x128; partial at the edges). One block per tile.
void fp8_quantize(uint8_t* codes, float* scales, const float* x, int64_t rows, int64_t cols, int tile_rows,
                  int tile_cols, const shared::Fp8Format& format, bool ue8m0, cudaStream_t stream);

// y [m, n] = x [m, k] * w [n, k]^T through cuBLAS: FP32 (no TF32), or inputs
// rounded to BF16 with FP32 accumulation (the CPU backend's bf16 mode).
void gemm_xwt_f32(float* y, const float* x, const float* w, int64_t m, int64_t n, int64_t k, cudaStream_t stream);
void gemm_xwt_bf16(float* y, const float* x, const float* w, int64_t m, int64_t n, int64_t k, cudaStream_t stream);
// The general form, twin of cpu::gemm (row-major, leading dimensions):
// C [m, n] (ldc) = alpha * op(A) op(B) + beta * C, op(A) [m, k] (A is [k, m]
// when trans_a), op(B) [k, n] (B is [n, k] when trans_b); FP32 (no TF32), or
// A and B rounded to BF16 with FP32 accumulation when bf16.
void gemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, float* c, int64_t ldc, bool bf16, cudaStream_t stream);

// y [m, n] = emulated FP8 A [m, k] · W [n, k]^T (codes) with the tensor-core
// accumulator of fraction_bits F, promoted to FP32 every `interval` K
// elements (a multiple of 32; k rounded up for "never"): a_scale [m,
// intervals] and w_scale [n, intervals] are each operand's scale over each
// interval. Bit-identical to numerics::fp8_gemm.
void fp8_gemm_emulated(float* y, const uint8_t* a_codes, const float* a_scale, const uint8_t* w_codes,
                       const float* w_scale, int64_t m, int64_t n, int64_t k, const shared::Fp8Format& a_format,
                       const shared::Fp8Format& w_format, int fraction_bits, int64_t interval, cudaStream_t stream);
// codes [n] = fp8(x [n]), RNE satfinite: E4M3, or E5M2 when e5m2.
void fp8_convert(uint8_t* codes, const float* x, int64_t n, bool e5m2, cudaStream_t stream);

// h [rows, n] = silu(g) * u; g, u [rows, n] with row stride ld_in (may be
// the two halves of one [rows, 2n] buffer). Backward: dg, du (=, stride
// ld_in) from dh [rows, n]; du may alias u.
void swiglu_forward(float* h, const float* g, const float* u, int64_t rows, int64_t n, int64_t ld_in,
                    cudaStream_t stream);
void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t rows, int64_t n,
                     int64_t ld_in, cudaStream_t stream);

// In place: rotates the 2*pairs values at x + t*token_stride + h*head_stride
// for each token t and head h by positions[t]'s row of the cos/sin tables
// [max_positions, pairs] (mscale folded in); inverse rotates back (backward).
void rope_apply(float* x, int64_t tokens, int64_t token_stride, int64_t heads, int64_t head_stride,
                const int32_t* positions, const float* cos_table, const float* sin_table, int64_t pairs, bool inverse,
                cudaStream_t stream);

// topk_idx [tokens, k], topk_weight [tokens, k] from scores [tokens, E] and
// bias [E] (or null): shared::route_token per token.
constexpr int kMaxRoutedExperts = 512;
void route_tokens(int32_t* topk_idx, float* topk_weight, const float* scores, const float* bias, int64_t tokens,
                  const shared::RouteParams& params, cudaStream_t stream);

// xp [rows, n] = x [token_of[r], n]; y [tokens, n] = sum_k weight[t, k] *
// yp [row_of[t*k + k], n] (weight null: 1), the CPU's permutation index.
void permute_rows(float* xp, const float* x, const int32_t* token_of, int64_t rows, int64_t n, cudaStream_t stream);
void unpermute_rows(float* y, const float* yp, const float* weight, const int32_t* row_of, int64_t tokens,
                    int64_t top_k, int64_t n, cudaStream_t stream);
// Backward of the weighted unpermute (twin of cpu::unpermute_backward):
// dyp [rows, n] = weight[t, k] * dy[t] at row row_of[t*K + k]; d_weight
// [tokens, top_k] = dy[t] . yp[row] (=). One block per (t, k).
void unpermute_backward(float* dyp, float* d_weight, const float* dy, const float* yp, const float* weight,
                        const int32_t* row_of, int64_t tokens, int64_t top_k, int64_t n, cudaStream_t stream);

// logits [tokens, vocab] -> softmax in place; nll [tokens] (double): -log p
// of the target, 0 for targets < 0 (not counted). Backward: probs ->
// scale * (p - onehot(target)), rows with target < 0 zeroed.
void cross_entropy_forward(float* logits_to_probs, double* nll, const int32_t* targets, int64_t tokens, int64_t vocab,
                           cudaStream_t stream);
void cross_entropy_backward(float* probs_to_dlogits, const int32_t* targets, int64_t tokens, int64_t vocab,
                            float scale, cudaStream_t stream);

// Causal attention forward, training form: q, k [B*S, heads, dqk], v, o
// [B*S, heads, dv], probs [B, heads, S, S] (softmax, zero above the diagonal).
void attention_forward(float* o, float* probs, const float* q, const float* k, const float* v, int64_t batch,
                       int64_t seq_len, int64_t heads, int64_t dqk, int64_t dv, float scale, cudaStream_t stream);

// y [segments, n] (=): row s is 0 + rows[slots[j]] for j in [offsets[s],
// offsets[s+1]) added in that order with no contraction (the expert-parallel
// combine's fixed summation order; offsets has segments + 1 entries).
void segment_sum_rows(float* y, const float* rows, const int32_t* slots, const int64_t* offsets, int64_t segments,
                      int64_t n, cudaStream_t stream);

// RMSNorm backward (twin of cpu::rmsnorm_backward): dx [rows, n] (=), dw [n]
// (+=) from dy, x, weight and the forward's inv_rms [rows].
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* weight,
                      const float* inv_rms, int64_t rows, int64_t n, cudaStream_t stream);

// Causal attention backward (twin of cpu::attention_backward), layouts as
// attention_forward; dq, dk, dv (=); ds_workspace [B, heads, S, S] scratch.
void attention_backward(float* dq, float* dk, float* dv, float* ds_workspace, const float* d_o, const float* q,
                        const float* k, const float* v, const float* o, const float* probs, int64_t batch,
                        int64_t seq_len, int64_t heads, int64_t dqk, int64_t dv_dim, float scale,
                        cudaStream_t stream);

// Grouped expert GEMM (twin of cpu::grouped_gemm with trans_b, beta 0):
// c [offsets[e]..offsets[e+1], n] = a [same rows, k] * w[e] [n, k]^T for each
// group e. offsets [groups + 1] and the array w of device pointers are HOST
// memory; FP32, or BF16 inputs with FP32 accumulation when bf16.
void grouped_gemm_xwt(float* c, const float* a, const float* const* w, const int64_t* offsets, int64_t groups,
                      int64_t n, int64_t k, bool bf16, cudaStream_t stream);

// FP8 E4M3 GEMM with DeepSeek-V3 block scaling through cuBLASLt (CUDA
// 12.9+, Hopper): y [m, n] (FP32) = A [m, k] W [n, k]^T with a_scales
// [m, ceil(k/128)] (1x128 tiles) and w_scales [ceil(n/128), ceil(k/128)]
// (128x128 blocks), both row-major as numerics::quantize makes them; m, n, k
// multiples of 16. _supported(): toolkit and current GPU can run it.
bool fp8_gemm_blockscaled_supported();
void fp8_gemm_blockscaled(float* y, const uint8_t* a_codes, const float* a_scales, const uint8_t* w_codes,
                          const float* w_scales, int64_t m, int64_t n, int64_t k, cudaStream_t stream);

}  // namespace moelab::cuda
