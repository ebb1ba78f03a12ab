// A toy pipeline for the executor tests: S stages, each y = tanh(x · W_sᵀ)
// with W_s [H, H], on micro-batches x [T, H] drawn from the seed; the last
// stage's loss is 0.5·Σ y² / (C·T·H) summed over micro-batches. Gradient rule:
// dW_s += dzᵀ · x (accumulated), dx = dz · W_s (overwritten), dz = dy ⊙ (1 - y²).
// ToyStages holds the stages of one rank (DualPipe: two copies of two
// stages, whose gradients are summed afterwards, as DualPipe all-reduces
// them); toy_reference runs the same arithmetic in one process.
#pragma once

#include <cmath>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "parallel/schedule/executor.hpp"

namespace toy {

struct Model {
  int num_stages = 4, hidden = 8, tokens = 3, num_microbatches = 8;
  uint64_t seed = 7;
  int64_t numel() const { return static_cast<int64_t>(tokens) * hidden; }
  std::vector<float> weight(int stage) const {  // [H, H]
    moelab::Rng rng(seed * 1000 + stage);
    std::vector<float> w(static_cast<size_t>(hidden) * hidden);
    for (auto& v : w) v = static_cast<float>(rng.normal() / std::sqrt(hidden) * 1.5);
    return w;
  }
  std::vector<float> input(int mb) const {  // [T, H]
    moelab::Rng rng(seed * 7919 + 100000 + mb);
    std::vector<float> x(numel());
    for (auto& v : x) v = static_cast<float>(rng.normal());
    return x;
  }
};

// y = tanh(x · Wᵀ)
inline void stage_forward(const Model& m, const std::vector<float>& w, std::span<const float> x, std::span<float> y) {
  for (int t = 0; t < m.tokens; ++t)
    for (int i = 0; i < m.hidden; ++i) {
      float acc = 0;
      for (int j = 0; j < m.hidden; ++j) acc += x[t * m.hidden + j] * w[i * m.hidden + j];
      y[t * m.hidden + i] = std::tanh(acc);
    }
}

// dz = dy ⊙ (1 - y²); dx = dz · W
inline std::vector<float> stage_backward_input(const Model& m, const std::vector<float>& w, std::span<const float> y,
                                               std::span<const float> dy, std::span<float> dx) {
  std::vector<float> dz(m.numel());
  for (int64_t k = 0; k < m.numel(); ++k) dz[k] = dy[k] * (1 - y[k] * y[k]);
  if (!dx.empty())
    for (int t = 0; t < m.tokens; ++t)
      for (int j = 0; j < m.hidden; ++j) {
        float acc = 0;
        for (int i = 0; i < m.hidden; ++i) acc += dz[t * m.hidden + i] * w[i * m.hidden + j];
        dx[t * m.hidden + j] = acc;
      }
  return dz;
}

// dW += dzᵀ · x
inline void stage_backward_weight(const Model& m, const std::vector<float>& dz, const std::vector<float>& x,
                                  std::vector<float>& dw) {
  for (int i = 0; i < m.hidden; ++i)
    for (int j = 0; j < m.hidden; ++j) {
      float acc = 0;
      for (int t = 0; t < m.tokens; ++t) acc += dz[t * m.hidden + i] * x[t * m.hidden + j];
      dw[i * m.hidden + j] += acc;
    }
}

// dL/dy of the last stage for one micro-batch, and its loss.
inline double loss_grad(const Model& m, std::span<const float> y, std::span<float> dy) {
  const double scale = 1.0 / (static_cast<double>(m.num_microbatches) * m.numel());
  double loss = 0;
  for (int64_t k = 0; k < m.numel(); ++k) {
    loss += 0.5 * y[k] * y[k] * scale;
    dy[k] = static_cast<float>(y[k] * scale);
  }
  return loss;
}

class ToyStages : public moelab::schedule::Stages {
 public:
  ToyStages(const Model& m, const std::vector<int>& held_stages) : m_(m) {
    for (int s : held_stages) {
      weights_[s] = m.weight(s);
      grads_[s].assign(static_cast<size_t>(m.hidden) * m.hidden, 0.f);
    }
  }
  int64_t boundary_numel(int) const override { return m_.numel(); }

  void forward(int mb, int stage, std::span<const float> input, std::span<float> output) override {
    Saved& saved = saved_[{mb, stage}];
    saved.x = stage == 0 ? m_.input(mb) : std::vector<float>(input.begin(), input.end());
    saved.y.assign(m_.numel(), 0.f);
    stage_forward(m_, weights_.at(stage), saved.x, saved.y);
    if (stage + 1 < m_.num_stages) {
      MOE_CHECK(static_cast<int64_t>(output.size()) == m_.numel()) << "toy: output size";
      std::copy(saved.y.begin(), saved.y.end(), output.begin());
    }
  }

  void backward_input(int mb, int stage, std::span<const float> grad_output, std::span<float> grad_input,
                      bool defer_weight) override {
    auto it = saved_.find({mb, stage});
    MOE_CHECK(it != saved_.end()) << "toy: backward of " << mb << "." << stage << " before its forward";
    Saved& saved = it->second;
    std::vector<float> dy(m_.numel());
    if (stage + 1 == m_.num_stages)
      loss_ += loss_grad(m_, saved.y, dy);
    else
      std::copy(grad_output.begin(), grad_output.end(), dy.begin());
    saved.dz = stage_backward_input(m_, weights_.at(stage), saved.y, dy, grad_input);
    if (!defer_weight) backward_weight(mb, stage);
  }

  void backward_weight(int mb, int stage) override {
    auto it = saved_.find({mb, stage});
    MOE_CHECK(it != saved_.end() && !it->second.dz.empty()) << "toy: W of " << mb << "." << stage << " before B";
    stage_backward_weight(m_, it->second.dz, it->second.x, grads_.at(stage));
    saved_.erase(it);
  }

  double loss() const { return loss_; }
  const std::map<int, std::vector<float>>& grads() const { return grads_; }
  size_t live_activations() const { return saved_.size(); }

 private:
  struct Saved {
    std::vector<float> x, y, dz;
  };
  const Model& m_;
  std::map<int, std::vector<float>> weights_, grads_;
  std::map<std::pair<int, int>, Saved> saved_;
  double loss_ = 0;
};

// The non-pipelined step: every micro-batch through every stage and back.
inline std::pair<double, std::vector<std::vector<float>>> reference(const Model& m) {
  std::vector<int> all(m.num_stages);
  for (int s = 0; s < m.num_stages; ++s) all[s] = s;
  ToyStages stages(m, all);
  std::vector<float> a(m.numel()), b(m.numel()), g(m.numel()), h(m.numel());
  for (int mb = 0; mb < m.num_microbatches; ++mb) {
    for (int s = 0; s < m.num_stages; ++s) {
      stages.forward(mb, s, a, b);
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

}  // namespace toy
