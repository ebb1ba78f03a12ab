#include "model/experts.hpp"

#include "backend/cpu/swiglu.hpp"

namespace moelab {

// NOTE: one linear_forward/linear_backward per expert (each one BLAS call,
// as cpu::grouped_gemm does) so that every GEMM of the model, experts
// included, goes through linear's precision dispatch (fp32 / bf16 / fp8).
template <typename T>
void grouped_mlp_forward(Tensor<T>& yp, GroupedMlpSaved<T>& s, const std::vector<MlpParams<T>>& experts,
                         const std::vector<int64_t>& offsets, GemmPrecision precision) {
  const int64_t E = static_cast<int64_t>(experts.size());
  MOE_CHECK(E > 0 && static_cast<int64_t>(offsets.size()) == E + 1)
      << "grouped_mlp: " << offsets.size() << " offsets for " << E << " experts";
  const int64_t H = experts[0].hidden(), I = experts[0].inner(), R = offsets[E];
  MOE_CHECK(s.xp.numel() == R * H) << "grouped_mlp: " << shape_str(s.xp.shape) << " rows for " << R << " x " << H;
  prepare(s.gu, {R, 2 * I});
  prepare(s.h, {R, I});
  prepare(yp, {R, H});
  for (int64_t e = 0; e < E; ++e) {
    const int64_t m = offsets[e + 1] - offsets[e], o = offsets[e];
    if (m == 0) continue;
    linear_forward(s.gu.ptr() + o * 2 * I, 2 * I, s.xp.ptr() + o * H, H, m, experts[e].gate_proj->value, precision);
    linear_forward(s.gu.ptr() + o * 2 * I + I, 2 * I, s.xp.ptr() + o * H, H, m, experts[e].up_proj->value, precision);
  }
  cpu::swiglu_forward(s.h.ptr(), s.gu.ptr(), s.gu.ptr() + I, R, I, 2 * I);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t m = offsets[e + 1] - offsets[e], o = offsets[e];
    if (m == 0) continue;
    linear_forward(yp.ptr() + o * H, H, s.h.ptr() + o * I, I, m, experts[e].down_proj->value, precision);
  }
}

template <typename T>
void grouped_mlp_backward(Tensor<T>& dxp, GroupedMlpSaved<T>& s, const std::vector<MlpParams<T>>& experts,
                          const std::vector<int64_t>& offsets, const Tensor<T>& dyp, GemmPrecision precision) {
  const int64_t E = static_cast<int64_t>(experts.size());
  const int64_t H = experts[0].hidden(), I = experts[0].inner(), R = offsets[E];
  Tensor<T>& dh = s.dh;
  prepare(dh, {R, I});
  // dh = dyp · W_down ; W_down.grad += dyp^T h
  for (int64_t e = 0; e < E; ++e) {
    const int64_t m = offsets[e + 1] - offsets[e], o = offsets[e];
    if (m == 0) continue;
    const MlpParams<T>& x = experts[e];
    linear_backward(dh.ptr() + o * I, I, T(0), x.down_proj->grad, dyp.ptr() + o * H, H, s.h.ptr() + o * I, I, m,
                    x.down_proj->value, precision);
  }
  // gu <- d(gu) in place
  cpu::swiglu_backward(s.gu.ptr(), s.gu.ptr() + I, dh.ptr(), s.gu.ptr(), s.gu.ptr() + I, R, I, 2 * I);
  prepare(dxp, {R, H});
  // dxp = dg · W_gate + du · W_up ; weight grads +=
  for (int64_t e = 0; e < E; ++e) {
    const int64_t m = offsets[e + 1] - offsets[e], o = offsets[e];
    if (m == 0) continue;
    const MlpParams<T>& x = experts[e];
    linear_backward(dxp.ptr() + o * H, H, T(0), x.gate_proj->grad, s.gu.ptr() + o * 2 * I, 2 * I, s.xp.ptr() + o * H,
                    H, m, x.gate_proj->value, precision);
    linear_backward(dxp.ptr() + o * H, H, T(1), x.up_proj->grad, s.gu.ptr() + o * 2 * I + I, 2 * I,
                    s.xp.ptr() + o * H, H, m, x.up_proj->value, precision);
  }
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
