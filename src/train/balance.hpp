// Load balancing of the routed experts (DeepSeek-V3 §2.1.2, §4.5.2–4.5.3;
// shared/reference/deepseek-v3.md section 3). Selectable and combinable:
//
//  * auxiliary-loss-free: a per-expert bias b (e_score_correction_bias) added
//    to the scores for top-k selection only; after each step, from the load of
//    the whole global batch, b_i += γ·sign(mean load − load_i) (sign(0) = 0,
//    as Megatron-Core's get_updated_expert_bias); frozen from a given step on
//    (the paper sets γ = 0.001, then 0 for the last 500B tokens).
//  * balance loss α·Σ_i f_i·P_i (Eq. 17–20) over groups of tokens:
//      f_i = E / (K·T_g) · #{t in group : expert i among the K selected for t}
//      P_i = (1/T_g) · Σ_t s'_{i,t},   s'_{i,t} = s_{i,t} / Σ_j s_{j,t}
//    sequence-wise (group = one sequence; the paper's complementary loss with
//    α = 0.0001, and the sequence-wise aux-loss baseline) or batch-wise (group
//    = the whole batch; the batch-wise baseline of §4.5.3), averaged over
//    groups. f is a count and carries no gradient; P does:
//      ∂L/∂s_{i,t} = α/(G·T_g) · (f_i − Σ_j f_j·s'_{j,t}) / S_t ,  S_t = Σ_j s_{j,t}
//    NOTE: f counts the experts actually selected (with bias and group limit),
//    as Megatron-Core does; Eq. 18 prints Topk of the unbiased s, which is the
//    same selection when the bias is zero and routing is not group-limited.
//  * none.
//
// Scores are the router's pre-bias affinities s [T, E] (sigmoid outputs for
// DeepSeek-V3); the gradient returned is with respect to them and goes into
// the MoE backward as its extra d_scores.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moelab::train {

enum class AuxLossKind { none, batch, sequence };

// Megatron-Core's moe_router_load_balancing_type values: none, aux_loss
// (batch-wise), seq_aux_loss (sequence-wise).
AuxLossKind parse_aux_loss_kind(const std::string& text);
std::string aux_loss_kind_name(AuxLossKind kind);

struct BalanceConfig {
  bool expert_bias = true;          // moe_router_enable_expert_bias
  double bias_update_rate = 1e-3;   // moe_router_bias_update_rate (γ)
  int64_t bias_freeze_step = -1;    // no update from this step on; -1 never
  AuxLossKind aux_loss = AuxLossKind::sequence;  // moe_router_load_balancing_type
  double aux_loss_coeff = 1e-4;     // moe_aux_loss_coeff (α)

  bool bias_updates_at(int64_t step) const {
    return expert_bias && bias_update_rate != 0 && (bias_freeze_step < 0 || step < bias_freeze_step);
  }
  bool has_aux_loss() const { return aux_loss != AuxLossKind::none && aux_loss_coeff != 0; }
};

// Sums per-expert loads over every rank that holds a part of the global batch.
// Identity for one process; the expert-parallel loop sets an MPI_Allreduce.
using LoadReducer = std::function<void(std::vector<double>& load)>;
inline void local_load_reducer(std::vector<double>&) {}

// Tokens routed to each expert: load[e] = #{(t, k) : topk_idx[t, k] == e}.
template <typename Index>
std::vector<double> count_expert_tokens(const Index* topk_idx /*[T, K]*/, int64_t num_tokens, int64_t topk,
                                        int64_t num_experts);

// b_i += rate · sign(mean(load) − load_i).
void update_expert_bias(float* bias /*[E]*/, const std::vector<double>& load, double rate);

// MaxVio = (max_i load_i − mean load) / mean load (Loss-Free Balancing
// paper); 0 for an empty load.
double max_violation(const std::vector<double>& load);

// The balance loss of one MoE layer and its gradient, accumulated (+=) into
// d_scores [T, E] when not null. T = num_seqs · seq_len tokens in sequence
// order. Returns the loss (already multiplied by coeff).
// Scalar: float (training) or double (gradient checks); Index: int32/int64.
template <typename Scalar, typename Index>
double balance_loss(AuxLossKind kind, double coeff, const Scalar* scores /*[T, E]*/, const Index* topk_idx /*[T, K]*/,
                    int64_t num_seqs, int64_t seq_len, int64_t num_experts, int64_t topk,
                    Scalar* d_scores /*[T, E]*/);

}  // namespace moelab::train
