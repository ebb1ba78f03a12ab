// Node-limited routing and routing sources for expert-parallel experiments.
//
// Node-limited routing (DeepSeek-V3 §2.1.2, "each token will be sent to at
// most M nodes, selected according to the sum of the highest K_r/M affinity
// scores of the experts distributed on each node"): with experts placed
// contiguously, node n holds experts [n*E/N, (n+1)*E/N), and this is the
// group-limited top-K of the reference Gate with n_group = N groups and
// topk_group = M (reference/deepseek-v3.md §2.3):
//   group_score[n] = sum of the top max(1, K/M) biased scores of node n
//   keep the M best nodes (ties: lower node index), mask the others
//   topk_idx = top-K biased scores among the kept experts (ties: lower index)
//   topk_weight = unbiased scores of those experts, divided by their sum when
//                 normalize (sigmoid routers), times scale
// M >= N (or N = 1) is plain top-K.
//
// Routing sources draw affinity scores [T,E] per rank and step so that EP
// runs can be measured under the imbalance real routers produce:
//   uniform      every expert equally likely
//   hot_expert   one expert `skew` times as likely as the others
//   hot_rank     the experts of one EP rank `skew` times as likely
//   zipf         expert popularity 1/rank^alpha over a seeded permutation
//   rotating     hot_expert whose hot expert moves to the next EP rank's
//                range every `rotate_every` steps
//   replay       a recorded routing from an HDF5 file: a [steps, tokens, K]
//                topk_idx dataset (chosen experts score 1, others below), or
//                a training run's load/expert_tokens [steps, (layers,) E]
//                (popularity = recorded load)
// Scores are u^(1/w_e) with u uniform (Efraimidis-Spirakis: the top-K of
// these keys is a w-weighted sample without replacement), drawn per global
// token (ep_rank * T + t) so the routing does not depend on the EP degree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moelab::parallel {

// scores [T,E], bias [E] or null -> topk_idx [T,K], topk_weight [T,K].
void route_node_limited(const float* scores, const float* bias, int64_t num_tokens, int64_t num_experts, int top_k,
                        int num_groups, int max_groups, bool normalize, float scale, int32_t* topk_idx,
                        float* topk_weight);

// Number of distinct groups among each token's experts (experts contiguous in
// num_groups equal groups): max over tokens.
int max_groups_per_token(const int32_t* topk_idx, int64_t num_tokens, int top_k, int64_t num_experts,
                         int num_groups);

// A model's group-limited router is the node limit only when its groups are
// the nodes: n_group == nodes and topk_group == M. Throws moelab::Error
// saying which figure disagrees and how to fix it.
void check_node_limit_matches_model(int64_t n_group, int64_t topk_group, int num_nodes, int max_nodes);

enum class RoutingKind { uniform, hot_expert, hot_rank, zipf, rotating, replay };
std::string routing_kind_name(RoutingKind k);
RoutingKind parse_routing_kind(const std::string& name);

struct RoutingSourceOptions {
  RoutingKind kind = RoutingKind::uniform;
  double skew = 8.0;        // hot_expert / hot_rank / rotating: popularity factor
  double zipf_alpha = 1.0;  // zipf exponent
  int64_t hot_expert = 0;   // hot_expert: which expert
  int hot_rank = 0;         // hot_rank: which EP rank
  int rotate_every = 1;     // rotating: steps per move
  std::string replay_file, replay_dataset;
  int64_t replay_layer = 0;  // expert_tokens with a layers axis: which MoE layer
  uint64_t seed = 0;
};

class RoutingSource {
 public:
  // experts_per_rank places experts on EP ranks (hot_rank, rotating).
  RoutingSource(RoutingSourceOptions options, int64_t num_experts, int top_k, int64_t experts_per_rank);
  // scores [T,E] for tokens [first_token, first_token + T) of step `step`.
  void scores(int64_t step, int64_t first_token, int64_t num_tokens, float* out) const;
  // Expert popularity w_e at a step (1 for uniform).
  std::vector<double> popularity(int64_t step) const;
  const RoutingSourceOptions& options() const { return opt_; }

 private:
  RoutingSourceOptions opt_;
  int64_t num_experts_;
  int top_k_;
  int64_t experts_per_rank_;
  std::vector<int64_t> zipf_order_;            // zipf: expert at popularity rank i
  std::vector<std::vector<double>> replay_load_;  // [steps][E]
  std::vector<int32_t> replay_topk_;           // [steps, tokens, K]
  int64_t replay_steps_ = 0, replay_tokens_ = 0;
};

}  // namespace moelab::parallel
