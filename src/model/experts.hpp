// Routed experts behind one interface, so that parallel/ can substitute
// expert-parallel dispatch/combine for the single-process LocalExperts.
//
//   forward:  y [T, H] = sum_k topk_weight[t, k] * Expert_{topk_idx[t, k]}(x[t])
//             (no capacity limit, no token dropping)
//   backward: dx [T, H] (=), d_topk_weight [T, K] (=), expert weight grads (+=)
//
// The per-expert math is the grouped SwiGLU FFN over permuted rows
// (grouped_mlp_forward/backward): rows of expert e are rows
// offsets[e] .. offsets[e+1] of xp; an expert-parallel implementation calls
// the same functions on the rows it received for its local experts.
#pragma once

#include <memory>
#include <vector>

#include "backend/cpu/permute.hpp"
#include "model/mlp.hpp"

namespace moelab {

template <typename T>
struct RoutedExperts {
  virtual ~RoutedExperts() = default;
  // x [T, H], topk_idx [T, K] (int32), topk_weight [T, K] -> y [T, H] (resized).
  virtual void forward(Tensor<T>& y, const Tensor<T>& x, const Tensor<int32_t>& topk_idx,
                       const Tensor<T>& topk_weight) = 0;
  // dy [T, H] -> dx [T, H], d_topk_weight [T, K] (both resized, =); weight grads +=.
  virtual void backward(Tensor<T>& dx, Tensor<T>& d_topk_weight, const Tensor<T>& dy) = 0;
};

// ---- grouped SwiGLU over permuted rows --------------------------------------

template <typename T>
struct GroupedMlpSaved {
  Tensor<T> xp;  // [R, H] input rows, grouped by expert (filled by the caller)
  Tensor<T> gu;  // [R, 2I] gate | up (their gradients after backward)
  Tensor<T> h;   // [R, I]
  Tensor<T> dh;  // [R, I] backward scratch
};

// yp [R, H] (resized) from saved.xp. experts[e] serves rows offsets[e]..offsets[e+1].
template <typename T>
void grouped_mlp_forward(Tensor<T>& yp, GroupedMlpSaved<T>& saved, const std::vector<MlpParams<T>>& experts,
                         const std::vector<int64_t>& offsets, GemmPrecision precision);

// dxp [R, H] (resized, =) from dyp [R, H]; expert weight grads +=.
template <typename T>
void grouped_mlp_backward(Tensor<T>& dxp, GroupedMlpSaved<T>& saved, const std::vector<MlpParams<T>>& experts,
                          const std::vector<int64_t>& offsets, const Tensor<T>& dyp, GemmPrecision precision);

// FLOPs of the grouped FFN forward over R rows (backward is twice this).
inline double grouped_mlp_flops(int64_t rows, int64_t hidden, int64_t inner) {
  return 2.0 * rows * hidden * inner * 3;
}

// ---- single process: every expert here --------------------------------------

template <typename T>
class LocalExperts : public RoutedExperts<T> {
 public:
  LocalExperts(const std::vector<MlpParams<T>>& experts, GemmPrecision precision)
      : experts_(experts), precision_(precision) {}
  void forward(Tensor<T>& y, const Tensor<T>& x, const Tensor<int32_t>& topk_idx,
               const Tensor<T>& topk_weight) override;
  void backward(Tensor<T>& dx, Tensor<T>& d_topk_weight, const Tensor<T>& dy) override;

  const cpu::PermuteIndex& permute_index() const { return index_; }
  // Reuse this object (and its buffers) for another step.
  void rebind(const std::vector<MlpParams<T>>& experts, GemmPrecision precision) {
    experts_ = experts;
    precision_ = precision;
  }

 private:
  std::vector<MlpParams<T>> experts_;
  GemmPrecision precision_;
  cpu::PermuteIndex index_;
  GroupedMlpSaved<T> saved_;
  Tensor<T> yp_;           // [R, H] expert outputs (needed for d_topk_weight)
  Tensor<T> topk_weight_;  // [T, K]
  Tensor<T> dyp_, dxp_;    // [R, H] backward scratch
};

}  // namespace moelab
