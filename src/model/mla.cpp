#include "model/mla.hpp"

#include <algorithm>
#include <cmath>

#include "backend/cpu/attention.hpp"
#include "model/rmsnorm.hpp"

namespace moelab {

namespace {

struct MlaDims {
  int64_t H, nh, dn, dr, dqk, dv, Dc;
  explicit MlaDims(const ModelConfig& c)
      : H(c.hidden_size), nh(c.num_attention_heads), dn(c.qk_nope_head_dim), dr(c.qk_rope_head_dim),
        dqk(c.qk_head_dim()), dv(c.v_head_dim), Dc(c.kv_lora_rank) {}
};

}  // namespace

template <typename T>
void mla_forward(Tensor<T>& y, MlaSaved<T>& s, const MlaParams<T>& p, const Tensor<T>& x, const ModelConfig& c,
                 SeqShape shape, const MlaRope<T>& rope, const ModelContext<T>& ctx) {
  const MlaDims d(c);
  const int64_t T_ = shape.tokens();
  MOE_CHECK(x.numel() == T_ * d.H) << "mla: input " << shape_str(x.shape) << " for " << shape.batch << " x "
                                   << shape.seq_len << " tokens of " << d.H;
  const GemmPrecision prec = ctx.precision;
  s.x = x;
  s.positions.resize(T_);
  for (int64_t t = 0; t < T_; ++t) s.positions[t] = static_cast<int32_t>(t % shape.seq_len);

  // q path
  if (p.q_a_proj) {
    linear_forward(s.q_a, x, *p.q_a_proj, prec);
    rmsnorm_forward(s.q_a_norm, s.q_a_inv_rms, s.q_a, *p.q_a_layernorm, c.rms_norm_eps);
    linear_forward(s.q, s.q_a_norm, *p.q_b_proj, prec);
  } else {
    linear_forward(s.q, x, *p.q_proj, prec);
  }
  cpu::rope_apply(s.q.ptr() + d.dn, T_, d.nh * d.dqk, d.nh, d.dqk, s.positions.data(), rope.table, false);

  // kv path: latent c and the shared rope key
  Tensor<T>& kv_a = s.kv_a;
  linear_forward(kv_a, x, *p.kv_a_proj_with_mqa, prec);  // [T, Dc + dr]
  prepare(s.c, {T_, d.Dc});
  for (int64_t t = 0; t < T_; ++t) std::copy_n(kv_a.ptr() + t * (d.Dc + d.dr), d.Dc, s.c.ptr() + t * d.Dc);
  cpu::rope_apply(kv_a.ptr() + d.Dc, T_, d.Dc + d.dr, 1, 0, s.positions.data(), rope.table, false);
  rmsnorm_forward(s.c_norm, s.c_inv_rms, s.c, *p.kv_a_layernorm, c.rms_norm_eps);
  linear_forward(s.kv, s.c_norm, *p.kv_b_proj, prec);  // [T, nh*(dn+dv)]

  prepare(s.k, {T_, d.nh, d.dqk});
  prepare(s.v, {T_, d.nh, d.dv});
  for (int64_t t = 0; t < T_; ++t)
    for (int64_t h = 0; h < d.nh; ++h) {
      const T* kvh = s.kv.ptr() + (t * d.nh + h) * (d.dn + d.dv);
      T* kh = s.k.ptr() + (t * d.nh + h) * d.dqk;
      std::copy_n(kvh, d.dn, kh);
      std::copy_n(kv_a.ptr() + t * (d.Dc + d.dr) + d.Dc, d.dr, kh + d.dn);
      std::copy_n(kvh + d.dn, d.dv, s.v.ptr() + (t * d.nh + h) * d.dv);
    }

  const cpu::AttentionShape as{shape.batch, shape.seq_len, d.nh, d.dqk, d.dv};
  prepare(s.probs, {shape.batch, d.nh, shape.seq_len, shape.seq_len});
  prepare(s.o, {T_, d.nh * d.dv});
  cpu::attention_forward(s.o.ptr(), s.probs.ptr(), s.q.ptr(), s.k.ptr(), s.v.ptr(), as, rope.softmax_scale);
  linear_forward(y, s.o, *p.o_proj, prec);
}

template <typename T>
void mla_backward(Tensor<T>& dx, MlaSaved<T>& s, const MlaParams<T>& p, const Tensor<T>& dy, const ModelConfig& c,
                  SeqShape shape, const MlaRope<T>& rope, const ModelContext<T>& ctx) {
  const MlaDims d(c);
  const int64_t T_ = shape.tokens();
  const GemmPrecision prec = ctx.precision;

  Tensor<T>& d_o = s.d_o;
  linear_backward(&d_o, *p.o_proj, dy, s.o, prec);
  Tensor<T>&dq = s.dq, &dk = s.dk, &dv = s.dv;
  prepare(dq, {T_, d.nh, d.dqk});
  prepare(dk, {T_, d.nh, d.dqk});
  prepare(dv, {T_, d.nh, d.dv});
  const cpu::AttentionShape as{shape.batch, shape.seq_len, d.nh, d.dqk, d.dv};
  cpu::attention_backward(dq.ptr(), dk.ptr(), dv.ptr(), d_o.ptr(), s.q.ptr(), s.k.ptr(), s.v.ptr(), s.o.ptr(),
                          s.probs.ptr(), as, rope.softmax_scale);

  // kv path
  Tensor<T>&dkv = s.dkv, &dkv_a = s.dkv_a;
  prepare(dkv, {T_, d.nh * (d.dn + d.dv)});
  prepare_zero(dkv_a, {T_, d.Dc + d.dr});  // k_pe gradients accumulate over heads
  for (int64_t t = 0; t < T_; ++t) {
    T* dkpe = dkv_a.ptr() + t * (d.Dc + d.dr) + d.Dc;
    for (int64_t h = 0; h < d.nh; ++h) {
      const T* dkh = dk.ptr() + (t * d.nh + h) * d.dqk;
      T* dkvh = dkv.ptr() + (t * d.nh + h) * (d.dn + d.dv);
      std::copy_n(dkh, d.dn, dkvh);
      std::copy_n(dv.ptr() + (t * d.nh + h) * d.dv, d.dv, dkvh + d.dn);
      for (int64_t i = 0; i < d.dr; ++i) dkpe[i] += dkh[d.dn + i];  // k_pe is shared by all heads
    }
  }
  cpu::rope_apply(dkv_a.ptr() + d.Dc, T_, d.Dc + d.dr, 1, 0, s.positions.data(), rope.table, true);
  Tensor<T>&dc_norm = s.dc_norm, &dc = s.dc;
  linear_backward(&dc_norm, *p.kv_b_proj, dkv, s.c_norm, prec);
  rmsnorm_backward(dc, *p.kv_a_layernorm, dc_norm, s.c, s.c_inv_rms);
  for (int64_t t = 0; t < T_; ++t) std::copy_n(dc.ptr() + t * d.Dc, d.Dc, dkv_a.ptr() + t * (d.Dc + d.dr));
  linear_backward(&dx, *p.kv_a_proj_with_mqa, dkv_a, s.x, prec);

  // q path
  cpu::rope_apply(dq.ptr() + d.dn, T_, d.nh * d.dqk, d.nh, d.dqk, s.positions.data(), rope.table, true);
  if (p.q_a_proj) {
    Tensor<T>&dqa_norm = s.dqa_norm, &dqa = s.dqa;
    linear_backward(&dqa_norm, *p.q_b_proj, dq, s.q_a_norm, prec);
    rmsnorm_backward(dqa, *p.q_a_layernorm, dqa_norm, s.q_a, s.q_a_inv_rms);
    linear_backward(&dx, *p.q_a_proj, dqa, s.x, prec, /*accumulate_dx=*/true);
  } else {
    linear_backward(&dx, *p.q_proj, dq, s.x, prec, /*accumulate_dx=*/true);
  }
}

template <typename T>
void mla_cache_init(MlaKvCache<T>& cache, const ModelConfig& c, int64_t max_positions) {
  cache.length = 0;
  cache.latent = Tensor<T>({max_positions, c.kv_lora_rank});
  cache.k_pe = Tensor<T>({max_positions, c.qk_rope_head_dim});
}

template <typename T>
void mla_decode(Tensor<T>& y, MlaKvCache<T>& cache, const MlaParams<T>& p, const Tensor<T>& x, const ModelConfig& c,
                const MlaRope<T>& rope, GemmPrecision prec) {
  const MlaDims d(c);
  const int64_t n = x.numel() / d.H, start = cache.length, P = cache.latent.dim(0);
  MOE_CHECK(start + n <= P) << "mla_decode: " << start << " cached + " << n << " new tokens exceed the cache of " << P;
  std::vector<int32_t> positions(n);
  for (int64_t i = 0; i < n; ++i) positions[i] = static_cast<int32_t>(start + i);
  // queries, as in training
  Tensor<T> q_a, q_a_norm, q_a_inv, q;
  if (p.q_a_proj) {
    linear_forward(q_a, x, *p.q_a_proj, prec);
    rmsnorm_forward(q_a_norm, q_a_inv, q_a, *p.q_a_layernorm, c.rms_norm_eps);
    linear_forward(q, q_a_norm, *p.q_b_proj, prec);
  } else {
    linear_forward(q, x, *p.q_proj, prec);
  }
  cpu::rope_apply(q.ptr() + d.dn, n, d.nh * d.dqk, d.nh, d.dqk, positions.data(), rope.table, false);
  // append the new tokens' latents and rope keys to the cache
  Tensor<T> kv_a, lat({n, d.Dc}), lat_norm, lat_inv;
  linear_forward(kv_a, x, *p.kv_a_proj_with_mqa, prec);
  for (int64_t i = 0; i < n; ++i) std::copy_n(kv_a.ptr() + i * (d.Dc + d.dr), d.Dc, lat.ptr() + i * d.Dc);
  cpu::rope_apply(kv_a.ptr() + d.Dc, n, d.Dc + d.dr, 1, 0, positions.data(), rope.table, false);
  rmsnorm_forward(lat_norm, lat_inv, lat, *p.kv_a_layernorm, c.rms_norm_eps);
  for (int64_t i = 0; i < n; ++i) {
    std::copy_n(lat_norm.ptr() + i * d.Dc, d.Dc, cache.latent.ptr() + (start + i) * d.Dc);
    std::copy_n(kv_a.ptr() + i * (d.Dc + d.dr) + d.Dc, d.dr, cache.k_pe.ptr() + (start + i) * d.dr);
  }
  cache.length = start + n;
  // attention in latent space
  const T* w = p.kv_b_proj->value.ptr();  // [nh*(dn+dv), Dc]: per head rows 0..dn-1 = W_UK^h, dn.. = W_UV^h
  Tensor<T> o({n, d.nh * d.dv});
  std::vector<T> q_lat(d.Dc), o_lat(d.Dc), scores(cache.length);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < d.nh; ++h) {
      const T* qh = q.ptr() + (i * d.nh + h) * d.dqk;
      const T* w_uk = w + h * (d.dn + d.dv) * d.Dc;
      const T* w_uv = w_uk + d.dn * d.Dc;
      std::fill(q_lat.begin(), q_lat.end(), T(0));
      for (int64_t a = 0; a < d.dn; ++a)
        for (int64_t b = 0; b < d.Dc; ++b) q_lat[b] += qh[a] * w_uk[a * d.Dc + b];
      const int64_t visible = start + i + 1;  // causal
      T m = -INFINITY, sum = 0;
      for (int64_t j = 0; j < visible; ++j) {
        T s = 0;
        for (int64_t b = 0; b < d.Dc; ++b) s += q_lat[b] * cache.latent[j * d.Dc + b];
        for (int64_t r = 0; r < d.dr; ++r) s += qh[d.dn + r] * cache.k_pe[j * d.dr + r];
        scores[j] = s * static_cast<T>(rope.softmax_scale);
        m = std::max(m, scores[j]);
      }
      for (int64_t j = 0; j < visible; ++j) sum += (scores[j] = std::exp(scores[j] - m));
      std::fill(o_lat.begin(), o_lat.end(), T(0));
      for (int64_t j = 0; j < visible; ++j)
        for (int64_t b = 0; b < d.Dc; ++b) o_lat[b] += scores[j] / sum * cache.latent[j * d.Dc + b];
      T* oh = o.ptr() + i * d.nh * d.dv + h * d.dv;
      for (int64_t v = 0; v < d.dv; ++v) {
        T acc = 0;
        for (int64_t b = 0; b < d.Dc; ++b) acc += w_uv[v * d.Dc + b] * o_lat[b];
        oh[v] = acc;
      }
    }
  linear_forward(y, o, *p.o_proj, prec);
}

double mla_flops(const ModelConfig& c, SeqShape shape) {
  const MlaDims d(c);
  const double T_ = static_cast<double>(shape.tokens());
  double macs = 0;
  if (c.q_lora_rank)
    macs += T_ * (*c.q_lora_rank) * (d.H + d.nh * d.dqk);
  else
    macs += T_ * d.H * d.nh * d.dqk;
  macs += T_ * d.H * (d.Dc + d.dr) + T_ * d.Dc * d.nh * (d.dn + d.dv) + T_ * d.nh * d.dv * d.H;
  const cpu::AttentionShape as{shape.batch, shape.seq_len, d.nh, d.dqk, d.dv};
  return 2.0 * macs + cpu::attention_flops(as);
}

#define MOELAB_MLA_INSTANTIATE(T)                                                                                  \
  template void mla_forward<T>(Tensor<T>&, MlaSaved<T>&, const MlaParams<T>&, const Tensor<T>&, const ModelConfig&, \
                               SeqShape, const MlaRope<T>&, const ModelContext<T>&);                               \
  template void mla_backward<T>(Tensor<T>&, MlaSaved<T>&, const MlaParams<T>&, const Tensor<T>&,                   \
                                const ModelConfig&, SeqShape, const MlaRope<T>&, const ModelContext<T>&); \
  template void mla_cache_init<T>(MlaKvCache<T>&, const ModelConfig&, int64_t);                                   \
  template void mla_decode<T>(Tensor<T>&, MlaKvCache<T>&, const MlaParams<T>&, const Tensor<T>&, const ModelConfig&, \
                              const MlaRope<T>&, GemmPrecision);
MOELAB_MLA_INSTANTIATE(float)
MOELAB_MLA_INSTANTIATE(double)

}  // namespace moelab
