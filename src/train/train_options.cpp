#include "train/train_options.hpp"

#include "core/error.hpp"

namespace moelab::train {

void declare_train_options(po::options_description_easy_init add) {
  add  // [model]
      ("model.preset", po::value<std::string>()->default_value("v3-small"),
       "model: a preset (v3-small, v3-tiny, ...) or a path to a Hugging Face config.json")  //
      ("model.init_std", po::value<double>()->default_value(0.006),
       "std of the normal initialisation of weight matrices (DeepSeek-V3 §4.2: 0.006)")  //
      ("model.mtp_depth", po::value<int64_t>()->default_value(1),
       "multi-token prediction depth D (num_nextn_predict_layers; Megatron-Core mtp_num_layers); 0 = no MTP")  //
      ("model.precision", po::value<std::string>()->default_value("fp32"), "GEMM precision: fp32, bf16 or fp8")
      // [data]
      ("data.corpus", po::value<std::string>()->default_value("data/corpus.h5"),
       "corpus file (scripts/prepare_corpus.sh builds data/corpus.h5; tests use tests/fixtures/corpus_sample.h5)")  //
      ("data.seq_len", po::value<int64_t>()->default_value(128), "tokens per packed sequence (Megatron-Core seq_length)")  //
      ("data.batch_size", po::value<int64_t>()->default_value(8),
       "sequences per step, the global batch (Megatron-Core global_batch_size)")  //
      ("data.heldout_every", po::value<int64_t>()->default_value(20),
       "document i is held out for evaluation when i % N == N-1")
      // [train]
      ("train.steps", po::value<int64_t>()->default_value(300), "optimizer steps (Megatron-Core train_iters)")  //
      ("train.seed", po::value<int64_t>()->default_value(1), "seed of initialisation and data order")  //
      ("train.lr", po::value<double>()->default_value(3e-3), "peak learning rate (paper: 2.2e-4 at 671B)")  //
      ("train.final_lr", po::value<double>()->default_value(3e-4), "learning rate at the end of the cosine decay")  //
      ("train.warmup_steps", po::value<int64_t>()->default_value(20), "linear warm-up steps (Megatron-Core lr_warmup_iters)")  //
      ("train.decay_start", po::value<int64_t>()->default_value(150), "step at which the cosine decay starts")  //
      ("train.decay_steps", po::value<int64_t>()->default_value(150),
       "length of the cosine decay in steps; 0 = constant after warm-up (Megatron-Core lr_decay_iters)")  //
      ("train.beta1", po::value<double>()->default_value(0.9), "AdamW β1 (Megatron-Core adam_beta1)")  //
      ("train.beta2", po::value<double>()->default_value(0.95), "AdamW β2 (Megatron-Core adam_beta2)")  //
      ("train.eps", po::value<double>()->default_value(1e-8), "AdamW ε (Megatron-Core adam_eps)")  //
      ("train.weight_decay", po::value<double>()->default_value(0.1),
       "decoupled weight decay of matrices (norms and biases excluded; Megatron-Core weight_decay)")  //
      ("train.bf16_moments", po::value<bool>()->default_value(false),
       "store AdamW moments in BF16 (DeepSeek-V3 §3.3.4; Megatron-Core exp_avg_dtype/exp_avg_sq_dtype bf16)")  //
      ("train.grad_clip", po::value<double>()->default_value(1.0), "global gradient-norm clip; 0 = off (Megatron-Core clip_grad)")  //
      ("train.eval_every", po::value<int64_t>()->default_value(50), "evaluate on the held-out split every N steps and at the end")  //
      ("train.eval_batches", po::value<int64_t>()->default_value(4), "held-out batches per evaluation (Megatron-Core eval_iters)")  //
      ("train.log_every", po::value<int64_t>()->default_value(10), "print a progress line every N steps")  //
      ("train.checkpoint_every", po::value<int64_t>()->default_value(0),
       "save a checkpoint every N steps into train.checkpoint_dir (0: only at the end)")  //
      ("train.checkpoint_dir", po::value<std::string>()->default_value(""),
       "directory for checkpoints (model.safetensors in HF names, optimizer.h5 beside it); empty = none")  //
      ("train.resume", po::value<std::string>()->default_value(""),
       "resume from this checkpoint directory; the curve continues as if never stopped")  //
      ("train.stop_after", po::value<int64_t>()->default_value(-1),
       "stop after this many steps, leaving the run incomplete (to test resume); -1 = run all steps")
      // [balance]
      ("balance.method", po::value<std::string>()->default_value("v3"),
       "preset over the keys below: v3 (expert bias + complementary sequence-wise loss, α = aux_loss_coeff, "
       "paper 1e-4), aux_free (bias only), aux_loss (batch-wise aux loss, no bias), seq_aux_loss "
       "(sequence-wise aux loss, no bias), none, custom; balance.expert_bias or balance.aux_loss given explicitly win")  //
      ("balance.expert_bias", po::value<bool>()->default_value(true),
       "auxiliary-loss-free balancing: per-expert bias in top-k selection (Megatron-Core "
       "moe_router_enable_expert_bias)")  //
      ("balance.bias_update_rate", po::value<double>()->default_value(1e-2),
       "Megatron-Core moe_router_bias_update_rate: γ of b_i += γ·sign(mean load − load_i) after each step "
       "(paper 0.001 over ~1e5 steps at LR 2.2e-4; 0.01 suits runs of a few hundred steps at LR 3e-3)")  //
      ("balance.bias_freeze_step", po::value<int64_t>()->default_value(-1),
       "no bias update from this step on (the paper's γ = 0 for the last 500B tokens); -1 = never freeze")  //
      ("balance.aux_loss", po::value<std::string>()->default_value("seq_aux_loss"),
       "balance loss: none, aux_loss (batch-wise) or seq_aux_loss (sequence-wise, Eq. 17-20) (Megatron-Core "
       "moe_router_load_balancing_type)")  //
      ("balance.aux_loss_coeff", po::value<double>()->default_value(1e-4),
       "α of the balance loss (Megatron-Core moe_aux_loss_coeff; paper's complementary loss 1e-4)")  //
      ("balance.num_groups", po::value<int64_t>()->default_value(0),
       "expert groups of group-limited routing, 0 = the model's n_group (Megatron-Core moe_router_num_groups)")  //
      ("balance.group_topk", po::value<int64_t>()->default_value(0),
       "groups kept per token, 0 = the model's topk_group (Megatron-Core moe_router_group_topk)")
      // [mtp]
      ("mtp.lambda", po::value<double>()->default_value(0.3), "MTP loss weight λ (paper 0.3 for the first 10T tokens; "
                                                              "Megatron-Core mtp_loss_scaling_factor)")  //
      ("mtp.lambda_late", po::value<double>()->default_value(0.1), "λ from mtp.lambda_switch_step on (paper 0.1)")  //
      ("mtp.lambda_switch_step", po::value<int64_t>()->default_value(-1), "step at which λ becomes lambda_late; -1 = never")
      // [output]
      ("output.out", po::value<std::string>()->default_value("results/train.h5"), "results file (HDF5)")  //
      ("output.run", po::value<std::string>()->default_value(""),
       "run group name; empty = 'train', or the sweep point's label")  //
      ("output.force", po::value<bool>()->default_value(false), "overwrite the results file if it exists");
}

void apply_balance_method(TrainConfig& c) {
  const std::string& m = c.balance_method;
  if (m == "custom") return;
  if (m == "v3") {
    c.balance.expert_bias = true;
    c.balance.aux_loss = AuxLossKind::sequence;
  } else if (m == "aux_free") {
    c.balance.expert_bias = true;
    c.balance.aux_loss = AuxLossKind::none;
  } else if (m == "aux_loss") {
    c.balance.expert_bias = false;
    c.balance.aux_loss = AuxLossKind::batch;
  } else if (m == "seq_aux_loss") {
    c.balance.expert_bias = false;
    c.balance.aux_loss = AuxLossKind::sequence;
  } else if (m == "none") {
    c.balance.expert_bias = false;
    c.balance.aux_loss = AuxLossKind::none;
  } else {
    MOE_FAIL() << "balance.method '" << m << "': expected v3, aux_free, aux_loss, seq_aux_loss, none or custom";
  }
}

void TrainConfig::validate() const {
  MOE_CHECK(init_std > 0) << "model.init_std must be positive, got " << init_std;
  MOE_CHECK(mtp_depth >= 0 && mtp_depth <= 4) << "model.mtp_depth must be in [0, 4], got " << mtp_depth;
  MOE_CHECK(precision == "fp32" || precision == "bf16" || precision == "fp8")
      << "model.precision '" << precision << "': expected fp32, bf16 or fp8";
  MOE_CHECK(seq_len >= 2) << "data.seq_len must be >= 2, got " << seq_len;
  MOE_CHECK(batch_size >= 1) << "data.batch_size must be >= 1, got " << batch_size;
  MOE_CHECK(heldout_every >= 2) << "data.heldout_every must be >= 2, got " << heldout_every;
  MOE_CHECK(steps >= 0) << "train.steps must be >= 0, got " << steps;
  MOE_CHECK(lr.peak_lr > 0 && lr.final_lr >= 0) << "train.lr must be positive and train.final_lr >= 0";
  MOE_CHECK(lr.warmup_steps >= 0 && lr.decay_start >= 0 && lr.decay_steps >= 0)
      << "train.warmup_steps, train.decay_start and train.decay_steps must be >= 0";
  MOE_CHECK(adamw.weight_decay >= 0) << "train.weight_decay must be >= 0, got " << adamw.weight_decay;
  MOE_CHECK(grad_clip >= 0) << "train.grad_clip must be >= 0, got " << grad_clip;
  MOE_CHECK(eval_every >= 0 && eval_batches >= 0 && log_every >= 0 && checkpoint_every >= 0)
      << "train.eval_every, eval_batches, log_every and checkpoint_every must be >= 0";
  MOE_CHECK(balance.bias_update_rate >= 0) << "balance.bias_update_rate must be >= 0";
  MOE_CHECK(balance.aux_loss_coeff >= 0) << "balance.aux_loss_coeff must be >= 0";
  MOE_CHECK(num_groups >= 0 && group_topk >= 0) << "balance.num_groups and balance.group_topk must be >= 0";
  MOE_CHECK(mtp_lambda.lambda_early >= 0 && mtp_lambda.lambda_late >= 0) << "mtp.lambda values must be >= 0";
  MOE_CHECK(!out.empty()) << "output.out must name a file";
}

}  // namespace moelab::train
