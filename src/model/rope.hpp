// RoPE with YaRN for MLA's decoupled rope dims, exactly as Hugging Face
// DeepSeek-V3 (reference/deepseek-v3.md §2.2; kernels/shared/rope.hpp has the
// per-dimension frequency):
//   - YaRN applies whenever rope_scaling.type == "yarn" (frequency ramp
//     between the beta_fast and beta_slow correction dims, factor);
//   - cos/sin are multiplied by mscale(factor, mscale) / mscale(factor, mscale_all_dim);
//   - the softmax scale is qk_head_dim^-0.5 times mscale(factor, mscale_all_dim)^2
//     (when mscale_all_dim is set);
//   - pairs are adjacent (x[2i], x[2i+1]) (official code; HF's de-interleave
//     permutes q and k alike, so every q.k is the same).
#pragma once

#include <vector>

#include "backend/cpu/rope.hpp"
#include "model/config.hpp"

namespace moelab {

struct RopeSetup {
  std::vector<double> inv_freq;  // [qk_rope_head_dim / 2]
  double cos_sin_scale = 1.0;    // mscale(factor, mscale) / mscale(factor, mscale_all_dim)
  double softmax_scale = 0.0;    // qk_head_dim^-0.5 * mscale(factor, mscale_all_dim)^2
};

RopeSetup rope_setup(const ModelConfig& config);

// What MLA needs: the cos/sin table for positions [0, max_positions) and the softmax scale.
template <typename T>
struct MlaRope {
  cpu::RopeTable<T> table;
  double softmax_scale = 0;
};

template <typename T>
MlaRope<T> make_mla_rope(const ModelConfig& config, int64_t max_positions);

}  // namespace moelab
