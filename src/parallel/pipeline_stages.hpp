// DeepSeek-V3 layers behind the pipeline executor's Stages interface
// (issue 6): the model's decoder layers cut into S contiguous stages
// (stage_layers), the embedding on stage 0, model.norm + lm_head + the
// cross-entropy loss on stage S-1. Each rank holds a full ModelParams (same
// seed, so identical values everywhere) but only touches the parameters of
// the stages it runs; after a step the gradients are summed over the ranks
// (sum_pipeline_grads), which also sums DualPipe's two copies of a stage
// (rank r runs stage r of direction 0 and stage PP-1-r of direction 1, both
// accumulate into that rank's one ModelParams, and the all-reduce adds the
// pair) and makes ranks 0 and PP-1 share embedding and head as the paper
// notes. Memory-wasteful at scale (every rank stores every weight), exact
// and simple at the sizes moelab trains on one machine.
//
// Loss scaling: each micro-batch's mean cross entropy is scaled by 1/C in
// the backward, so the summed gradients equal one step on the mean loss
// over the C micro-batches (what pipeline_reference computes in one
// process).
//
// Not pipelined yet: the MTP modules (the config must have with_mtp false)
// and the auxiliary balance losses (router d_scores stay empty).
//
// Zero bubble (W): backward_input(defer_weight = true) runs the layers'
// backward under a DeferWeightGrads scope (model/linear.hpp): every linear
// layer (attention projections, dense MLP, router gate, routed and shared
// experts, lm_head) computes only its input gradient and records its weight
// GEMM; backward_weight(mb, stage) runs the recorded GEMMs. The RMSNorm
// weights' and the embedding's gradients (elementwise, cheap) stay in
// B_input, as does everything on the fp8 path (one fused numerics call).
#pragma once

#include <map>
#include <span>
#include <utility>
#include <vector>

#include "model/model.hpp"
#include "parallel/schedule/executor.hpp"

namespace moelab::pipeline {

// One micro-batch's data (token ids and targets [batch * seq_len]).
struct MicroBatch {
  std::vector<int32_t> token_ids, targets;
  int64_t batch = 1, seq_len = 1;
  int64_t tokens() const { return batch * seq_len; }
};

// Layers [first, last) of stage s out of num_stages over num_layers decoder
// layers (contiguous, sizes differ by at most one; a stage may be empty when
// num_layers < num_stages).
std::pair<int64_t, int64_t> stage_layers(int64_t num_layers, int num_stages, int stage);

class ModelStages : public schedule::Stages {
 public:
  // params: this rank's full parameter set (grads accumulate into it);
  // micro_batches: all C of this step (every rank sees the same list).
  ModelStages(ModelParams<float>& params, const ModelConfig& config, int num_stages,
              const std::vector<MicroBatch>& micro_batches, const ModelContext<float>& ctx);

  int64_t boundary_numel(int mb) const override;
  void forward(int mb, int stage, std::span<const float> input, std::span<float> output) override;
  void backward_input(int mb, int stage, std::span<const float> grad_output, std::span<float> grad_input,
                      bool defer_weight) override;
  void backward_weight(int mb, int stage) override;

  // Sum of the unscaled per-micro-batch mean losses computed on this rank
  // (the last stage's); divide the all-ranks sum by C for the step's loss.
  double loss_sum() const { return loss_sum_; }
  // Saved forwards plus deferred weight gradients not yet run.
  size_t live_activations() const { return saved_.size() + deferred_.size(); }
  // Expert loads [E] summed over the micro-batches' forwards, per MoE layer
  // index (only layers of held stages appear).
  const std::map<int64_t, std::vector<double>>& expert_loads() const { return loads_; }

 private:
  struct Saved {
    std::vector<BlockSaved<float>> layers;
    Tensor<float> h, fn, fn_inv, probs;  // last stage
  };
  ModelParams<float>& params_;
  const ModelConfig& config_;
  int num_stages_;
  const std::vector<MicroBatch>& mbs_;
  const ModelContext<float>& ctx_;
  MlaRope<float> rope_;
  std::map<std::pair<int, int>, Saved> saved_;
  std::map<std::pair<int, int>, WeightGradStore<float>> deferred_;  // (mb, stage): B_input done, W pending
  std::map<int64_t, std::vector<double>> loads_;
  double loss_sum_ = 0;
};

// Sums every parameter gradient over comm (in place).
void sum_pipeline_grads(ModelParams<float>& params, MPI_Comm comm);

// The non-pipelined step in one process: model_forward/model_backward on each
// micro-batch with the same 1/C scaling; returns the mean loss (grads +=).
double pipeline_reference(ModelParams<float>& params, const ModelConfig& config,
                          const std::vector<MicroBatch>& micro_batches, const ModelContext<float>& ctx);

}  // namespace moelab::pipeline
