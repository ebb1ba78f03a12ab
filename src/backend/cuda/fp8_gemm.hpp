// The emulated FP8 GEMM on the GPU (kernels/fp8_gemm.cu) over host tensors:
// the same contract as numerics::fp8_gemm, which it equals bit for bit.
// acc_bits = fp32 is block-wise FP32 arithmetic on the CPU path only.
#pragma once

#include <vector>

#include "numerics/fp8_gemm.hpp"
#include "numerics/quantize.hpp"

namespace moelab::cuda_backend {

std::vector<float> fp8_gemm(const numerics::QuantizedTensor& a, const numerics::QuantizedTensor& w,
                            const numerics::Fp8GemmOptions& options);

}  // namespace moelab::cuda_backend
