// Error of the emulated FP8 GEMM against the exact product of the same
// dequantized inputs, as a function of K, for several accumulator settings:
// the experiment behind DeepSeek-V3 §3.3.2 ("K = 4096: maximum relative error
// nearly 2% with Tensor-Core-only accumulation"; promotion every N_C = 128).
//
// For each K and trial: A [M, K] and W [N, K] drawn from the distribution,
// quantized to E4M3 (per tensor, or 1x128 / 128x128 with quant = block),
// y* = dequant(A) · dequant(W)ᵀ in float64, then every (acc_bits, promote)
// setting is run on the same quantized inputs. Figures are averaged over
// trials (max_rel_worst is the worst trial's max_rel).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "numerics/fp8_gemm.hpp"

namespace moelab::numerics {

enum class InputDist { normal, uniform01 };  // N(0, 1) | U[0, 1)
std::string input_dist_name(InputDist d);
InputDist parse_input_dist(const std::string& name);

enum class GemmQuant { tensor, block };  // block: A 1x128 tiles, W 128x128 blocks
std::string gemm_quant_name(GemmQuant q);
GemmQuant parse_gemm_quant(const std::string& name);

// Quantize A [M, K] and W [N, K] as the GEMM recipe says.
QuantizedTensor quantize_gemm_a(const float* a, int64_t m, int64_t k, GemmQuant quant);
QuantizedTensor quantize_gemm_w(const float* w, int64_t n, int64_t k, GemmQuant quant);

struct ErrCurveOptions {
  std::vector<int64_t> k_values{256, 1024, 4096, 16384};
  std::vector<int> acc_bits{13, 14, kAccFp32};
  std::vector<int> promote{0, 128};
  InputDist dist = InputDist::normal;
  GemmQuant quant = GemmQuant::tensor;
  int trials = 4;
  int64_t m = 64, n = 64;
  uint64_t seed = 0;

  void validate() const;  // throws naming the option
};

struct ErrCurveRow {
  int64_t k = 0;
  int acc_bits = 0;
  int promote = 0;
  GemmErrors mean;            // averaged over trials
  double max_rel_worst = 0;   // worst trial's max_rel
};

// One row per (k, acc_bits, promote), in that nesting order.
std::vector<ErrCurveRow> fp8_errcurve(const ErrCurveOptions& options);

// The table as text: "k acc_bits promote | normwise max/rms mean_rel max_rel".
std::string format_errcurve_table(const std::vector<ErrCurveRow>& rows);

}  // namespace moelab::numerics
