#include "backend/cpu/topk.hpp"

#include "core/error.hpp"

namespace moelab::cpu {

template <typename T>
void topk_route(int32_t* topk_idx, T* topk_weight, const T* scores, const T* bias, int64_t tokens,
                const shared::RouteParams& p) {
  MOE_CHECK(p.top_k <= p.num_experts && p.n_group > 0 && p.num_experts % p.n_group == 0 &&
            p.topk_group <= p.n_group && p.top_k <= p.topk_group * (p.num_experts / p.n_group))
      << "topk_route: top_k " << p.top_k << " of " << p.num_experts << " experts in " << p.topk_group << "/"
      << p.n_group << " groups is not a valid routing";
#pragma omp parallel if (tokens >= 256)
  {
    std::vector<T> choice(p.num_experts), group_score(p.n_group);
    std::vector<int> idx(p.top_k);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      shared::route_token(idx.data(), topk_weight + t * p.top_k, choice.data(), group_score.data(),
                          scores + t * p.num_experts, bias, p);
      for (int j = 0; j < p.top_k; ++j) topk_idx[t * p.top_k + j] = idx[j];
    }
  }
}

std::vector<int64_t> expert_counts(const int32_t* topk_idx, int64_t tokens, int64_t top_k, int64_t num_experts) {
  std::vector<int64_t> counts(num_experts, 0);
  for (int64_t i = 0; i < tokens * top_k; ++i) ++counts[topk_idx[i]];
  return counts;
}

template void topk_route<float>(int32_t*, float*, const float*, const float*, int64_t, const shared::RouteParams&);
template void topk_route<double>(int32_t*, double*, const double*, const double*, int64_t,
                                 const shared::RouteParams&);

}  // namespace moelab::cpu
