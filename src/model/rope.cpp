#include "model/rope.hpp"

#include <cmath>

#include "kernels/shared/rope.hpp"

namespace moelab {

RopeSetup rope_setup(const ModelConfig& c) {
  RopeSetup r;
  const int dim = static_cast<int>(c.qk_rope_head_dim);
  const auto& rs = c.rope_scaling;
  const bool yarn = rs.type == "yarn";
  double low = 0, high = 0, factor = 1;
  if (yarn) {
    factor = rs.factor;
    const double orig = static_cast<double>(rs.original_max_position_embeddings);
    low = shared::yarn_low(rs.beta_fast, dim, c.rope_theta, orig);
    high = shared::yarn_high(rs.beta_slow, dim, c.rope_theta, orig);
  }
  for (int i = 0; i < dim / 2; ++i) r.inv_freq.push_back(shared::rope_inv_freq(i, dim, c.rope_theta, factor, low, high));
  r.softmax_scale = 1.0 / std::sqrt(static_cast<double>(c.qk_head_dim()));
  if (yarn) {
    r.cos_sin_scale = shared::yarn_mscale(factor, rs.mscale) / shared::yarn_mscale(factor, rs.mscale_all_dim);
    if (rs.mscale_all_dim != 0) {
      const double m = shared::yarn_mscale(factor, rs.mscale_all_dim);
      r.softmax_scale *= m * m;
    }
  }
  return r;
}

template <typename T>
MlaRope<T> make_mla_rope(const ModelConfig& config, int64_t max_positions) {
  const RopeSetup setup = rope_setup(config);
  MlaRope<T> rope;
  rope.table = cpu::make_rope_table<T>(setup.inv_freq, max_positions, setup.cos_sin_scale);
  rope.softmax_scale = setup.softmax_scale;
  return rope;
}

template MlaRope<float> make_mla_rope<float>(const ModelConfig&, int64_t);
template MlaRope<double> make_mla_rope<double>(const ModelConfig&, int64_t);

}  // namespace moelab
