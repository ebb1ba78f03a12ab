// AdamW with FP32 master weights, global-norm gradient clipping and the
// learning-rate schedule of DeepSeek-V3 (§4.2: β1 0.9, β2 0.95, weight decay
// 0.1, clip 1.0; linear warm-up, constant, cosine decay).
//
// The optimizer sees parameters as flat FP32 slots (value, grad, numel), so it
// does not depend on the model's parameter container; the training loop
// builds the slots from ModelParams. Moments are FP32, or BF16 when
// bf16_moments is set (DeepSeek-V3 §3.3.4 keeps AdamW moments in BF16); the
// arithmetic is FP32 either way, only the stored moment is rounded.
//
// Update of one element at step t (1-based), decoupled weight decay
// (Loshchilov & Hutter; PyTorch AdamW order):
//   p ← p − lr·wd·p            (only where decay is set)
//   m ← β1·m + (1−β1)·g ;  v ← β2·v + (1−β2)·g²
//   p ← p − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moelab::train {

struct ParamSlot {
  std::string name;        // HF name
  float* value = nullptr;  // [numel] FP32 master weights
  float* grad = nullptr;   // [numel]
  int64_t numel = 0;
  bool weight_decay = true;  // false for norms and 1-D vectors
};

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  bool bf16_moments = false;
};

class AdamW {
 public:
  AdamW(AdamWConfig config, std::vector<ParamSlot> slots);

  // One update with learning rate lr; increments step_count().
  void step(double lr);
  int64_t step_count() const { return step_; }
  const std::vector<ParamSlot>& slots() const { return slots_; }
  const AdamWConfig& config() const { return config_; }

  // Moments of slot i as FP32 (decoded from BF16 when stored so), for
  // checkpoints; set_state restores them bit for bit.
  std::vector<float> moment1(size_t i) const;
  std::vector<float> moment2(size_t i) const;
  void set_state(int64_t step, const std::vector<std::vector<float>>& m, const std::vector<std::vector<float>>& v);

 private:
  AdamWConfig config_;
  std::vector<ParamSlot> slots_;
  std::vector<std::vector<float>> m32_, v32_;
  std::vector<std::vector<uint16_t>> m16_, v16_;
  int64_t step_ = 0;
};

// Global L2 norm of all gradients (accumulated in double, in slot order, so the
// result is deterministic); when it exceeds max_norm > 0 every gradient is
// scaled by max_norm / norm. Returns the norm before clipping.
double clip_grad_norm(const std::vector<ParamSlot>& slots, double max_norm);

// DeepSeek-V3's schedule shape (§4.2), in steps:
//   [0, warmup)                   linear warm-up to peak_lr (step+1)/warmup
//   [warmup, decay_start)         constant peak_lr
//   [decay_start, +decay_steps)   cosine from peak_lr to final_lr
//   afterwards                    final_lr
// decay_steps 0: no decay (constant after the warm-up).
struct LrSchedule {
  double peak_lr = 2.2e-4;
  double final_lr = 2.2e-5;
  int64_t warmup_steps = 0;
  int64_t decay_start = 0;
  int64_t decay_steps = 0;
  double lr(int64_t step) const;
};

// MTP loss weight λ (§4.2): lambda_early before switch_step, lambda_late from it on.
struct MtpLambdaSchedule {
  double lambda_early = 0.3;
  double lambda_late = 0.1;
  int64_t switch_step = -1;  // -1: never switch
  double lambda(int64_t step) const { return (switch_step >= 0 && step >= switch_step) ? lambda_late : lambda_early; }
};

}  // namespace moelab::train
