#include "parallel/schedule/chain_stages.hpp"

#include <algorithm>
#include <cmath>

#include "backend/cpu/gemm.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"

namespace moelab::schedule {

std::vector<float> ChainModel::weight(int stage) const {
  Rng rng(seed * 1000 + static_cast<uint64_t>(stage));
  std::vector<float> w(static_cast<size_t>(hidden) * hidden);
  for (auto& v : w) v = static_cast<float>(rng.normal() * 1.5 / std::sqrt(static_cast<double>(hidden)));
  return w;
}

std::vector<float> ChainModel::input(int mb) const {
  Rng rng(seed * 7919 + 100000 + static_cast<uint64_t>(mb));
  std::vector<float> x(boundary_numel());
  for (auto& v : x) v = static_cast<float>(rng.normal());
  return x;
}

ChainStages::ChainStages(const ChainModel& model, const std::vector<int>& held) : model_(model) {
  for (int s : held) {
    weights_[s] = model.weight(s);
    grads_[s].assign(static_cast<size_t>(model.hidden) * model.hidden, 0.f);
  }
}

void ChainStages::forward(int mb, int stage, std::span<const float> input, std::span<float> output) {
  const int t = model_.tokens, h = model_.hidden;
  auto w = weights_.find(stage);
  MOE_CHECK(w != weights_.end()) << "chain: stage " << stage << " is not held here";
  Saved& saved = saved_[{mb, stage}];
  saved.x = stage == 0 ? model_.input(mb) : std::vector<float>(input.begin(), input.end());
  MOE_CHECK(static_cast<int64_t>(saved.x.size()) == model_.boundary_numel())
      << "chain: stage " << stage << " input has " << saved.x.size() << " elements, expected "
      << model_.boundary_numel();
  saved.y.assign(model_.boundary_numel(), 0.f);
  // y [T, H] = x [T, H] · Wᵀ, then tanh.
  cpu::gemm(false, true, t, h, h, 1.f, saved.x.data(), h, w->second.data(), h, 0.f, saved.y.data(), h);
  for (float& v : saved.y) v = std::tanh(v);
  if (stage + 1 < model_.num_stages) {
    MOE_CHECK(static_cast<int64_t>(output.size()) == model_.boundary_numel()) << "chain: output size";
    std::copy(saved.y.begin(), saved.y.end(), output.begin());
  }
}

void ChainStages::backward_input(int mb, int stage, std::span<const float> grad_output, std::span<float> grad_input,
                                 bool defer_weight) {
  const int t = model_.tokens, h = model_.hidden;
  auto it = saved_.find({mb, stage});
  MOE_CHECK(it != saved_.end()) << "chain: backward of micro-batch " << mb << " stage " << stage
                                << " before its forward";
  Saved& saved = it->second;
  const int64_t n = model_.boundary_numel();
  saved.dz.assign(n, 0.f);
  if (stage + 1 == model_.num_stages) {
    // dL/dy = y / (C·T·H) for L = 0.5·Σ y² / (C·T·H).
    const double scale = 1.0 / (static_cast<double>(model_.num_microbatches) * n);
    for (int64_t k = 0; k < n; ++k) {
      const double y = saved.y[k];
      loss_ += 0.5 * y * y * scale;
      saved.dz[k] = static_cast<float>(y * scale) * (1 - saved.y[k] * saved.y[k]);
    }
  } else {
    for (int64_t k = 0; k < n; ++k) saved.dz[k] = grad_output[k] * (1 - saved.y[k] * saved.y[k]);
  }
  // dx [T, H] = dz [T, H] · W [H, H].
  if (!grad_input.empty())
    cpu::gemm(false, false, t, h, h, 1.f, saved.dz.data(), h, weights_.at(stage).data(), h, 0.f, grad_input.data(), h);
  if (!defer_weight) backward_weight(mb, stage);
}

void ChainStages::backward_weight(int mb, int stage) {
  const int t = model_.tokens, h = model_.hidden;
  auto it = saved_.find({mb, stage});
  MOE_CHECK(it != saved_.end() && !it->second.dz.empty())
      << "chain: W of micro-batch " << mb << " stage " << stage << " before its backward";
  // dW [H, H] += dzᵀ [H, T] · x [T, H].
  cpu::gemm(true, false, h, h, t, 1.f, it->second.dz.data(), h, it->second.x.data(), h, 1.f, grads_.at(stage).data(),
            h);
  saved_.erase(it);
}

std::vector<int> held_stages(const Schedule& s, int rank) {
  std::vector<int> held;
  for (int d = 0; d < s.num_directions; ++d)
    for (int st = 0; st < s.num_stages; ++st)
      if (s.stage_rank[d][st] == rank && std::find(held.begin(), held.end(), st) == held.end()) held.push_back(st);
  return held;
}

std::pair<double, std::vector<std::vector<float>>> chain_reference(const ChainModel& m) {
  std::vector<int> all(m.num_stages);
  for (int s = 0; s < m.num_stages; ++s) all[s] = s;
  ChainStages stages(m, all);
  const int64_t n = m.boundary_numel();
  std::vector<float> a(n), b(n), g(n), h(n);
  for (int mb = 0; mb < m.num_microbatches; ++mb) {
    for (int s = 0; s < m.num_stages; ++s) {
      stages.forward(mb, s, a, s + 1 < m.num_stages ? std::span<float>(b) : std::span<float>());
      std::swap(a, b);
    }
    for (int s = m.num_stages - 1; s >= 0; --s) {
      stages.backward_input(mb, s, g, s > 0 ? std::span<float>(h) : std::span<float>(), false);
      std::swap(g, h);
    }
  }
  std::vector<std::vector<float>> grads;
  for (const auto& [s, grad] : stages.grads()) grads.push_back(grad);
  return {stages.loss(), grads};
}

}  // namespace moelab::schedule
