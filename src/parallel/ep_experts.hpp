// Expert-parallel RoutedExperts (model/experts.hpp): the MoE layer's routed
// experts computed by the EP rank that holds them, tokens moved by
// Dispatcher (dispatch_combine.hpp). Installed through
// ModelContext::make_experts, so moe_forward/moe_backward run EP unchanged.
//
//   forward   dispatch x -> local rows grouped by local expert ->
//             grouped_mlp_forward (the same grouped SwiGLU as LocalExperts) ->
//             partial[row] = sum over local slots of w_k * y_k -> combine
//   backward  dispatch_grad dy -> dyp = w_k * dy_row, dw_k = <dy_row, y_k> ->
//             grouped_mlp_backward (local expert grads +=) ->
//             dx partial[row] = sum of local dxp -> combine_grad (dx, d_topk_weight)
//
// Only the experts of this EP rank accumulate gradients; the MlpParams of
// other ranks' experts are not touched. Across DP replicas, expert grads are
// all-reduced over Topology::dp_comm(), everything else over the world
// (allreduce_grads below). Float only: the wire formats carry FP32 at most.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/context.hpp"
#include "model/param.hpp"
#include "parallel/dispatch_combine.hpp"

namespace moelab::parallel {

// Traffic of every EP MoE call is added here when given.
ExpertsFactory<float> ep_experts_factory(const Topology& topo, DispatchOptions options,
                                         std::shared_ptr<TrafficStats> sink = nullptr);

void add_traffic(TrafficStats& into, const TrafficStats& s);

// Data-parallel gradient all-reduce (sum) for an EP x DP layout: a parameter
// whose name is a routed expert's ("...mlp.experts.<e>....") is summed over
// dp_comm (the replicas holding the same experts), and only on the rank that
// holds expert e; every other parameter over the world. is_expert_param(name,
// &e) tells routed-expert parameters apart.
bool is_expert_param(const std::string& name, int64_t* expert_idx);
// Sums the grads of `params` as above (in place; other ranks' expert grads
// are left as they are: zero). Collective over the world.
void allreduce_grads(std::vector<Param<float>>& params, const Topology& topo);

}  // namespace moelab::parallel
