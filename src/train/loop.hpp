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
  // Replaces model_forward + balance losses + model_backward for one step:
  // fills params' gradients of the whole (global) batch and returns its
  // losses and every MoE layer's expert loads, already summed over the
  // global batch (reduce_load is not applied to them).
  struct StepOutput {
    ModelLosses losses;
    std::vector<int64_t> moe_layers;         // HF layer indices (main model)
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
  for (size_t i = 0; i < params.layers.size() && i < saved.layers.size(); ++i) {
    BlockParams<T>& p = params.layers[i];
    if (p.is_moe) out.push_back({p.layer, &saved.layers[i].moe, p.moe.gate.bias, saved.shape.batch, saved.shape.seq_len});
  }
  for (size_t k = 0; k < params.mtp.size() && k < saved.mtp.size(); ++k) {
    BlockParams<T>& p = params.mtp[k].block;
    if (p.is_moe)
      out.push_back({p.layer, &saved.mtp[k].block.moe, p.moe.gate.bias, saved.mtp[k].shape.batch,
                     saved.mtp[k].shape.seq_len});
  }
  return out;
}

// Balance loss of every MoE layer after a forward: sets each layer's d_scores
// (the extra router-score gradient its backward adds; emptied when the
// config has no balance loss) and returns the summed loss.
template <typename T>
double add_balance_losses(std::vector<MoeLayerRef<T>>& layers, const BalanceConfig& balance, int64_t num_experts,
                          int64_t topk) {
  double loss = 0;
  for (auto& l : layers) {
    MoeSaved<T>& moe = *l.saved;
    if (!balance.has_aux_loss()) {
      moe.d_scores = Tensor<T>();
      continue;
    }
    moe.d_scores = Tensor<T>(moe.router.scores.shape);
    loss += balance_loss(balance.aux_loss, balance.aux_loss_coeff, moe.router.scores.ptr(), moe.router.topk_idx.ptr(),
                         l.num_seqs, l.seq_len, num_experts, topk, moe.d_scores.ptr());
  }
  return loss;
}

}  // namespace moelab::train
