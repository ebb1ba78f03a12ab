// The training loop of `moelab train` (issue 4; DeepSeek-V3 §4.2, §4.5):
//
//   for step: batch(step) → model_forward (main + MTP losses) → balance loss
//   of every MoE layer (its gradient into the router's d_scores) →
//   model_backward → clip → AdamW(lr(step)) → expert loads summed over the
//   global batch (reduce_load) → bias update (sign rule) → log to HDF5
//   every eval_every steps: held-out loss (main model), per domain; expert
//   load per domain; MaxVio_global
//
// Deterministic: the same configuration and seed give the same numbers bit
// for bit (initialisation seeded by name, batches a function of the step,
// FP32 reductions in a fixed order); a run resumed from a checkpoint
// continues exactly as one that was not stopped.
//
// Expert computation goes through the model's RoutedExperts (hooks.context:
// parallel/ installs its expert-parallel factory) and global loads through
// hooks.reduce_load, so the expert-parallel loop is this loop.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "io/results.hpp"
#include "model/model.hpp"
#include "train/balance.hpp"
#include "train/data.hpp"
#include "train/train_options.hpp"

namespace moelab::train {

struct TrainHooks {
  LoadReducer reduce_load = local_load_reducer;  // sums [E] loads across ranks
  // Adjusts the model context (e.g. installs an expert-parallel experts factory).
  std::function<void(ModelContext<float>&)> setup_context;
  std::ostream* progress = nullptr;  // progress lines; null: quiet
  // ---- data/expert parallelism (train/ep_hooks.hpp installs these) ----
  // This rank's share of the global training batch (empty: all of it).
  std::function<Batch(const Batch&)> local_batch;
  // After model_backward, before clipping: sum/average grads across ranks.
  std::function<void(ModelParams<float>&)> reduce_grads;
  // Mean of a per-rank scalar (the logged losses) over ranks.
  std::function<double(double)> reduce_mean;
  // Load reduction for evaluation, where every rank sees every held-out
  // token (empty: reduce_load).
  LoadReducer reduce_eval_load;
  bool write_checkpoints = true;  // false on all but one rank
  // After each step's logging (every rank; `run` is null off rank 0).
  std::function<void(int64_t step, ResultsRun* run)> after_step;
  // ---- pipeline parallelism (train/pp_hooks.hpp installs this) ----
  // Replaces model_forward + balance losses + model_backward for one step
  // (MTP weighted by config.mtp_lambda at the step, as the loop does):
  // fills params' gradients of the whole (global) batch and returns its
  // losses and every MoE layer's expert loads, already summed over the
  // global batch (reduce_load is not applied to them).
  struct StepOutput {
    ModelLosses losses;
    double aux_loss = 0;                     // balance losses, summed over layers, mean over the batch
    std::vector<int64_t> moe_layers;         // HF layer indices (main model, then MTP modules')
    std::vector<std::vector<double>> loads;  // [layers][E]
  };
  std::function<StepOutput(ModelParams<float>&, const Batch&, int64_t step, ResultsRun* run,
                           const ModelContext<float>&)>
      forward_backward;
};

struct TrainSummary {
  int64_t steps_done = 0;
  double final_loss = 0;          // last step's main-model training loss
  double final_eval_loss = 0;     // last evaluation (NaN when none)
  double final_maxvio_batch = 0;  // last step, mean over MoE layers
  double final_maxvio_global = 0; // last evaluation, mean over MoE layers
  double tokens_per_s = 0;        // mean over the run's steps (after the first)
  bool stopped_early = false;     // train.stop_after
  std::vector<double> losses;     // main-model training loss per step done
};

// The resolved model configuration of a training config (preset, MTP depth,
// routing-group overrides).
ModelConfig train_model_config(const TrainConfig& config);

// Runs the loop; writes into `run` when non-null (rank 0). Throws on bad input.
TrainSummary run_training(const TrainConfig& config, ResultsRun* run, const TrainHooks& hooks = {});

// The MoE layers of a model (main layers, then the MTP modules'), in the
// order of load/ rows; valid after a forward into `saved`.
template <typename T>
struct MoeLayerRef {
  int64_t layer = 0;                  // HF layer index
  MoeSaved<T>* saved = nullptr;
  Param<T>* bias = nullptr;           // e_score_correction_bias (null without one)
  int64_t num_seqs = 0, seq_len = 0;  // token layout of this layer's input
};

template <typename T>
std::vector<MoeLayerRef<T>> moe_layers(ModelParams<T>& params, ModelSaved<T>& saved) {
  std::vector<MoeLayerRef<T>> out;
  for_each_moe_layer(params, saved, [&](BlockParams<T>& p, MoeSaved<T>& moe, SeqShape shape) {
    out.push_back({p.layer, &moe, p.moe.gate.bias, shape.batch, shape.seq_len});
  });
  return out;
}

// Balance loss of one MoE layer after its forward (its input: num_seqs
// sequences of seq_len tokens): sets moe.d_scores (the extra router-score
// gradient its backward adds; emptied when the config has no balance loss)
// and returns the loss (× coeff).
template <typename T>
double add_balance_loss(MoeSaved<T>& moe, const BalanceConfig& balance, int64_t num_seqs, int64_t seq_len,
                        int64_t num_experts, int64_t topk) {
  if (!balance.has_aux_loss()) {
    moe.d_scores = Tensor<T>();
    return 0.0;
  }
  moe.d_scores = Tensor<T>(moe.router.scores.shape);
  return balance_loss(balance.aux_loss, balance.aux_loss_coeff, moe.router.scores.ptr(), moe.router.topk_idx.ptr(),
                      num_seqs, seq_len, num_experts, topk, moe.d_scores.ptr());
}

// add_balance_loss on every MoE layer after a forward; returns the summed loss.
template <typename T>
double add_balance_losses(std::vector<MoeLayerRef<T>>& layers, const BalanceConfig& balance, int64_t num_experts,
                          int64_t topk) {
  double loss = 0;
  for (auto& l : layers) loss += add_balance_loss(*l.saved, balance, l.num_seqs, l.seq_len, num_experts, topk);
  return loss;
}

}  // namespace moelab::train
