// Traffic statistics of node-limited routing (DeepSeek-V3 §2.1.2, §3.2.2) for
// a given EP degree and expert placement, by Monte Carlo with a fixed seed:
// tokens draw affinity scores as DeepEP's tests do (|N(0,1)| + 1), route with
// V3's group-limited top-k (group score = sum of the top K/topk_group scores,
// keep topk_group groups, top-K experts among them), and count for each token
// the distinct nodes and GPUs its K experts live on. Experts are placed
// contiguously: expert e on EP rank e / (E / ep), EP rank r on node
// r / gpus_per_node. Balanced expected loads are assumed (no bias).
#pragma once

#include <cstdint>

#include "model/config.hpp"

namespace moelab::sim {

struct RoutingStats {
  int64_t ep = 1;
  int64_t ep_nodes = 1;               // nodes the EP group spans
  double nodes_per_token = 1;         // distinct nodes among a token's K experts (own node included)
  double own_node_prob = 1;           // probability that the token's own node is among them
  double remote_nodes_per_token = 0;  // nodes_per_token - own_node_prob: IB copies per token
  double gpus_per_token = 1;          // distinct GPUs among a token's K experts
  // NVLink copies per token in the two-hop scheme: on every target node, one copy
  // per target GPU other than the landing GPU (the one with the sender's in-node index).
  double nvlink_copies_per_token = 0;
  double max_expert_load_ratio = 1;   // busiest expert's tokens / mean over the sample
};

// Monte Carlo over `num_tokens` tokens (sources spread uniformly over the EP group).
RoutingStats node_limited_routing_stats(const ModelConfig& cfg, int64_t ep, int64_t gpus_per_node,
                                        uint64_t seed = 1, int64_t num_tokens = 8192);

// Measured imbalance priced instead of assumed away: from per-expert token
// counts of a moelab run (load/expert_tokens, rows = steps x MoE layers), the
// busiest GPU's tokens over the mean GPU's for each row, with experts placed
// contiguously and the trace's experts mapped onto the plan's share of
// experts per GPU (model_experts / ep): a trace of E_t experts spans
// E_t * ep / model_experts GPUs (at least 1).
struct TraceImbalance {
  int64_t rows = 0;
  int64_t gpus = 1;         // GPUs the trace's experts map onto
  double mean_ratio = 1.0;  // mean over rows of max GPU load / mean GPU load
  double max_ratio = 1.0;
};
TraceImbalance ep_imbalance_from_loads(const double* loads, int64_t rows, int64_t trace_experts,
                                       int64_t model_experts, int64_t ep);

}  // namespace moelab::sim
