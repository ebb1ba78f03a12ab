// A toy pipeline model for the executor: S stages, each y = tanh(x · W_sᵀ)
// with W_s [H, H], micro-batches x [T, H] drawn from the seed, and the loss
// 0.5·Σ y² / (C·T·H) of the last stage summed over the C micro-batches. It
// stands in for the DeepSeek-V3 stages (which plug into the same Stages
// interface) so the executor's gradients can be checked against a
// non-pipelined step and its timeline against the simulator.
//
// Gradient rule: dz = dy ⊙ (1 - y²); dx = dz · W_s (=); dW_s += dzᵀ · x (+=,
// in backward_weight, deferred for B_input). GEMMs over the CPU backend
// (OpenBLAS sgemm, fp32).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "parallel/schedule/executor.hpp"

namespace moelab::schedule {

struct ChainModel {
  int num_stages = 4;
  int hidden = 8;            // H
  int tokens = 3;            // T per micro-batch
  int num_microbatches = 8;  // C
  uint64_t seed = 7;
  int64_t boundary_numel() const { return static_cast<int64_t>(tokens) * hidden; }
  std::vector<float> weight(int stage) const;  // [H, H], N(0, 1.5²/H)
  std::vector<float> input(int mb) const;      // [T, H], N(0, 1)
  // FLOPs of one stage's forward (2·T·H²); backward input and weight the same each.
  double forward_flops() const { return 2.0 * tokens * static_cast<double>(hidden) * hidden; }
};

class ChainStages : public Stages {
 public:
  // held_stages: the stages this rank holds (a stage held twice, as DualPipe
  // holds stage r for one direction and PP-1-r for the other, gets one copy).
  ChainStages(const ChainModel& model, const std::vector<int>& held_stages);
  int64_t boundary_numel(int) const override { return model_.boundary_numel(); }
  void forward(int mb, int stage, std::span<const float> input, std::span<float> output) override;
  void backward_input(int mb, int stage, std::span<const float> grad_output, std::span<float> grad_input,
                      bool defer_weight) override;
  void backward_weight(int mb, int stage) override;

  double loss() const { return loss_; }  // summed over the micro-batches whose last stage ran here
  const std::map<int, std::vector<float>>& grads() const { return grads_; }  // stage -> dW [H, H]
  size_t live_activations() const { return saved_.size(); }

 private:
  struct Saved {
    std::vector<float> x, y, dz;  // [T, H] each
  };
  const ChainModel& model_;
  std::map<int, std::vector<float>> weights_, grads_;
  std::map<std::pair<int, int>, Saved> saved_;  // (mb, stage)
  double loss_ = 0;
};

// The stages rank `rank` holds in schedule s.
std::vector<int> held_stages(const Schedule& s, int rank);

// The non-pipelined step: every micro-batch through every stage and back, in
// one process. Returns the loss and dW of every stage.
std::pair<double, std::vector<std::vector<float>>> chain_reference(const ChainModel& model);

}  // namespace moelab::schedule
