#include "model/moe.hpp"

namespace moelab {

template <typename T>
void moe_forward(Tensor<T>& y, MoeSaved<T>& s, const MoeParams<T>& p, const Tensor<T>& x, const ModelConfig& c,
                 int64_t layer, const ModelContext<T>& ctx) {
  s.x = x;
  router_forward(s.router, p.gate, x, c);
  // Steady state on one process: keep the LocalExperts (and its buffers) from the last step.
  auto* local = dynamic_cast<LocalExperts<T>*>(s.experts.get());
  if (!ctx.make_experts && local != nullptr)
    local->rebind(p.experts, ctx.precision);
  else
    s.experts = ctx.experts_for(layer, p.experts);
  s.experts->forward(y, x, s.router.topk_idx, s.router.topk_weight);
  if (p.has_shared) {
    Tensor<T>& ys = s.shared_y;
    mlp_forward(ys, s.shared, p.shared, x, ctx.precision);
    for (int64_t i = 0; i < y.numel(); ++i) y[i] += ys[i];
  }
}

template <typename T>
void moe_backward(Tensor<T>& dx, MoeSaved<T>& s, const MoeParams<T>& p, const Tensor<T>& dy, const Tensor<T>* d_scores,
                  const ModelConfig& c, const ModelContext<T>& ctx) {
  MOE_CHECK(s.experts) << "moe_backward before moe_forward";
  Tensor<T>& d_topk_weight = s.d_topk_weight;
  s.experts->backward(dx, d_topk_weight, dy);
  if (p.has_shared) mlp_backward(dx, s.shared, p.shared, dy, ctx.precision, /*accumulate_dx=*/true);
  router_backward(dx, s.router, p.gate, s.x, d_topk_weight, d_scores, c);
}

template void moe_forward<float>(Tensor<float>&, MoeSaved<float>&, const MoeParams<float>&, const Tensor<float>&,
                                 const ModelConfig&, int64_t, const ModelContext<float>&);
template void moe_forward<double>(Tensor<double>&, MoeSaved<double>&, const MoeParams<double>&, const Tensor<double>&,
                                  const ModelConfig&, int64_t, const ModelContext<double>&);
template void moe_backward<float>(Tensor<float>&, MoeSaved<float>&, const MoeParams<float>&, const Tensor<float>&,
                                  const Tensor<float>*, const ModelConfig&, const ModelContext<float>&);
template void moe_backward<double>(Tensor<double>&, MoeSaved<double>&, const MoeParams<double>&,
                                   const Tensor<double>&, const Tensor<double>*, const ModelConfig&,
                                   const ModelContext<double>&);

}  // namespace moelab
