#include "train/optimizer.hpp"

#include <cmath>

#include "core/bf16.hpp"
#include "core/error.hpp"

namespace moelab::train {

AdamW::AdamW(AdamWConfig config, std::vector<ParamSlot> slots) : config_(config), slots_(std::move(slots)) {
  MOE_CHECK(config_.beta1 >= 0 && config_.beta1 < 1 && config_.beta2 >= 0 && config_.beta2 < 1)
      << "AdamW betas must lie in [0, 1), got " << config_.beta1 << ", " << config_.beta2;
  for (const auto& s : slots_) {
    MOE_CHECK(s.value && s.grad && s.numel >= 0) << "AdamW: parameter " << s.name << " has no value or grad";
    if (config_.bf16_moments) {
      m16_.emplace_back(s.numel, uint16_t(0));
      v16_.emplace_back(s.numel, uint16_t(0));
    } else {
      m32_.emplace_back(s.numel, 0.0f);
      v32_.emplace_back(s.numel, 0.0f);
    }
  }
}

void AdamW::step(double lr) {
  ++step_;
  const float b1 = static_cast<float>(config_.beta1), b2 = static_cast<float>(config_.beta2);
  const float bc1 = static_cast<float>(1.0 - std::pow(config_.beta1, static_cast<double>(step_)));
  const float bc2 = static_cast<float>(1.0 - std::pow(config_.beta2, static_cast<double>(step_)));
  const float lr_f = static_cast<float>(lr), eps = static_cast<float>(config_.eps);
  const float decay = static_cast<float>(lr * config_.weight_decay);
  for (size_t i = 0; i < slots_.size(); ++i) {
    const ParamSlot& s = slots_[i];
    const float d = s.weight_decay ? decay : 0.0f;
    for (int64_t j = 0; j < s.numel; ++j) {
      const float g = s.grad[j];
      float m, v;
      if (config_.bf16_moments) {
        m = bf16_bits_to_float(m16_[i][j]);
        v = bf16_bits_to_float(v16_[i][j]);
      } else {
        m = m32_[i][j];
        v = v32_[i][j];
      }
      m = b1 * m + (1.0f - b1) * g;
      v = b2 * v + (1.0f - b2) * g * g;
      float p = s.value[j];
      p -= d * p;
      p -= lr_f * (m / bc1) / (std::sqrt(v / bc2) + eps);
      s.value[j] = p;
      if (config_.bf16_moments) {
        m16_[i][j] = float_to_bf16_bits(m);
        v16_[i][j] = float_to_bf16_bits(v);
      } else {
        m32_[i][j] = m;
        v32_[i][j] = v;
      }
    }
  }
}

std::vector<float> AdamW::moment1(size_t i) const {
  if (!config_.bf16_moments) return m32_.at(i);
  std::vector<float> out(m16_.at(i).size());
  for (size_t j = 0; j < out.size(); ++j) out[j] = bf16_bits_to_float(m16_[i][j]);
  return out;
}

std::vector<float> AdamW::moment2(size_t i) const {
  if (!config_.bf16_moments) return v32_.at(i);
  std::vector<float> out(v16_.at(i).size());
  for (size_t j = 0; j < out.size(); ++j) out[j] = bf16_bits_to_float(v16_[i][j]);
  return out;
}

void AdamW::set_state(int64_t step, const std::vector<std::vector<float>>& m,
                      const std::vector<std::vector<float>>& v) {
  MOE_CHECK(m.size() == slots_.size() && v.size() == slots_.size())
      << "optimizer state holds " << m.size() << " parameters, the model " << slots_.size();
  step_ = step;
  for (size_t i = 0; i < slots_.size(); ++i) {
    MOE_CHECK(static_cast<int64_t>(m[i].size()) == slots_[i].numel && static_cast<int64_t>(v[i].size()) == slots_[i].numel)
        << "optimizer state of " << slots_[i].name << ": " << m[i].size() << " values, expected " << slots_[i].numel;
    if (config_.bf16_moments) {
      for (int64_t j = 0; j < slots_[i].numel; ++j) {
        m16_[i][j] = float_to_bf16_bits(m[i][j]);  // exact: the values came from BF16
        v16_[i][j] = float_to_bf16_bits(v[i][j]);
      }
    } else {
      m32_[i] = m[i];
      v32_[i] = v[i];
    }
  }
}

double clip_grad_norm(const std::vector<ParamSlot>& slots, double max_norm) {
  double sum = 0.0;
  for (const auto& s : slots)
    for (int64_t j = 0; j < s.numel; ++j) sum += static_cast<double>(s.grad[j]) * s.grad[j];
  const double norm = std::sqrt(sum);
  if (max_norm > 0 && norm > max_norm) {
    const float scale = static_cast<float>(max_norm / norm);
    for (const auto& s : slots)
      for (int64_t j = 0; j < s.numel; ++j) s.grad[j] *= scale;
  }
  return norm;
}

double LrSchedule::lr(int64_t step) const {
  if (step < warmup_steps) return peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (decay_steps <= 0 || step < decay_start) return peak_lr;
  const double progress = std::min(1.0, static_cast<double>(step - decay_start) / static_cast<double>(decay_steps));
  return final_lr + (peak_lr - final_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace moelab::train
