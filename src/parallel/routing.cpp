#include "parallel/routing.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/hdf5.hpp"

namespace moelab::parallel {

namespace {
// Descending by value, ascending by index on ties: a total order, so the
// selection is deterministic.
struct ByScore {
  const float* v;
  bool operator()(int64_t a, int64_t b) const { return v[a] > v[b] || (v[a] == v[b] && a < b); }
};
}  // namespace

void route_node_limited(const float* scores, const float* bias, int64_t num_tokens, int64_t num_experts, int top_k,
                        int num_groups, int max_groups, bool normalize, float scale, int32_t* topk_idx,
                        float* topk_weight) {
  const int64_t E = num_experts;
  MOE_CHECK(num_groups >= 1 && E % num_groups == 0)
      << "experts (" << E << ") not divisible by the routing groups/nodes (" << num_groups << ")";
  MOE_CHECK(top_k >= 1 && top_k <= E) << "top-k (" << top_k << ") must be in [1, experts = " << E << "]";
  MOE_CHECK(max_groups >= 1) << "node limit M must be >= 1, got " << max_groups;
  const int64_t per_group = E / num_groups;
  const bool limited = max_groups < num_groups;
  MOE_CHECK(!limited || per_group * max_groups >= top_k)
      << "node limit M = " << max_groups << " with " << per_group << " experts per node leaves fewer than top-k = "
      << top_k << " experts to choose from";
  const int64_t group_topk = std::min<int64_t>(per_group, std::max(1, top_k / max_groups));
  std::vector<float> biased(E), group_score(num_groups);
  std::vector<int64_t> order(E), groups(num_groups), in_group(per_group);
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* s = scores + t * E;
    for (int64_t e = 0; e < E; ++e) biased[e] = s[e] + (bias ? bias[e] : 0.0f);
    if (limited) {
      for (int g = 0; g < num_groups; ++g) {
        std::iota(in_group.begin(), in_group.end(), g * per_group);
        std::partial_sort(in_group.begin(), in_group.begin() + group_topk, in_group.end(), ByScore{biased.data()});
        float sum = 0.0f;
        for (int64_t i = 0; i < group_topk; ++i) sum += biased[in_group[i]];
        group_score[g] = sum;
      }
      std::iota(groups.begin(), groups.end(), 0);
      std::partial_sort(groups.begin(), groups.begin() + max_groups, groups.end(), ByScore{group_score.data()});
      std::vector<char> keep(num_groups, 0);
      for (int i = 0; i < max_groups; ++i) keep[groups[i]] = 1;
      for (int64_t e = 0; e < E; ++e)
        if (!keep[e / per_group]) biased[e] = -INFINITY;
    }
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + top_k, order.end(), ByScore{biased.data()});
    float sum = 0.0f;
    for (int k = 0; k < top_k; ++k) sum += s[order[k]];
    for (int k = 0; k < top_k; ++k) {
      topk_idx[t * top_k + k] = static_cast<int32_t>(order[k]);
      const float w = normalize ? s[order[k]] / (sum > 0.0f ? sum : 1.0f) : s[order[k]];
      topk_weight[t * top_k + k] = w * scale;
    }
  }
}

int max_groups_per_token(const int32_t* topk_idx, int64_t num_tokens, int top_k, int64_t num_experts,
                         int num_groups) {
  const int64_t per_group = num_experts / num_groups;
  int worst = 0;
  std::vector<char> hit(num_groups);
  for (int64_t t = 0; t < num_tokens; ++t) {
    std::fill(hit.begin(), hit.end(), 0);
    int n = 0;
    for (int k = 0; k < top_k; ++k) {
      const int g = static_cast<int>(topk_idx[t * top_k + k] / per_group);
      n += !hit[g];
      hit[g] = 1;
    }
    worst = std::max(worst, n);
  }
  return worst;
}

void check_node_limit_matches_model(int64_t n_group, int64_t topk_group, int num_nodes, int max_nodes) {
  if (n_group <= 1) return;  // the model routes without groups: the node limit is added on top
  MOE_CHECK(n_group == num_nodes && topk_group == max_nodes)
      << "node-limited routing: the model's group-limited router (n_group = " << n_group
      << ", topk_group = " << topk_group << ") must match the cluster's nodes per EP group (" << num_nodes
      << " = parallel.ep / parallel.gpus_per_node) and the node limit M (" << max_nodes
      << " = parallel.max_nodes): set parallel.ep / gpus_per_node so there are " << n_group
      << " nodes and parallel.max_nodes = " << topk_group;
}

std::string routing_kind_name(RoutingKind k) {
  switch (k) {
    case RoutingKind::uniform: return "uniform";
    case RoutingKind::hot_expert: return "hot_expert";
    case RoutingKind::hot_rank: return "hot_rank";
    case RoutingKind::zipf: return "zipf";
    case RoutingKind::rotating: return "rotating";
    case RoutingKind::replay: return "replay";
  }
  return "?";
}

RoutingKind parse_routing_kind(const std::string& name) {
  for (RoutingKind k : {RoutingKind::uniform, RoutingKind::hot_expert, RoutingKind::hot_rank, RoutingKind::zipf,
                        RoutingKind::rotating, RoutingKind::replay})
    if (name == routing_kind_name(k)) return k;
  MOE_FAIL() << "routing source '" << name << "': expected uniform, hot_expert, hot_rank, zipf, rotating or replay";
  return RoutingKind::uniform;
}

RoutingSource::RoutingSource(RoutingSourceOptions options, int64_t num_experts, int top_k, int64_t experts_per_rank)
    : opt_(std::move(options)), num_experts_(num_experts), top_k_(top_k), experts_per_rank_(experts_per_rank) {
  const int64_t E = num_experts_;
  MOE_CHECK(opt_.skew > 0.0) << "routing skew must be > 0, got " << opt_.skew;
  MOE_CHECK(opt_.rotate_every >= 1) << "routing rotate_every must be >= 1";
  if (opt_.kind == RoutingKind::hot_expert)
    MOE_CHECK(opt_.hot_expert >= 0 && opt_.hot_expert < E)
        << "routing hot_expert " << opt_.hot_expert << " outside [0, " << E << ")";
  if (opt_.kind == RoutingKind::hot_rank)
    MOE_CHECK(opt_.hot_rank >= 0 && opt_.hot_rank * experts_per_rank_ < E)
        << "routing hot_rank " << opt_.hot_rank << " outside the EP ranks";
  if (opt_.kind == RoutingKind::zipf) {
    zipf_order_.resize(E);
    std::iota(zipf_order_.begin(), zipf_order_.end(), 0);
    Rng rng(opt_.seed ^ 0x5a1ffULL);
    for (int64_t i = E - 1; i > 0; --i) std::swap(zipf_order_[i], zipf_order_[rng.below(i + 1)]);
  }
  if (opt_.kind == RoutingKind::replay) {
    MOE_CHECK(!opt_.replay_file.empty() && !opt_.replay_dataset.empty())
        << "routing replay needs a file and a dataset (routing.replay_file, routing.replay_dataset)";
    h5::File file = h5::File::open_read(opt_.replay_file);
    MOE_CHECK(file.has(opt_.replay_dataset)) << opt_.replay_file << ": no dataset '" << opt_.replay_dataset << "'";
    const std::string& name = opt_.replay_dataset;
    const bool is_load = name.size() >= 13 && name.compare(name.size() - 13, 13, "expert_tokens") == 0;
    if (is_load) {
      Tensor<double> load = file.read<double>(name);
      MOE_CHECK((load.rank() == 2 || load.rank() == 3) && load.dim(-1) == E)
          << opt_.replay_file << ":" << name << ": expected [steps, E] or [steps, layers, E] with E = " << E
          << ", got " << shape_str(load.shape);
      const int64_t layers = load.rank() == 3 ? load.dim(1) : 1;
      MOE_CHECK(opt_.replay_layer >= 0 && opt_.replay_layer < layers)
          << "routing.replay_layer " << opt_.replay_layer << " outside [0, " << layers << ")";
      replay_steps_ = load.dim(0);
      for (int64_t s = 0; s < replay_steps_; ++s) {
        const double* row = load.ptr() + (s * layers + opt_.replay_layer) * E;
        std::vector<double> w(row, row + E);
        for (double& v : w) v = std::max(v, 0.0) + 1e-3;  // an unused expert stays possible, barely
        replay_load_.push_back(w);
      }
    } else {
      Tensor<int32_t> idx = file.read<int32_t>(name);
      MOE_CHECK(idx.rank() == 3 && idx.dim(2) == top_k)
          << opt_.replay_file << ":" << name << ": expected topk_idx [steps, tokens, K] with K = " << top_k
          << ", got " << shape_str(idx.shape);
      for (int32_t e : idx.data)
        MOE_CHECK(e >= 0 && e < E) << opt_.replay_file << ":" << name << ": expert " << e << " outside [0, " << E
                                   << ")";
      replay_steps_ = idx.dim(0);
      replay_tokens_ = idx.dim(1);
      replay_topk_ = std::move(idx.data);
    }
    MOE_CHECK(replay_steps_ > 0) << opt_.replay_file << ":" << name << ": no steps recorded";
  }
}

std::vector<double> RoutingSource::popularity(int64_t step) const {
  const int64_t E = num_experts_;
  std::vector<double> w(E, 1.0);
  switch (opt_.kind) {
    case RoutingKind::uniform: break;
    case RoutingKind::hot_expert: w[opt_.hot_expert] = opt_.skew; break;
    case RoutingKind::hot_rank:
      for (int64_t e = opt_.hot_rank * experts_per_rank_; e < (opt_.hot_rank + 1) * experts_per_rank_; ++e)
        w[e] = opt_.skew;
      break;
    case RoutingKind::zipf:
      for (int64_t i = 0; i < E; ++i) w[zipf_order_[i]] = 1.0 / std::pow(double(i + 1), opt_.zipf_alpha);
      break;
    case RoutingKind::rotating: w[((step / opt_.rotate_every) * experts_per_rank_) % E] = opt_.skew; break;
    case RoutingKind::replay:
      if (!replay_load_.empty()) w = replay_load_[step % replay_steps_];
      break;
  }
  return w;
}

void RoutingSource::scores(int64_t step, int64_t first_token, int64_t num_tokens, float* out) const {
  const int64_t E = num_experts_;
  const std::vector<double> w = popularity(step);
  std::vector<double> inv_w(E);
  for (int64_t e = 0; e < E; ++e) inv_w[e] = 1.0 / w[e];
  for (int64_t t = 0; t < num_tokens; ++t) {
    const uint64_t g = static_cast<uint64_t>(first_token + t);
    Rng rng(opt_.seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(step) * 0x100000001b3ULL + g * 0x2545F491ULL);
    float* s = out + t * E;
    for (int64_t e = 0; e < E; ++e) {
      double u = rng.uniform();
      if (u <= 0.0) u = 0x1.0p-53;
      s[e] = static_cast<float>(std::pow(u, inv_w[e]));
    }
    if (!replay_topk_.empty()) {
      // A recorded routing: its experts outrank every other (which keep
      // their random order below 0.5 for when the node limit removes some).
      const int32_t* rec = &replay_topk_[((step % replay_steps_) * replay_tokens_ + g % replay_tokens_) * top_k_];
      for (int64_t e = 0; e < E; ++e) s[e] *= 0.5f;
      for (int k = 0; k < top_k_; ++k) s[rec[k]] = 1.0f - 0.01f * k;
    }
  }
}

}  // namespace moelab::parallel
