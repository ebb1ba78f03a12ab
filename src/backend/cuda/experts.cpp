#include "backend/cuda/experts.hpp"

#include <map>

#include "backend/cpu/permute.hpp"
#include "backend/cuda/device_array.hpp"
#include "core/error.hpp"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "model/context.hpp"

namespace moelab::cuda {

struct CudaExperts::Impl {
  std::vector<MlpParams<float>> experts;
  GemmPrecision precision;
  cpu::PermuteIndex index;
  bool forward_done = false;
  // Device copies of the weights, by host address (gate, up, down per expert).
  std::map<const float*, std::unique_ptr<DeviceArray<float>>> weights;
  // Saved by forward for backward: xp [R, H], gu [R, 2I], h [R, I], yp [R, H], weight [T, K].
  DeviceArray<float> x, xp, gu, h, yp, y, weight;
  // Backward scratch: dy [T, H], dyp [R, H], dh [R, I], dxp [R, H], d_weight [T, K], dw [I * H].
  DeviceArray<float> dy, dyp, dh, dxp, d_weight, dw;
  DeviceArray<int32_t> token_of, row_of;
  std::vector<float> dw_host;

  bool bf16() const { return precision == GemmPrecision::bf16; }
  const float* device_weight(const Param<float>* p) {
    auto& slot = weights[p->value.ptr()];
    if (!slot) {
      slot = std::make_unique<DeviceArray<float>>();
      slot->upload(p->value.ptr(), p->value.numel());
    }
    return slot->get();
  }
  // Row-major C (ldc) = op(A) op(B) + beta C on the device, in this object's precision.
  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
            int64_t ldb, float beta, float* c, int64_t ldc) {
    gemm_f32(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc, bf16(), nullptr);
  }
  // Param grad += dY^T X over `rows` rows (dY [rows, N] ld ldy, X [rows, K] ld ldx): one GEMM into
  // device scratch, then added on the host (the CPU's wgrad adds in its GEMM: rounding may differ).
  void weight_grad(Param<float>* p, const float* dy_rows, int64_t ldy, const float* x_rows, int64_t ldx,
                   int64_t rows) {
    const int64_t n = p->value.dim(0), k = p->value.dim(1);
    MOE_CHECK(p->grad.numel() == n * k) << p->name << ": no gradient buffer (parameter not trainable?)";
    gemm(true, false, n, k, rows, dy_rows, ldy, x_rows, ldx, 0.0f, dw.reserve(n * k), k);
    dw_host.resize(static_cast<size_t>(n * k));
    dw.download(dw_host.data(), n * k);
    float* g = p->grad.ptr();
    for (int64_t i = 0; i < n * k; ++i) g[i] += dw_host[i];
  }
};

CudaExperts::CudaExperts(const std::vector<MlpParams<float>>& experts, GemmPrecision precision)
    : impl_(std::make_unique<Impl>()) {
  MOE_CHECK(precision != GemmPrecision::fp8)
      << "--device cuda runs the routed experts in fp32 or bf16 (fp8 GEMMs on the GPU: moelab fp8 gemm)";
  impl_->experts = experts;
  impl_->precision = precision;
}

CudaExperts::~CudaExperts() = default;

void CudaExperts::forward(Tensor<float>& y, const Tensor<float>& x, const Tensor<int32_t>& topk_idx,
                          const Tensor<float>& topk_weight) {
  Impl& m = *impl_;
  const int64_t E = static_cast<int64_t>(m.experts.size()), H = x.dim(-1), tokens = x.numel() / H;
  const int64_t K = topk_idx.numel() / tokens;
  cpu::make_permute_index(m.index, topk_idx.ptr(), tokens, K, E);
  const int64_t R = m.index.rows();
  const int64_t I = m.experts[0].inner();
  const int32_t* token_of = m.token_of.upload(m.index.token_of.data(), R);
  m.row_of.upload(m.index.row_of.data(), R);
  const float* dx = m.x.upload(x.ptr(), tokens * H);
  float* xp = m.xp.reserve(R * H);
  permute_rows(xp, dx, token_of, R, H, nullptr);
  float* gu = m.gu.reserve(R * 2 * I);
  float* h = m.h.reserve(R * I);
  float* yp = m.yp.reserve(R * H);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = m.index.expert_rows(e), off = m.index.expert_offsets[e];
    if (rows == 0) continue;
    const MlpParams<float>& p = m.experts[e];
    m.gemm(false, true, rows, I, H, xp + off * H, H, m.device_weight(p.gate_proj), H, 0.0f, gu + off * 2 * I, 2 * I);
    m.gemm(false, true, rows, I, H, xp + off * H, H, m.device_weight(p.up_proj), H, 0.0f, gu + off * 2 * I + I, 2 * I);
  }
  swiglu_forward(h, gu, gu + I, R, I, 2 * I, nullptr);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = m.index.expert_rows(e), off = m.index.expert_offsets[e];
    if (rows == 0) continue;
    m.gemm(false, true, rows, H, I, h + off * I, I, m.device_weight(m.experts[e].down_proj), I, 0.0f, yp + off * H, H);
  }
  const float* w = m.weight.upload(topk_weight.ptr(), tokens * K);
  float* dev_y = m.y.reserve(tokens * H);
  unpermute_rows(dev_y, yp, w, m.row_of.get(), tokens, K, H, nullptr);
  y.resize({tokens, H});
  m.y.download(y.ptr(), tokens * H);
  m.forward_done = true;
}

void CudaExperts::backward(Tensor<float>& dx, Tensor<float>& d_topk_weight, const Tensor<float>& dy) {
  Impl& m = *impl_;
  MOE_CHECK(m.forward_done) << "CudaExperts::backward before forward";
  const int64_t E = static_cast<int64_t>(m.experts.size()), H = dy.dim(-1), tokens = m.index.tokens;
  const int64_t K = m.index.top_k, R = m.index.rows(), I = m.experts[0].inner();
  MOE_CHECK(dy.numel() == tokens * H) << "CudaExperts::backward: dy " << shape_str(dy.shape) << " for " << tokens
                                      << " tokens of " << H;
  const float* ddy = m.dy.upload(dy.ptr(), tokens * H);
  float* dyp = m.dyp.reserve(R * H);
  float* dw_topk = m.d_weight.reserve(tokens * K);
  unpermute_backward(dyp, dw_topk, ddy, m.yp.get(), m.weight.get(), m.row_of.get(), tokens, K, H, nullptr);
  float* gu = m.gu.get();
  float* dh = m.dh.reserve(R * I);
  float* dxp = m.dxp.reserve(R * H);
  const float* xp = m.xp.get();
  const float* h = m.h.get();
  // dh = dyp W_down (W_down [H, I])
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = m.index.expert_rows(e), off = m.index.expert_offsets[e];
    if (rows == 0) continue;
    m.gemm(false, false, rows, I, H, dyp + off * H, H, m.device_weight(m.experts[e].down_proj), I, 0.0f, dh + off * I, I);
  }
  // W_down.grad += dyp^T h, before gu is overwritten (h is kept apart from gu anyway).
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = m.index.expert_rows(e), off = m.index.expert_offsets[e];
    if (rows == 0) continue;
    m.weight_grad(m.experts[e].down_proj, dyp + off * H, H, h + off * I, I, rows);
  }
  // gu <- d(gu) in place
  swiglu_backward(gu, gu + I, dh, gu, gu + I, R, I, 2 * I, nullptr);
  // dxp = dg W_gate + du W_up (W [I, H]); W_gate.grad += dg^T xp, W_up.grad += du^T xp
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = m.index.expert_rows(e), off = m.index.expert_offsets[e];
    if (rows == 0) continue;
    const MlpParams<float>& p = m.experts[e];
    float* dg = gu + off * 2 * I;
    m.gemm(false, false, rows, H, I, dg, 2 * I, m.device_weight(p.gate_proj), H, 0.0f, dxp + off * H, H);
    m.gemm(false, false, rows, H, I, dg + I, 2 * I, m.device_weight(p.up_proj), H, 1.0f, dxp + off * H, H);
    m.weight_grad(p.gate_proj, dg, 2 * I, xp + off * H, H, rows);
    m.weight_grad(p.up_proj, dg + I, 2 * I, xp + off * H, H, rows);
  }
  // dx = unweighted unpermute of dxp (permute's backward)
  float* ddx = m.dy.get();  // dy is consumed: reuse for dx [T, H]
  unpermute_rows(ddx, dxp, nullptr, m.row_of.get(), tokens, K, H, nullptr);
  dx.resize({tokens, H});
  m.dy.download(dx.ptr(), tokens * H);
  d_topk_weight.resize({tokens, K});
  m.d_weight.download(d_topk_weight.ptr(), tokens * K);
}

ExpertsFactory<float> cuda_experts_factory() {
  return [](int64_t, const std::vector<MlpParams<float>>& experts, GemmPrecision precision) {
    return std::unique_ptr<RoutedExperts<float>>(std::make_unique<CudaExperts>(experts, precision));
  };
}

}  // namespace moelab::cuda
