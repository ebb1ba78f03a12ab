// The routed experts of a MoE layer on the GPU: the RoutedExperts that
// `moelab forward --device cuda` and `moelab train --device cuda` plug into
// ModelContext::make_experts. The same ops in the same order as
// LocalExperts (grouped_mlp_forward/backward), so results agree to FP32
// GEMM tolerance:
//   forward   the CPU's permutation index (cpu::make_permute_index), rows
//             gathered on the device (permute_rows), per expert gate and up
//             GEMMs through cuBLAS into one [R, 2I] gate|up buffer, SwiGLU,
//             the down GEMM, the weighted unpermute (unpermute_rows)
//   backward  unpermute_backward (dyp, d_topk_weight), per expert
//             dh = dyp W_down, swiglu_backward in place, dxp = dg W_gate +
//             du W_up, the weight gradients dW = dY^T X (one GEMM each) added
//             into the host Param::grad, dx by the unweighted unpermute
// GEMMs are FP32 (no TF32) or BF16 inputs with FP32 accumulation (the CPU's
// bf16 mode); fp8 is refused. Expert weights are copied to the device once
// per object: the model asks for a new object every forward, so each forward
// multiplies by the current (just-updated) weights. Activations stay on the
// device between forward and backward; x, dy go up and y, dx, d_topk_weight
// and the weight gradients come down. Everything else of the layer
// (attention, router, norms, shared experts) stays on the CPU.
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
  // After forward: dx, d_topk_weight (=); expert weight grads (+=, host).
  void backward(Tensor<float>& dx, Tensor<float>& d_topk_weight, const Tensor<float>& dy) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The factory for ModelContext<float>::make_experts.
ExpertsFactory<float> cuda_experts_factory();

}  // namespace moelab::cuda
