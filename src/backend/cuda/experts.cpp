#include "backend/cuda/experts.hpp"

#include "backend/cpu/permute.hpp"
#include "backend/cuda/device_array.hpp"
#include "backend/cuda/grouped_mlp.hpp"
#include "core/error.hpp"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "model/context.hpp"

namespace moelab::cuda {

struct CudaExperts::Impl {
  DeviceGroupedMlp mlp;
  int64_t num_experts;
  cpu::PermuteIndex index;
  bool forward_done = false;
  // Saved by forward for backward: xp [R, H], yp [R, H], weight [T, K] (and the index on the device).
  DeviceArray<float> x, xp, yp, y, weight;
  // Backward: dy [T, H] (then dx), dyp [R, H], dxp [R, H], d_weight [T, K].
  DeviceArray<float> dy, dyp, dxp, d_weight;
  DeviceArray<int32_t> token_of, row_of;

  Impl(const std::vector<MlpParams<float>>& experts, GemmPrecision precision)
      : mlp(experts, precision), num_experts(static_cast<int64_t>(experts.size())) {}
};

CudaExperts::CudaExperts(const std::vector<MlpParams<float>>& experts, GemmPrecision precision)
    : impl_(std::make_unique<Impl>(experts, precision)) {}

CudaExperts::~CudaExperts() = default;

void CudaExperts::forward(Tensor<float>& y, const Tensor<float>& x, const Tensor<int32_t>& topk_idx,
                          const Tensor<float>& topk_weight) {
  Impl& m = *impl_;
  const int64_t E = m.num_experts, H = x.dim(-1), tokens = x.numel() / H;
  const int64_t K = topk_idx.numel() / tokens;
  cpu::make_permute_index(m.index, topk_idx.ptr(), tokens, K, E);
  const int64_t R = m.index.rows();
  const int32_t* token_of = m.token_of.upload(m.index.token_of.data(), R);
  m.row_of.upload(m.index.row_of.data(), R);
  const float* dx = m.x.upload(x.ptr(), tokens * H);
  float* xp = m.xp.reserve(R * H);
  permute_rows(xp, dx, token_of, R, H, nullptr);
  float* yp = m.yp.reserve(R * H);
  m.mlp.forward(yp, xp, m.index.expert_offsets);
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
  const int64_t H = dy.dim(-1), tokens = m.index.tokens, K = m.index.top_k, R = m.index.rows();
  MOE_CHECK(dy.numel() == tokens * H) << "CudaExperts::backward: dy " << shape_str(dy.shape) << " for " << tokens
                                      << " tokens of " << H;
  const float* ddy = m.dy.upload(dy.ptr(), tokens * H);
  float* dyp = m.dyp.reserve(R * H);
  float* dw_topk = m.d_weight.reserve(tokens * K);
  unpermute_backward(dyp, dw_topk, ddy, m.yp.get(), m.weight.get(), m.row_of.get(), tokens, K, H, nullptr);
  float* dxp = m.dxp.reserve(R * H);
  m.mlp.backward(dxp, dyp);
  // dx = unweighted unpermute of dxp (permute's backward); dy is consumed, its buffer takes dx.
  unpermute_rows(m.dy.get(), dxp, nullptr, m.row_of.get(), tokens, K, H, nullptr);
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
