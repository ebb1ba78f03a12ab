// The options of `moelab train` (STYLE.md habit 11): one validated struct, the
// Boost.Program_options declarations with a default and help for every key,
// and the Megatron-Core option each balancing key corresponds to. INI files
// use sections: [model] [data] [train] [balance] [mtp] [output].
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <string>

#include "train/balance.hpp"
#include "train/optimizer.hpp"

namespace moelab::train {

struct TrainConfig {
  // [model]
  std::string model = "v3-small";
  double init_std = 0.006;
  int64_t mtp_depth = 1;            // num_nextn_predict_layers; 0: no MTP
  std::string precision = "fp32";   // GEMM precision: fp32 | bf16 | fp8
  // [data]
  std::string corpus = "data/corpus.h5";
  int64_t seq_len = 128;
  int64_t batch_size = 8;
  int64_t heldout_every = 20;
  // [train]
  int64_t steps = 300;
  uint64_t seed = 1;
  LrSchedule lr;
  AdamWConfig adamw;
  double grad_clip = 1.0;
  int64_t eval_every = 50;
  int64_t eval_batches = 4;
  int64_t log_every = 10;
  int64_t checkpoint_every = 0;  // 0: only at the end when checkpoint_dir is set
  std::string checkpoint_dir;
  std::string resume;            // a checkpoint directory to resume from
  int64_t stop_after = -1;       // stop (as if killed) after this many steps; for resume tests
  // [balance]
  std::string balance_method = "v3";
  BalanceConfig balance;
  int64_t num_groups = 0;  // 0: the preset's n_group
  int64_t group_topk = 0;  // 0: the preset's topk_group
  // [mtp]
  MtpLambdaSchedule mtp_lambda;
  // [output]
  std::string out = "results/train.h5";
  std::string run_name;  // empty: "train" or the sweep point's label
  bool force = false;

  // Throws moelab::Error naming the key.
  void validate() const;
};

namespace po = boost::program_options;

// Declares every key (with its section prefix) on the description.
void declare_train_options(po::options_description_easy_init add);

// Applies balance.method presets (v3, aux_free, aux_loss, seq_aux_loss, none)
// to expert_bias and aux_loss; "custom" keeps them.
void apply_balance_method(TrainConfig& config);

// Reads the keys back; Opts has get<T>(key) and given(key) (cli's CommandOptions).
template <typename Opts>
TrainConfig train_config_from(const Opts& o) {
  TrainConfig c;
  c.model = o.template get<std::string>("model.preset");
  c.init_std = o.template get<double>("model.init_std");
  c.mtp_depth = o.template get<int64_t>("model.mtp_depth");
  c.precision = o.template get<std::string>("model.precision");
  c.corpus = o.template get<std::string>("data.corpus");
  c.seq_len = o.template get<int64_t>("data.seq_len");
  c.batch_size = o.template get<int64_t>("data.batch_size");
  c.heldout_every = o.template get<int64_t>("data.heldout_every");
  c.steps = o.template get<int64_t>("train.steps");
  c.seed = static_cast<uint64_t>(o.template get<int64_t>("train.seed"));
  c.lr.peak_lr = o.template get<double>("train.lr");
  c.lr.final_lr = o.template get<double>("train.final_lr");
  c.lr.warmup_steps = o.template get<int64_t>("train.warmup_steps");
  c.lr.decay_start = o.template get<int64_t>("train.decay_start");
  c.lr.decay_steps = o.template get<int64_t>("train.decay_steps");
  c.adamw.beta1 = o.template get<double>("train.beta1");
  c.adamw.beta2 = o.template get<double>("train.beta2");
  c.adamw.eps = o.template get<double>("train.eps");
  c.adamw.weight_decay = o.template get<double>("train.weight_decay");
  c.adamw.bf16_moments = o.template get<bool>("train.bf16_moments");
  c.grad_clip = o.template get<double>("train.grad_clip");
  c.eval_every = o.template get<int64_t>("train.eval_every");
  c.eval_batches = o.template get<int64_t>("train.eval_batches");
  c.log_every = o.template get<int64_t>("train.log_every");
  c.checkpoint_every = o.template get<int64_t>("train.checkpoint_every");
  c.checkpoint_dir = o.template get<std::string>("train.checkpoint_dir");
  c.resume = o.template get<std::string>("train.resume");
  c.stop_after = o.template get<int64_t>("train.stop_after");
  c.balance_method = o.template get<std::string>("balance.method");
  c.balance.expert_bias = o.template get<bool>("balance.expert_bias");
  c.balance.bias_update_rate = o.template get<double>("balance.bias_update_rate");
  c.balance.bias_freeze_step = o.template get<int64_t>("balance.bias_freeze_step");
  c.balance.aux_loss = parse_aux_loss_kind(o.template get<std::string>("balance.aux_loss"));
  c.balance.aux_loss_coeff = o.template get<double>("balance.aux_loss_coeff");
  c.num_groups = o.template get<int64_t>("balance.num_groups");
  c.group_topk = o.template get<int64_t>("balance.group_topk");
  c.mtp_lambda.lambda_early = o.template get<double>("mtp.lambda");
  c.mtp_lambda.lambda_late = o.template get<double>("mtp.lambda_late");
  c.mtp_lambda.switch_step = o.template get<int64_t>("mtp.lambda_switch_step");
  c.out = o.template get<std::string>("output.out");
  c.run_name = o.template get<std::string>("output.run");
  c.force = o.template get<bool>("output.force");
  // The method preset first; keys the user gave explicitly win over it.
  apply_balance_method(c);
  if (o.given("balance.expert_bias")) c.balance.expert_bias = o.template get<bool>("balance.expert_bias");
  if (o.given("balance.aux_loss"))
    c.balance.aux_loss = parse_aux_loss_kind(o.template get<std::string>("balance.aux_loss"));
  c.validate();
  return c;
}

}  // namespace moelab::train
