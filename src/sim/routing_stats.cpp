// Node-limited routing traffic statistics; see routing_stats.hpp.
#include "sim/routing_stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace moelab::sim {

RoutingStats node_limited_routing_stats(const ModelConfig& cfg, int64_t ep, int64_t gpus_per_node, uint64_t seed,
                                        int64_t num_tokens) {
  const int64_t E = cfg.n_routed_experts, K = cfg.num_experts_per_tok;
  const int64_t G = std::max<int64_t>(cfg.n_group, 1), M = std::max<int64_t>(cfg.topk_group, 1);
  MOE_CHECK(E > 0 && K > 0 && K <= E) << "routing stats: need routed experts (E=" << E << ", K=" << K << ")";
  MOE_CHECK(ep >= 1 && E % ep == 0) << "experts (" << E << ") not divisible by EP degree (" << ep << ")";
  MOE_CHECK(E % G == 0) << "experts (" << E << ") not divisible by n_group (" << G << ")";
  const int64_t experts_per_rank = E / ep, experts_per_group = E / G;
  const int64_t ep_nodes = (ep + gpus_per_node - 1) / gpus_per_node;
  const int64_t per_group_top = std::max<int64_t>(K / M, 1);

  RoutingStats st;
  st.ep = ep;
  st.ep_nodes = ep_nodes;
  Rng rng(seed);
  std::vector<double> score(E), group_score(G);
  std::vector<int64_t> order(E), gorder(G), load(E, 0);
  std::vector<char> group_kept(G);
  std::vector<int64_t> gpus_on_node;
  double sum_nodes = 0, sum_own = 0, sum_gpus = 0, sum_nvl = 0;
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t src_rank = static_cast<int64_t>(rng.below(static_cast<uint64_t>(ep)));
    const int64_t src_node = src_rank / gpus_per_node, src_local = src_rank % gpus_per_node;
    for (auto& s : score) s = std::fabs(rng.normal()) + 1.0;
    // Group-limited selection (noaux_tc): group score = sum of its top K/M scores.
    for (int64_t g = 0; g < G; ++g) {
      std::vector<double> s(score.begin() + g * experts_per_group, score.begin() + (g + 1) * experts_per_group);
      std::partial_sort(s.begin(), s.begin() + std::min<int64_t>(per_group_top, experts_per_group), s.end(),
                        std::greater<>());
      group_score[g] = std::accumulate(s.begin(), s.begin() + std::min<int64_t>(per_group_top, experts_per_group), 0.0);
    }
    std::iota(gorder.begin(), gorder.end(), 0);
    std::partial_sort(gorder.begin(), gorder.begin() + std::min(M, G), gorder.end(),
                      [&](int64_t a, int64_t b) { return group_score[a] > group_score[b]; });
    std::fill(group_kept.begin(), group_kept.end(), 0);
    for (int64_t i = 0; i < std::min(M, G); ++i) group_kept[gorder[i]] = 1;
    std::iota(order.begin(), order.end(), 0);
    auto masked = [&](int64_t e) { return group_kept[e / experts_per_group] ? score[e] : -1.0; };
    std::partial_sort(order.begin(), order.begin() + K, order.end(),
                      [&](int64_t a, int64_t b) { return masked(a) > masked(b); });
    // Distinct nodes and GPUs of the K experts.
    std::vector<int64_t> ranks(K);
    for (int64_t i = 0; i < K; ++i) {
      ranks[i] = order[i] / experts_per_rank;
      ++load[order[i]];
    }
    std::sort(ranks.begin(), ranks.end());
    ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
    int64_t nodes = 0, nvl = 0;
    bool own = false;
    for (size_t i = 0; i < ranks.size();) {
      const int64_t node = ranks[i] / gpus_per_node;
      bool landing_hit = false;
      size_t j = i;
      for (; j < ranks.size() && ranks[j] / gpus_per_node == node; ++j)
        if (ranks[j] % gpus_per_node == src_local) landing_hit = true;
      const int64_t gpus_here = static_cast<int64_t>(j - i);
      ++nodes;
      if (node == src_node) own = true;
      nvl += gpus_here - (landing_hit ? 1 : 0);
      i = j;
    }
    sum_nodes += static_cast<double>(nodes);
    sum_own += own ? 1.0 : 0.0;
    sum_gpus += static_cast<double>(ranks.size());
    sum_nvl += static_cast<double>(nvl);
  }
  const double n = static_cast<double>(num_tokens);
  st.nodes_per_token = sum_nodes / n;
  st.own_node_prob = sum_own / n;
  st.remote_nodes_per_token = st.nodes_per_token - st.own_node_prob;
  st.gpus_per_token = sum_gpus / n;
  st.nvlink_copies_per_token = sum_nvl / n;
  const double mean_load = static_cast<double>(num_tokens * K) / static_cast<double>(E);
  st.max_expert_load_ratio = static_cast<double>(*std::max_element(load.begin(), load.end())) / mean_load;
  return st;
}

TraceImbalance ep_imbalance_from_loads(const double* loads, int64_t rows, int64_t trace_experts,
                                       int64_t model_experts, int64_t ep) {
  MOE_CHECK(rows > 0 && trace_experts > 0) << "routing trace: no rows or no experts";
  MOE_CHECK(model_experts > 0 && ep >= 1 && model_experts % ep == 0)
      << "routing trace: EP degree " << ep << " does not divide the model's " << model_experts << " experts";
  TraceImbalance t;
  t.rows = rows;
  const int64_t share = model_experts / ep;  // experts per GPU in the plan
  const int64_t scaled = trace_experts * ep;
  t.gpus = scaled <= model_experts ? 1 : scaled / model_experts;
  MOE_CHECK((scaled <= model_experts || scaled % model_experts == 0) && trace_experts % t.gpus == 0) << "routing trace: " << trace_experts << " experts do not map onto "
                                         << t.gpus << " GPUs at the plan's " << share << " experts per GPU";
  const int64_t per_gpu = trace_experts / t.gpus;
  double sum = 0;
  t.max_ratio = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = loads + r * trace_experts;
    double total = 0, busiest = 0;
    for (int64_t g = 0; g < t.gpus; ++g) {
      double load = 0;
      for (int64_t e = g * per_gpu; e < (g + 1) * per_gpu; ++e) load += row[e];
      total += load;
      busiest = std::max(busiest, load);
    }
    const double ratio = total > 0 ? busiest / (total / static_cast<double>(t.gpus)) : 1.0;
    sum += ratio;
    t.max_ratio = std::max(t.max_ratio, ratio);
  }
  t.mean_ratio = sum / static_cast<double>(rows);
  return t;
}

}  // namespace moelab::sim
