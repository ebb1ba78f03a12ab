// DeepSeek-V3 layers behind the pipeline executor's Stages interface
// (issue 6): the model's decoder layers cut into S contiguous stages
// (stage_layers), the embedding on stage 0, model.norm + lm_head + the
// cross-entropy loss and the MTP modules on stage S-1. Each rank holds a full ModelParams (same
// seed, so identical values everywhere) but only touches the parameters of
// the stages it runs; after a step the gradients are summed over the ranks
// (sum_pipeline_grads), which also sums DualPipe's two copies of a stage
// (rank r runs stage r of direction 0 and stage PP-1-r of direction 1, both
// accumulate into that rank's one ModelParams, and the all-reduce adds the
// pair) and makes ranks 0 and PP-1 share embedding and head as the paper
// notes. Memory-wasteful at scale (every rank stores every weight), exact
// and simple at the sizes moelab trains on one machine.
//
// Loss scaling: each micro-batch's loss is scaled by 1/C in the backward,
// so the summed gradients equal one step on the mean loss over the C
// micro-batches (what pipeline_reference computes in one process).
//
// The micro-batch's loss is model_forward's total plus the balance losses:
//   total = L_main + mtp_lambda / D · Σ_k L_MTP^k  +  Σ_layers L_aux
// MTP (params.mtp non-empty): the last stage runs model_head_forward /
// model_head_backward (model.hpp) after its final decoder layer: model.norm
// + lm_head + loss, then the MTP modules on the last hidden states, with the
// rank's copy of the shared embedding and lm_head (their gradients
// accumulate there and sum_pipeline_grads adds them to the first stage's).
// Auxiliary balance losses (ExtraLosses::balance set): every stage computes
// the loss of each MoE layer it holds (the last stage also the MTP
// modules' layers) right after the layer's forward, from the router's saved
// scores, and sets its d_scores (scaled by 1/C) for the layer's backward.
// Each group of tokens of the balance loss is one micro-batch (batch-wise)
// or one sequence (sequence-wise): sequence-wise equals the whole batch's
// loss of the single-process loop; batch-wise groups are micro-batches
// here (the loop's group is the whole batch), as in any micro-batched step.
//
#pragma once

#include <functional>
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

// Balance loss of one MoE layer after its forward over num_seqs sequences of
// seq_len tokens: sets moe.d_scores to d loss / d scores [T, E] (or empties
// it) and returns the loss. train/ supplies train::add_balance_loss.
using BalanceLossFn = std::function<double(MoeSaved<float>& moe, int64_t num_seqs, int64_t seq_len)>;

// The losses beyond the main cross entropy.
struct ExtraLosses {
  double mtp_lambda = 0;  // weight λ of the MTP losses (used when params.mtp is non-empty)
  BalanceLossFn balance;  // null: no auxiliary balance loss
};

// Losses summed over micro-batches (ModelStages: those this rank computed;
// pipeline_reference: the mean over the step's micro-batches).
struct LossSums {
  double loss = 0;          // main next-token cross entropy
  std::vector<double> mtp;  // L_MTP^k, k = 1..D
  double aux = 0;           // balance losses of every MoE layer (× coeff)
  double total = 0;         // loss + λ/D · Σ_k mtp[k] + aux: what the backward differentiates
  LossSums& operator+=(const LossSums& o);
  LossSums& operator*=(double scale);
};

// Sums s over comm in place (every rank gets the sum).
void sum_losses(LossSums& s, MPI_Comm comm);

class ModelStages : public schedule::Stages {
 public:
  // params: this rank's full parameter set (grads accumulate into it; MTP
  // modules run when it holds them); micro_batches: all C of this step
  // (every rank sees the same list).
  ModelStages(ModelParams<float>& params, const ModelConfig& config, int num_stages,
              const std::vector<MicroBatch>& micro_batches, const ModelContext<float>& ctx,
              const ExtraLosses& extra = {});

  int64_t boundary_numel(int mb) const override;
  void forward(int mb, int stage, std::span<const float> input, std::span<float> output) override;
  void backward_input(int mb, int stage, std::span<const float> grad_output, std::span<float> grad_input,
                      bool defer_weight) override;
  void backward_weight(int mb, int stage) override;

  // Sums of the unscaled per-micro-batch losses computed on this rank (the
  // main and MTP losses: the last stage's; aux: its stages' MoE layers);
  // sum_losses over the ranks, then / C, gives the step's mean losses.
  const LossSums& loss_sums() const { return sums_; }
  // Saved forwards plus deferred weight gradients not yet run.
  size_t live_activations() const { return saved_.size() + deferred_.size(); }
  // Expert loads [E] summed over the micro-batches' forwards, per MoE layer
  // index (only layers of held stages appear).
  const std::map<int64_t, std::vector<double>>& expert_loads() const { return loads_; }

 private:
  struct Saved {
    std::vector<BlockSaved<float>> layers;
    ModelSaved<float> head;  // last stage: model_head_forward's state (head.layers unused)
  };
  // Loads and balance loss of MoE layer `layer` after its forward.
  void after_moe_forward(int64_t layer, MoeSaved<float>& moe, SeqShape shape);
  ModelParams<float>& params_;
  const ModelConfig& config_;
  int num_stages_;
  const std::vector<MicroBatch>& mbs_;
  const ModelContext<float>& ctx_;
  ExtraLosses extra_;
  MlaRope<float> rope_;
  std::map<std::pair<int, int>, Saved> saved_;
  std::map<std::pair<int, int>, WeightGradStore<float>> deferred_;  // (mb, stage): B_input done, W pending
  std::map<int64_t, std::vector<double>> loads_;
  LossSums sums_;
};

// Sums every parameter gradient over comm (in place).
void sum_pipeline_grads(ModelParams<float>& params, MPI_Comm comm);

// The non-pipelined step in one process: model_forward, the balance loss of
// every MoE layer, model_backward on each micro-batch with the same 1/C
// scaling; returns the mean losses (grads +=).
LossSums pipeline_reference(ModelParams<float>& params, const ModelConfig& config,
                            const std::vector<MicroBatch>& micro_batches, const ModelContext<float>& ctx,
                            const ExtraLosses& extra = {});

}  // namespace moelab::pipeline
