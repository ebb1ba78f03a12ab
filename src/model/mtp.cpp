#include "model/mtp.hpp"

#include <algorithm>

#include "model/embedding.hpp"
#include "model/head.hpp"
#include "model/loss.hpp"
#include "model/rmsnorm.hpp"

namespace moelab {

template <typename T>
double mtp_forward(MtpSaved<T>& s, const MtpParams<T>& p, const Param<T>& embed, const Param<T>& head,
                   const Tensor<T>& h_prev, int64_t prev_len, const std::vector<int32_t>& token_ids,
                   const std::vector<int32_t>& targets, int64_t batch, int64_t seq_len, int64_t k,
                   const ModelConfig& c, const MlaRope<T>& rope, const ModelContext<T>& ctx) {
  const int64_t H = c.hidden_size, L = seq_len - k;
  MOE_CHECK(L > 0) << "mtp: depth " << k << " needs sequences longer than " << k << " tokens, got " << seq_len;
  s.depth = k;
  s.shape = {batch, L};
  const int64_t rows = batch * L;
  s.prev_rows.resize(rows);
  s.ids.resize(rows);
  s.targets.resize(rows);
  s.h_prev.resize({rows, H});
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < L; ++i) {
      const int64_t r = b * L + i;
      s.prev_rows[r] = static_cast<int32_t>(b * prev_len + i);
      s.ids[r] = token_ids[b * seq_len + i + k];
      s.targets[r] = targets[b * seq_len + i + k];
      std::copy_n(h_prev.ptr() + s.prev_rows[r] * H, H, s.h_prev.ptr() + r * H);
    }
  embedding_forward(s.emb, embed, s.ids.data(), rows);
  rmsnorm_forward(s.en, s.en_inv, s.emb, *p.enorm, c.rms_norm_eps);
  rmsnorm_forward(s.hn, s.hn_inv, s.h_prev, *p.hnorm, c.rms_norm_eps);
  s.cat.resize({rows, 2 * H});
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(s.en.ptr() + r * H, H, s.cat.ptr() + r * 2 * H);
    std::copy_n(s.hn.ptr() + r * H, H, s.cat.ptr() + r * 2 * H + H);
  }
  linear_forward(s.proj, s.cat, *p.eh_proj, ctx.precision);
  block_forward(s.out, s.block, p.block, s.proj, c, s.shape, rope, ctx);
  rmsnorm_forward(s.fn, s.fn_inv, s.out, *p.shared_head_norm, c.rms_norm_eps);
  head_forward(s.probs, s.fn, head, ctx.precision);
  s.loss = cross_entropy_forward(s.probs, s.targets.data(), rows);
  return s.loss;
}

template <typename T>
void mtp_backward(Tensor<T>& dh_prev, MtpSaved<T>& s, const MtpParams<T>& p, Param<T>& embed, Param<T>& head,
                  const Tensor<T>* d_out, double loss_scale, const ModelConfig& c, const MlaRope<T>& rope,
                  const ModelContext<T>& ctx) {
  const int64_t H = c.hidden_size, rows = s.shape.tokens();
  cross_entropy_backward(s.probs, s.targets.data(), rows, loss_scale);
  Tensor<T> dfn, dout, dproj, dcat;
  head_backward(dfn, head, s.probs, s.fn, ctx.precision);
  rmsnorm_backward(dout, *p.shared_head_norm, dfn, s.out, s.fn_inv);
  if (d_out)
    for (int64_t i = 0; i < dout.numel(); ++i) dout[i] += (*d_out)[i];
  block_backward(dproj, s.block, p.block, dout, c, s.shape, rope, ctx);
  linear_backward(&dcat, *p.eh_proj, dproj, s.cat, ctx.precision);
  Tensor<T> den({rows, H}), dhn({rows, H}), demb, dh;
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(dcat.ptr() + r * 2 * H, H, den.ptr() + r * H);
    std::copy_n(dcat.ptr() + r * 2 * H + H, H, dhn.ptr() + r * H);
  }
  rmsnorm_backward(demb, *p.enorm, den, s.emb, s.en_inv);
  embedding_backward(embed, demb, s.ids.data(), rows);
  rmsnorm_backward(dh, *p.hnorm, dhn, s.h_prev, s.hn_inv);
  for (int64_t r = 0; r < rows; ++r) {
    T* dst = dh_prev.ptr() + static_cast<int64_t>(s.prev_rows[r]) * H;
    const T* src = dh.ptr() + r * H;
    for (int64_t i = 0; i < H; ++i) dst[i] += src[i];
  }
}

#define MOELAB_MTP_INSTANTIATE(T)                                                                                  \
  template double mtp_forward<T>(MtpSaved<T>&, const MtpParams<T>&, const Param<T>&, const Param<T>&,             \
                                 const Tensor<T>&, int64_t, const std::vector<int32_t>&, const std::vector<int32_t>&, \
                                 int64_t, int64_t, int64_t, const ModelConfig&, const MlaRope<T>&,                \
                                 const ModelContext<T>&);                                                         \
  template void mtp_backward<T>(Tensor<T>&, MtpSaved<T>&, const MtpParams<T>&, Param<T>&, Param<T>&,               \
                                const Tensor<T>*, double, const ModelConfig&, const MlaRope<T>&,                   \
                                const ModelContext<T>&);
MOELAB_MTP_INSTANTIATE(float)
MOELAB_MTP_INSTANTIATE(double)

}  // namespace moelab
