// Emulated FP8 GEMM y = A · Wᵀ with Hopper's limited-precision tensor-core
// accumulation and DeepSeek-V3's promotion to FP32 (§3.3.2, §3.5.2;
// shared/reference/fp8-accumulation.md).
//
//   A [M, K] activations, quantized per tensor or in 1x128 tiles
//   W [N, K] weights (nn.Linear order), quantized per tensor, 1x128 or 128x128
//   y [M, N] FP32
//
// K is processed in MMA steps of kMmaK = 32 products. Each step fuses the 32
// exact products with the running tensor-core accumulator C (see
// mma_reference.hpp for the step). Every `promote` K elements (N_C; 0 = never)
// the partial D is folded into an FP32 accumulator, out = fma(fp32(sa*sw), D, out),
// and C restarts at zero. Scales must therefore be constant over each
// promotion interval: with 128-wide FP32 scale blocks, promote divides 128;
// with promote = 0 (or not dividing 128) the operands need per-tensor scales,
// or power-of-two (UE8M0) scales, which are folded exactly into the products'
// exponents inside the emulated tensor core (as Blackwell's block-scaled MMAs
// do), so fine-grained scaling and no promotion can be studied separately.
//
// acc_bits = kAccFp32 replaces the tensor core by FP32 arithmetic: block-wise
// BLAS on dequantized tiles (one sgemm of code * scale), so only quantization
// error remains; promote then has no effect beyond FP32 summation order.
//
// The limited-precision path is vectorised across 16 output columns (GCC
// vector extensions; AVX-512 on the target machine) and parallel over output
// tiles (OpenMP). Its arithmetic, per lane:
//   pass 1  2^E = max(|C|'s power of two, max_i 2^ea_i * 2^eb_i)   (exact float products of powers of two)
//   pass 2  S = sum_i int32(trunc((a_i * b_i) * 2^(F-E))) + int32(trunc(C * 2^(F-E)))
//   D       = double(S) with its low 52-F mantissa bits cleared, times 2^(E-F)
// Every float operation above is exact (8-bit product significands scaled by
// powers of two; |terms| < 2^(F+2); S < 2^31 for F <= 23), so the result is
// bit-identical to the integer reference, which tests/numerics checks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "numerics/quantize.hpp"

namespace moelab::numerics {

constexpr int kMmaK = 32;      // products per wgmma step (FP8 wgmma has k = 32)
constexpr int kAccFp32 = -1;   // acc_bits value meaning an FP32 accumulator
constexpr int kMaxAccBits = 23;

struct Fp8GemmOptions {
  int acc_bits = 13;   // tensor-core accumulator fraction bits (H800/H100: 13), or kAccFp32
  int promote = 128;   // N_C, K elements between promotions to FP32; 0 = never; a multiple of kMmaK
};

std::string acc_bits_name(int acc_bits);       // "13" | "fp32"
int parse_acc_bits(const std::string& text);  // "1".."23" | "fp32"

// Throws, naming the option, when the operands or options do not fit together.
void validate_fp8_gemm(const QuantizedTensor& a, const QuantizedTensor& w, const Fp8GemmOptions& options);

// y [M, N] = emulated A · Wᵀ.
std::vector<float> fp8_gemm(const QuantizedTensor& a, const QuantizedTensor& w, const Fp8GemmOptions& options);

// The same emulation one output at a time through mma_step_reference (slow;
// for tests). acc_bits must not be kAccFp32.
std::vector<float> fp8_gemm_reference(const QuantizedTensor& a, const QuantizedTensor& w,
                                      const Fp8GemmOptions& options);

// Tensor-core accumulation only: c [M, N] <- the chain of MMA steps over all
// K of the unscaled codes, starting from the given c (no scales, no
// promotion). Exposes the vectorised step for exact tests with arbitrary C.
void fp8_mma_accumulate(const QuantizedTensor& a, const QuantizedTensor& w, int acc_bits, float* c);

// y [M, N] = dequant(A) · dequant(W)ᵀ in float64 (dgemm of exactly
// dequantized inputs): the reference the error figures are measured against.
std::vector<double> fp8_gemm_exact(const QuantizedTensor& a, const QuantizedTensor& w);

// Error of y against y_exact, both [count].
struct GemmErrors {
  double normwise = 0;          // ||y - y*||_F / ||y*||_F
  double max_err_over_rms = 0;  // max |y - y*| / rms(y*)
  double mean_rel = 0;          // mean over y* != 0 of |y - y*| / |y*|
  double max_rel = 0;           // max  over y* != 0 of |y - y*| / |y*|
};
GemmErrors gemm_errors(const float* y, const double* y_exact, int64_t count);

// FLOPs of the GEMM (2 M N K) for rate counters.
inline double fp8_gemm_flops(int64_t m, int64_t n, int64_t k) { return 2.0 * m * n * k; }

}  // namespace moelab::numerics
