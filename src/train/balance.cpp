#include "train/balance.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace moelab::train {

AuxLossKind parse_aux_loss_kind(const std::string& text) {
  if (text == "none") return AuxLossKind::none;
  if (text == "aux_loss" || text == "batch") return AuxLossKind::batch;
  if (text == "seq_aux_loss" || text == "sequence") return AuxLossKind::sequence;
  MOE_FAIL() << "balance.aux_loss '" << text << "': expected none, aux_loss (batch-wise) or seq_aux_loss "
             << "(sequence-wise)";
}

std::string aux_loss_kind_name(AuxLossKind kind) {
  switch (kind) {
    case AuxLossKind::none: return "none";
    case AuxLossKind::batch: return "aux_loss";
    case AuxLossKind::sequence: return "seq_aux_loss";
  }
  return "?";
}

template <typename Index>
std::vector<double> count_expert_tokens(const Index* topk_idx, int64_t num_tokens, int64_t topk, int64_t num_experts) {
  std::vector<double> load(num_experts, 0.0);
  for (int64_t i = 0; i < num_tokens * topk; ++i) {
    const int64_t e = static_cast<int64_t>(topk_idx[i]);
    MOE_CHECK(e >= 0 && e < num_experts) << "expert index " << e << " outside [0, " << num_experts << ")";
    load[e] += 1.0;
  }
  return load;
}

void update_expert_bias(float* bias, const std::vector<double>& load, double rate) {
  if (load.empty()) return;
  double mean = 0;
  for (double l : load) mean += l;
  mean /= static_cast<double>(load.size());
  for (size_t i = 0; i < load.size(); ++i) {
    const double offset = mean - load[i];
    const double sign = offset > 0 ? 1.0 : (offset < 0 ? -1.0 : 0.0);
    bias[i] = static_cast<float>(static_cast<double>(bias[i]) + rate * sign);
  }
}

double max_violation(const std::vector<double>& load) {
  if (load.empty()) return 0.0;
  double mean = 0, hi = load[0];
  for (double l : load) mean += l, hi = std::max(hi, l);
  mean /= static_cast<double>(load.size());
  return mean > 0 ? (hi - mean) / mean : 0.0;
}

template <typename Scalar, typename Index>
double balance_loss(AuxLossKind kind, double coeff, const Scalar* scores, const Index* topk_idx, int64_t num_seqs,
                    int64_t seq_len, int64_t num_experts, int64_t topk, Scalar* d_scores) {
  if (kind == AuxLossKind::none || coeff == 0) return 0.0;
  const int64_t num_tokens = num_seqs * seq_len;
  const int64_t num_groups = kind == AuxLossKind::sequence ? num_seqs : 1;
  const int64_t group_tokens = num_tokens / num_groups;
  const int64_t E = num_experts;
  std::vector<double> f(E), p(E), inv_sum(group_tokens);
  double loss = 0;
  for (int64_t g = 0; g < num_groups; ++g) {
    const int64_t t0 = g * group_tokens;
    // f_i (Eq. 18): selected counts scaled so a perfectly balanced group has f_i = 1.
    f = count_expert_tokens(topk_idx + t0 * topk, group_tokens, topk, E);
    const double f_scale = static_cast<double>(E) / static_cast<double>(topk * group_tokens);
    for (auto& v : f) v *= f_scale;
    // P_i (Eq. 19-20): mean normalised score.
    std::fill(p.begin(), p.end(), 0.0);
    for (int64_t t = 0; t < group_tokens; ++t) {
      const Scalar* s = scores + (t0 + t) * E;
      double sum = 0;
      for (int64_t i = 0; i < E; ++i) sum += s[i];
      MOE_CHECK(sum > 0) << "balance loss: router scores of token " << t0 + t << " sum to " << sum
                         << " (expected positive affinities)";
      inv_sum[t] = 1.0 / sum;
      for (int64_t i = 0; i < E; ++i) p[i] += s[i] * inv_sum[t];
    }
    double group_loss = 0;
    for (int64_t i = 0; i < E; ++i) group_loss += f[i] * p[i] / static_cast<double>(group_tokens);
    loss += coeff * group_loss / static_cast<double>(num_groups);
    if (!d_scores) continue;
    // ∂L/∂s_{i,t} = α/(G·T_g) · (f_i − Σ_j f_j s'_{j,t}) / S_t
    const double scale = coeff / static_cast<double>(num_groups * group_tokens);
    for (int64_t t = 0; t < group_tokens; ++t) {
      const Scalar* s = scores + (t0 + t) * E;
      double fs = 0;
      for (int64_t j = 0; j < E; ++j) fs += f[j] * s[j] * inv_sum[t];
      Scalar* ds = d_scores + (t0 + t) * E;
      for (int64_t i = 0; i < E; ++i) ds[i] += static_cast<Scalar>(scale * (f[i] - fs) * inv_sum[t]);
    }
  }
  return loss;
}

template std::vector<double> count_expert_tokens<int32_t>(const int32_t*, int64_t, int64_t, int64_t);
template std::vector<double> count_expert_tokens<int64_t>(const int64_t*, int64_t, int64_t, int64_t);
#define MOELAB_BALANCE_INSTANTIATE(Scalar, Index)                                                                   \
  template double balance_loss<Scalar, Index>(AuxLossKind, double, const Scalar*, const Index*, int64_t, int64_t, \
                                              int64_t, int64_t, Scalar*);
MOELAB_BALANCE_INSTANTIATE(float, int32_t)
MOELAB_BALANCE_INSTANTIATE(float, int64_t)
MOELAB_BALANCE_INSTANTIATE(double, int32_t)
MOELAB_BALANCE_INSTANTIATE(double, int64_t)
#undef MOELAB_BALANCE_INSTANTIATE

}  // namespace moelab::train
