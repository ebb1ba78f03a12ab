#include "model/block.hpp"

#include "model/rmsnorm.hpp"

namespace moelab {

template <typename T>
void block_forward(Tensor<T>& y, BlockSaved<T>& s, const BlockParams<T>& p, const Tensor<T>& x, const ModelConfig& c,
                   SeqShape shape, const MlaRope<T>& rope, const ModelContext<T>& ctx) {
  s.x = x;
  rmsnorm_forward(s.n1, s.inv1, x, *p.input_layernorm, c.rms_norm_eps);
  Tensor<T>& a = s.attn_out;
  mla_forward(a, s.attn, p.attn, s.n1, c, shape, rope, ctx);
  prepare(s.h, x.shape);
  for (int64_t i = 0; i < a.numel(); ++i) s.h[i] = x[i] + a[i];
  rmsnorm_forward(s.n2, s.inv2, s.h, *p.post_attention_layernorm, c.rms_norm_eps);
  if (p.is_moe)
    moe_forward(y, s.moe, p.moe, s.n2, c, p.layer, ctx);
  else
    mlp_forward(y, s.mlp, p.mlp, s.n2, ctx.precision);
  for (int64_t i = 0; i < y.numel(); ++i) y[i] += s.h[i];
}

template <typename T>
void block_backward(Tensor<T>& dx, BlockSaved<T>& s, const BlockParams<T>& p, const Tensor<T>& dy,
                    const ModelConfig& c, SeqShape shape, const MlaRope<T>& rope, const ModelContext<T>& ctx) {
  Tensor<T>&dn2 = s.d_n2, &dh = s.d_h;
  if (p.is_moe)
    moe_backward(dn2, s.moe, p.moe, dy, s.moe.d_scores.numel() > 0 ? &s.moe.d_scores : nullptr, c, ctx);
  else
    mlp_backward(dn2, s.mlp, p.mlp, dy, ctx.precision);
  rmsnorm_backward(dh, *p.post_attention_layernorm, dn2, s.h, s.inv2);
  for (int64_t i = 0; i < dh.numel(); ++i) dh[i] += dy[i];
  Tensor<T>& dn1 = s.d_n1;
  mla_backward(dn1, s.attn, p.attn, dh, c, shape, rope, ctx);
  rmsnorm_backward(dx, *p.input_layernorm, dn1, s.x, s.inv1);
  for (int64_t i = 0; i < dx.numel(); ++i) dx[i] += dh[i];
}

#define MOELAB_BLOCK_INSTANTIATE(T)                                                                          \
  template void block_forward<T>(Tensor<T>&, BlockSaved<T>&, const BlockParams<T>&, const Tensor<T>&,       \
                                 const ModelConfig&, SeqShape, const MlaRope<T>&, const ModelContext<T>&);  \
  template void block_backward<T>(Tensor<T>&, BlockSaved<T>&, const BlockParams<T>&, const Tensor<T>&,      \
                                  const ModelConfig&, SeqShape, const MlaRope<T>&, const ModelContext<T>&);
MOELAB_BLOCK_INSTANTIATE(float)
MOELAB_BLOCK_INSTANTIATE(double)

}  // namespace moelab
