#include "model/router.hpp"

#include <cmath>

#include "backend/cpu/topk.hpp"

namespace moelab {

shared::RouteParams route_params(const ModelConfig& c) {
  shared::RouteParams p;
  p.num_experts = static_cast<int>(c.n_routed_experts);
  p.n_group = static_cast<int>(c.n_group);
  p.topk_group = static_cast<int>(c.topk_group);
  p.top_k = static_cast<int>(c.num_experts_per_tok);
  p.method = c.topk_method == "noaux_tc"               ? shared::kRouteNoauxTc
             : c.topk_method == "group_limited_greedy" ? shared::kRouteGroupLimitedGreedy
                                                       : shared::kRouteGreedy;
  p.norm_topk_prob = c.norm_topk_prob;
  p.routed_scaling_factor = c.routed_scaling_factor;
  return p;
}

template <typename T>
void router_forward(RouterSaved<T>& s, const RouterParams<T>& p, const Tensor<T>& x, const ModelConfig& c) {
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok, H = x.dim(-1), tokens = x.numel() / H;
  prepare(s.scores, {tokens, E});
  linear_forward(s.scores.ptr(), E, x.ptr(), H, tokens, p.weight->value, GemmPrecision::fp32);
  T* sc = s.scores.ptr();
  if (c.scoring_func == "sigmoid") {
    for (int64_t i = 0; i < tokens * E; ++i) sc[i] = T(1) / (T(1) + std::exp(-sc[i]));
  } else {
    for (int64_t t = 0; t < tokens; ++t) {
      T* row = sc + t * E;
      T m = row[0], sum = 0;
      for (int64_t e = 1; e < E; ++e) m = std::max(m, row[e]);
      for (int64_t e = 0; e < E; ++e) sum += (row[e] = std::exp(row[e] - m));
      for (int64_t e = 0; e < E; ++e) row[e] /= sum;
    }
  }
  prepare(s.topk_idx, {tokens, K});
  prepare(s.topk_weight, {tokens, K});
  const T* bias = p.bias != nullptr && c.topk_method == "noaux_tc" ? p.bias->value.ptr() : nullptr;
  cpu::topk_route(s.topk_idx.ptr(), s.topk_weight.ptr(), sc, bias, tokens, route_params(c));
  s.expert_load = cpu::expert_counts(s.topk_idx.ptr(), tokens, K, E);
}

template <typename T>
void router_backward(Tensor<T>& dx, const RouterSaved<T>& s, const RouterParams<T>& p, const Tensor<T>& x,
                     const Tensor<T>& d_topk_weight, const Tensor<T>* d_scores, const ModelConfig& c) {
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok, H = x.dim(-1), tokens = x.numel() / H;
  const T scale = static_cast<T>(c.routed_scaling_factor);
  const bool normalized = c.norm_topk_prob && K > 1;
  // d scores [T, E]
  Tensor<T> dlogits({tokens, E});
  if (d_scores != nullptr) {
    MOE_CHECK(d_scores->numel() == tokens * E) << "router: d_scores " << shape_str(d_scores->shape) << " for "
                                               << tokens << " tokens x " << E << " experts";
    dlogits.data = d_scores->data;
  }
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t* idx = s.topk_idx.ptr() + t * K;
    const T* dw = d_topk_weight.ptr() + t * K;
    const T* sc = s.scores.ptr() + t * E;
    T* ds = dlogits.ptr() + t * E;
    if (!normalized) {
      for (int64_t k = 0; k < K; ++k) ds[idx[k]] += scale * dw[k];
      continue;
    }
    // w_k = scale * s_k / (S + 1e-20), S = sum_j s_j:  ds_k = scale (dw_k / D - sum_j dw_j s_j / D^2)
    T sum = 0, dot = 0;
    for (int64_t k = 0; k < K; ++k) sum += sc[idx[k]], dot += dw[k] * sc[idx[k]];
    const T denom = sum + T(1e-20);
    for (int64_t k = 0; k < K; ++k) ds[idx[k]] += scale * (dw[k] / denom - dot / (denom * denom));
  }
  // through the score function
  for (int64_t t = 0; t < tokens; ++t) {
    const T* sc = s.scores.ptr() + t * E;
    T* d = dlogits.ptr() + t * E;
    if (c.scoring_func == "sigmoid") {
      for (int64_t e = 0; e < E; ++e) d[e] *= sc[e] * (T(1) - sc[e]);
    } else {
      T dot = 0;
      for (int64_t e = 0; e < E; ++e) dot += d[e] * sc[e];
      for (int64_t e = 0; e < E; ++e) d[e] = sc[e] * (d[e] - dot);
    }
  }
  linear_backward(dx.ptr(), H, T(1), p.weight->grad, dlogits.ptr(), E, x.ptr(), H, tokens, p.weight->value,
                  GemmPrecision::fp32);
}

template void router_forward<float>(RouterSaved<float>&, const RouterParams<float>&, const Tensor<float>&,
                                    const ModelConfig&);
template void router_forward<double>(RouterSaved<double>&, const RouterParams<double>&, const Tensor<double>&,
                                     const ModelConfig&);
template void router_backward<float>(Tensor<float>&, const RouterSaved<float>&, const RouterParams<float>&,
                                     const Tensor<float>&, const Tensor<float>&, const Tensor<float>*,
                                     const ModelConfig&);
template void router_backward<double>(Tensor<double>&, const RouterSaved<double>&, const RouterParams<double>&,
                                      const Tensor<double>&, const Tensor<double>&, const Tensor<double>*,
                                      const ModelConfig&);

}  // namespace moelab
