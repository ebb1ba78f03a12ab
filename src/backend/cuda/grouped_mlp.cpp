#include "backend/cuda/grouped_mlp.hpp"

#include "core/error.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

DeviceGroupedMlp::DeviceGroupedMlp(const std::vector<MlpParams<float>>& experts, GemmPrecision precision)
    : experts_(experts), precision_(precision) {
  MOE_CHECK(precision != GemmPrecision::fp8)
      << "--device cuda runs the routed experts in fp32 or bf16 (fp8 GEMMs on the GPU: moelab fp8 gemm)";
  MOE_CHECK(!experts_.empty()) << "DeviceGroupedMlp: no experts";
}

int64_t DeviceGroupedMlp::inner() const { return experts_[0].inner(); }

const float* DeviceGroupedMlp::device_weight(const Param<float>* p) {
  auto& slot = weights_[p->value.ptr()];
  if (!slot) {
    slot = std::make_unique<DeviceArray<float>>();
    slot->upload(p->value.ptr(), p->value.numel());
  }
  return slot->get();
}

void DeviceGroupedMlp::gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                            const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm_f32(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc, precision_ == GemmPrecision::bf16, nullptr);
}

// Param grad += dY^T X over `rows` rows (dY [rows, N] ld ldy, X [rows, K] ld
// ldx): one GEMM into device scratch, then added on the host (the CPU's wgrad
// adds inside its GEMM, so the rounding may differ by one addition).
void DeviceGroupedMlp::weight_grad(Param<float>* p, const float* dy_rows, int64_t ldy, const float* x_rows, int64_t ldx,
                                   int64_t rows) {
  const int64_t n = p->value.dim(0), k = p->value.dim(1);
  MOE_CHECK(p->grad.numel() == n * k) << p->name << ": no gradient buffer (parameter not trainable?)";
  gemm(true, false, n, k, rows, dy_rows, ldy, x_rows, ldx, 0.0f, dw_.reserve(n * k), k);
  dw_host_.resize(static_cast<size_t>(n * k));
  dw_.download(dw_host_.data(), n * k);
  float* g = p->grad.ptr();
  for (int64_t i = 0; i < n * k; ++i) g[i] += dw_host_[i];
}

void DeviceGroupedMlp::forward(float* yp, const float* xp, const std::vector<int64_t>& offsets) {
  const int64_t E = static_cast<int64_t>(experts_.size());
  MOE_CHECK(static_cast<int64_t>(offsets.size()) == E + 1)
      << "DeviceGroupedMlp: " << offsets.size() << " offsets for " << E << " experts";
  const int64_t H = experts_[0].hidden(), I = inner(), R = offsets[E];
  offsets_ = offsets;
  xp_ = xp;
  float* gu = gu_.reserve(R * 2 * I);
  float* h = h_.reserve(R * I);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = offsets[e + 1] - offsets[e], off = offsets[e];
    if (rows == 0) continue;
    const MlpParams<float>& p = experts_[e];
    gemm(false, true, rows, I, H, xp + off * H, H, device_weight(p.gate_proj), H, 0.0f, gu + off * 2 * I, 2 * I);
    gemm(false, true, rows, I, H, xp + off * H, H, device_weight(p.up_proj), H, 0.0f, gu + off * 2 * I + I, 2 * I);
  }
  swiglu_forward(h, gu, gu + I, R, I, 2 * I, nullptr);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = offsets[e + 1] - offsets[e], off = offsets[e];
    if (rows == 0) continue;
    gemm(false, true, rows, H, I, h + off * I, I, device_weight(experts_[e].down_proj), I, 0.0f, yp + off * H, H);
  }
  forward_done_ = true;
}

void DeviceGroupedMlp::backward(float* dxp, const float* dyp) {
  MOE_CHECK(forward_done_) << "DeviceGroupedMlp::backward before forward";
  const int64_t E = static_cast<int64_t>(experts_.size());
  const int64_t H = experts_[0].hidden(), I = inner(), R = offsets_[E];
  float* gu = gu_.get();
  const float* h = h_.get();
  float* dh = dh_.reserve(R * I);
  // dh = dyp W_down (W_down [H, I]); W_down.grad += dyp^T h
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = offsets_[e + 1] - offsets_[e], off = offsets_[e];
    if (rows == 0) continue;
    gemm(false, false, rows, I, H, dyp + off * H, H, device_weight(experts_[e].down_proj), I, 0.0f, dh + off * I, I);
    weight_grad(experts_[e].down_proj, dyp + off * H, H, h + off * I, I, rows);
  }
  // gu <- d(gu) in place
  swiglu_backward(gu, gu + I, dh, gu, gu + I, R, I, 2 * I, nullptr);
  // dxp = dg W_gate + du W_up (W [I, H]); W_gate.grad += dg^T xp, W_up.grad += du^T xp
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = offsets_[e + 1] - offsets_[e], off = offsets_[e];
    if (rows == 0) continue;
    const MlpParams<float>& p = experts_[e];
    const float* dg = gu + off * 2 * I;
    gemm(false, false, rows, H, I, dg, 2 * I, device_weight(p.gate_proj), H, 0.0f, dxp + off * H, H);
    gemm(false, false, rows, H, I, dg + I, 2 * I, device_weight(p.up_proj), H, 1.0f, dxp + off * H, H);
    weight_grad(p.gate_proj, dg, 2 * I, xp_ + off * H, H, rows);
    weight_grad(p.up_proj, dg + I, 2 * I, xp_ + off * H, H, rows);
  }
}

}  // namespace moelab::cuda
