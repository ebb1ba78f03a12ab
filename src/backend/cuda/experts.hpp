// The routed experts of a MoE layer on the GPU (forward only): the
// RoutedExperts that `moelab forward --device cuda` plugs into
// ModelContext::make_experts. Per call: the CPU's permutation index
// (cpu::make_permute_index), rows gathered on the device (permute_rows), per
// expert gate/up GEMMs through cuBLAS (gemm_xwt_f32 or _bf16), SwiGLU, the
// down GEMM, and the weighted unpermute (unpermute_rows) - the same ops in
// the same order as LocalExperts, so results agree to FP32 GEMM tolerance.
// Expert weights are copied to the device on first use and kept.
// Everything else of the layer (attention, router, norms) stays on the CPU.
#pragma once

#include <memory>
#include <vector>

#include "model/context.hpp"
#include "model/experts.hpp"

namespace moelab::cuda {

class CudaExperts : public RoutedExperts<float> {
 public:
  CudaExperts(const std::vector<MlpParams<float>>& experts, GemmPrecision precision);
  ~CudaExperts() override;
  void forward(Tensor<float>& y, const Tensor<float>& x, const Tensor<int32_t>& topk_idx,
               const Tensor<float>& topk_weight) override;
  // Throws: training on the GPU is not implemented (forward only).
  void backward(Tensor<float>& dx, Tensor<float>& d_topk_weight, const Tensor<float>& dy) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The factory for ModelContext<float>::make_experts.
ExpertsFactory<float> cuda_experts_factory();

}  // namespace moelab::cuda
