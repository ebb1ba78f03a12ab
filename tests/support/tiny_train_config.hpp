// The v3-tiny training configuration the loop tests share (single process,
// EP over MPI): the committed corpus sample, the paper's balancing (bias +
// sequence-wise loss, with rates large enough to act within a few steps) and
// MTP. Tests override what they vary (steps, LR schedule, evaluation).
#pragma once

#include <string>

#include "train/train_options.hpp"

namespace moelab::train {

inline TrainConfig tiny_train_config() {
  TrainConfig c;
  c.model = "v3-tiny";
  c.corpus = std::string(MOELAB_TEST_FIXTURES) + "/corpus_sample.h5";
  c.heldout_every = 10;
  c.seq_len = 32;
  c.batch_size = 4;
  c.seed = 5;
  c.eval_every = 0;
  c.log_every = 0;
  c.balance_method = "v3";
  c.balance.expert_bias = true;
  c.balance.bias_update_rate = 1e-2;
  c.balance.aux_loss = AuxLossKind::sequence;
  c.balance.aux_loss_coeff = 1e-2;
  c.mtp_lambda = {0.3, 0.1, 20};
  return c;
}

}  // namespace moelab::train
