#include "model/experts.hpp"

#include "backend/cpu/grouped_gemm.hpp"
#include "backend/cpu/swiglu.hpp"
#include "model/linear.hpp"

namespace moelab {

namespace {

template <typename T>
struct ExpertPointers {
  std::vector<const T*> gate, up, down;
  std::vector<T*> gate_grad, up_grad, down_grad;
  explicit ExpertPointers(const std::vector<MlpParams<T>>& experts) {
    for (const auto& e : experts) {
      gate.push_back(e.gate_proj->value.ptr());
      up.push_back(e.up_proj->value.ptr());
      down.push_back(e.down_proj->value.ptr());
      gate_grad.push_back(e.gate_proj->grad.ptr());
      up_grad.push_back(e.up_proj->grad.ptr());
      down_grad.push_back(e.down_proj->grad.ptr());
    }
  }
};

}  // namespace

template <typename T>
void grouped_mlp_forward(Tensor<T>& yp, GroupedMlpSaved<T>& s, const std::vector<MlpParams<T>>& experts,
                         const std::vector<int64_t>& offsets, GemmPrecision precision) {
  const int64_t E = static_cast<int64_t>(experts.size());
  MOE_CHECK(E > 0 && static_cast<int64_t>(offsets.size()) == E + 1)
      << "grouped_mlp: " << offsets.size() << " offsets for " << E << " experts";
  const int64_t H = experts[0].hidden(), I = experts[0].inner(), R = offsets[E];
  MOE_CHECK(s.xp.numel() == R * H) << "grouped_mlp: " << shape_str(s.xp.shape) << " rows for " << R << " x " << H;
  const ExpertPointers<T> w(experts);
  prepare(s.gu, {R, 2 * I});
  prepare(s.h, {R, I});
  prepare(yp, {R, H});
  if (precision == GemmPrecision::fp8) {  // each expert's GEMMs through the FP8 linear (per-expert scales)
    for (int64_t e = 0; e < E; ++e) {
      const int64_t r0 = offsets[e], rows = offsets[e + 1] - r0;
      if (rows == 0) continue;
      linear_forward(s.gu.ptr() + r0 * 2 * I, 2 * I, s.xp.ptr() + r0 * H, H, rows, experts[e].gate_proj->value,
                     precision);
      linear_forward(s.gu.ptr() + r0 * 2 * I + I, 2 * I, s.xp.ptr() + r0 * H, H, rows, experts[e].up_proj->value,
                     precision);
    }
    cpu::swiglu_forward(s.h.ptr(), s.gu.ptr(), s.gu.ptr() + I, R, I, 2 * I);
    for (int64_t e = 0; e < E; ++e) {
      const int64_t r0 = offsets[e], rows = offsets[e + 1] - r0;
      if (rows > 0)
        linear_forward(yp.ptr() + r0 * H, H, s.h.ptr() + r0 * I, I, rows, experts[e].down_proj->value, precision);
    }
    return;
  }
  cpu::grouped_gemm(true, offsets.data(), E, I, H, s.xp.ptr(), H, w.gate.data(), T(0), s.gu.ptr(), 2 * I, precision);
  cpu::grouped_gemm(true, offsets.data(), E, I, H, s.xp.ptr(), H, w.up.data(), T(0), s.gu.ptr() + I, 2 * I,
                    precision);
  cpu::swiglu_forward(s.h.ptr(), s.gu.ptr(), s.gu.ptr() + I, R, I, 2 * I);
  cpu::grouped_gemm(true, offsets.data(), E, H, I, s.h.ptr(), I, w.down.data(), T(0), yp.ptr(), H, precision);
}

template <typename T>
void grouped_mlp_backward(Tensor<T>& dxp, GroupedMlpSaved<T>& s, const std::vector<MlpParams<T>>& experts,
                          const std::vector<int64_t>& offsets, const Tensor<T>& dyp, GemmPrecision precision) {
  const int64_t E = static_cast<int64_t>(experts.size());
  const int64_t H = experts[0].hidden(), I = experts[0].inner(), R = offsets[E];
  const ExpertPointers<T> w(experts);
  Tensor<T>& dh = s.dh;
  prepare(dh, {R, I});
  if (precision == GemmPrecision::fp8) {  // per expert: Dgrad and Wgrad of the FP8 linear
    prepare(dxp, {R, H});
    for (int64_t e = 0; e < E; ++e) {
      const int64_t r0 = offsets[e], rows = offsets[e + 1] - r0;
      if (rows > 0)
        linear_backward(dh.ptr() + r0 * I, I, T(0), experts[e].down_proj->grad, dyp.ptr() + r0 * H, H,
                        s.h.ptr() + r0 * I, I, rows, experts[e].down_proj->value, precision);
    }
    cpu::swiglu_backward(s.gu.ptr(), s.gu.ptr() + I, dh.ptr(), s.gu.ptr(), s.gu.ptr() + I, R, I, 2 * I);
    for (int64_t e = 0; e < E; ++e) {
      const int64_t r0 = offsets[e], rows = offsets[e + 1] - r0;
      T* dx_e = dxp.ptr() + r0 * H;
      if (rows == 0) continue;
      linear_backward(dx_e, H, T(0), experts[e].gate_proj->grad, s.gu.ptr() + r0 * 2 * I, 2 * I, s.xp.ptr() + r0 * H,
                      H, rows, experts[e].gate_proj->value, precision);
      linear_backward(dx_e, H, T(1), experts[e].up_proj->grad, s.gu.ptr() + r0 * 2 * I + I, 2 * I,
                      s.xp.ptr() + r0 * H, H, rows, experts[e].up_proj->value, precision);
    }
    return;
  }
  // dh = dyp · W_down ; W_down.grad += dyp^T h
  cpu::grouped_gemm(false, offsets.data(), E, I, H, dyp.ptr(), H, w.down.data(), T(0), dh.ptr(), I, precision);
  cpu::grouped_gemm_wgrad(offsets.data(), E, H, I, dyp.ptr(), H, s.h.ptr(), I, w.down_grad.data(), precision);
  cpu::swiglu_backward(s.gu.ptr(), s.gu.ptr() + I, dh.ptr(), s.gu.ptr(), s.gu.ptr() + I, R, I, 2 * I);
  prepare(dxp, {R, H});
  // dxp = dg · W_gate + du · W_up ; weight grads
  cpu::grouped_gemm(false, offsets.data(), E, H, I, s.gu.ptr(), 2 * I, w.gate.data(), T(0), dxp.ptr(), H, precision);
  cpu::grouped_gemm(false, offsets.data(), E, H, I, s.gu.ptr() + I, 2 * I, w.up.data(), T(1), dxp.ptr(), H,
                    precision);
  cpu::grouped_gemm_wgrad(offsets.data(), E, I, H, s.gu.ptr(), 2 * I, s.xp.ptr(), H, w.gate_grad.data(), precision);
  cpu::grouped_gemm_wgrad(offsets.data(), E, I, H, s.gu.ptr() + I, 2 * I, s.xp.ptr(), H, w.up_grad.data(),
                          precision);
}

template <typename T>
void LocalExperts<T>::forward(Tensor<T>& y, const Tensor<T>& x, const Tensor<int32_t>& topk_idx,
                              const Tensor<T>& topk_weight) {
  const int64_t E = static_cast<int64_t>(experts_.size()), H = x.dim(-1), tokens = x.numel() / H;
  const int64_t K = topk_idx.numel() / tokens;
  cpu::make_permute_index(index_, topk_idx.ptr(), tokens, K, E);
  prepare(saved_.xp, {index_.rows(), H});
  cpu::permute_rows(saved_.xp.ptr(), x.ptr(), index_, H);
  grouped_mlp_forward(yp_, saved_, experts_, index_.expert_offsets, precision_);
  prepare(y, {tokens, H});
  cpu::unpermute_rows(y.ptr(), yp_.ptr(), topk_weight.ptr(), index_, H);
  topk_weight_ = topk_weight;
}

template <typename T>
void LocalExperts<T>::backward(Tensor<T>& dx, Tensor<T>& d_topk_weight, const Tensor<T>& dy) {
  const int64_t H = dy.dim(-1), tokens = index_.tokens, K = index_.top_k;
  Tensor<T>&dyp = dyp_, &dxp = dxp_;
  prepare(dyp, {index_.rows(), H});
  prepare(d_topk_weight, {tokens, K});
  cpu::unpermute_backward(dyp.ptr(), d_topk_weight.ptr(), dy.ptr(), yp_.ptr(), topk_weight_.ptr(), index_, H);
  grouped_mlp_backward(dxp, saved_, experts_, index_.expert_offsets, dyp, precision_);
  prepare(dx, {tokens, H});
  cpu::unpermute_rows<T>(dx.ptr(), dxp.ptr(), nullptr, index_, H);
}

#define MOELAB_EXPERTS_INSTANTIATE(T)                                                                            \
  template void grouped_mlp_forward<T>(Tensor<T>&, GroupedMlpSaved<T>&, const std::vector<MlpParams<T>>&,        \
                                       const std::vector<int64_t>&, GemmPrecision);                              \
  template void grouped_mlp_backward<T>(Tensor<T>&, GroupedMlpSaved<T>&, const std::vector<MlpParams<T>>&,       \
                                        const std::vector<int64_t>&, const Tensor<T>&, GemmPrecision);           \
  template class LocalExperts<T>;
MOELAB_EXPERTS_INSTANTIATE(float)
MOELAB_EXPERTS_INSTANTIATE(double)

}  // namespace moelab
