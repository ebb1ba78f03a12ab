// Training checkpoints: a directory holding
//   model.safetensors      every parameter (F32, Hugging Face names), the
//                          balancing biases included; metadata step
//   optimizer.safetensors  AdamW moments "<name>.exp_avg", "<name>.exp_avg_sq"
//                          (F32; exact for BF16 moments); metadata step
// so a checkpoint's model file loads wherever an HF checkpoint does, and a
// resumed run continues bit for bit: the data order is a function of the step
// and nothing else carries state.
#pragma once

#include <string>

#include "model/model.hpp"
#include "train/optimizer.hpp"

namespace moelab::train {

// `next_step`: the step the resumed run starts with.
void save_checkpoint(const std::string& dir, const ModelParams<float>& params, const AdamW& optimizer,
                     int64_t next_step);

// Loads parameters and optimizer state; returns next_step. Errors name the
// directory and the tensor.
int64_t load_checkpoint(const std::string& dir, ModelParams<float>& params, AdamW& optimizer);

}  // namespace moelab::train
