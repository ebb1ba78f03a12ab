#include "backend/cuda/experts.hpp"

#include <map>

#include "backend/cpu/permute.hpp"
#include "core/error.hpp"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "model/context.hpp"

namespace moelab::cuda {

namespace {

struct DeviceFloats {
  float* ptr = nullptr;
  int64_t n = 0;
  DeviceFloats() = default;
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  ~DeviceFloats() {
    if (ptr) cudaFree(ptr);
  }
  float* reserve(int64_t count) {
    if (count > n) {
      if (ptr) MOE_CUDA_CHECK(cudaFree(ptr));
      ptr = nullptr;
      MOE_CUDA_CHECK(cudaMalloc(&ptr, std::max<int64_t>(1, count) * sizeof(float)));
      n = count;
    }
    return ptr;
  }
  float* upload(const float* host, int64_t count) {
    reserve(count);
    if (count) MOE_CUDA_CHECK(cudaMemcpy(ptr, host, count * sizeof(float), cudaMemcpyHostToDevice));
    return ptr;
  }
};

}  // namespace

struct CudaExperts::Impl {
  std::vector<MlpParams<float>> experts;
  GemmPrecision precision;
  cpu::PermuteIndex index;
  // Device copies of the weights, by host address (gate, up, down per expert).
  std::map<const float*, std::unique_ptr<DeviceFloats>> weights;
  DeviceFloats x, xp, g, u, h, yp, y, weight;
  int32_t* token_of = nullptr;
  int32_t* row_of = nullptr;
  int64_t index_capacity = 0;

  const float* device_weight(const Param<float>* p) {
    auto& slot = weights[p->value.ptr()];
    if (!slot) {
      slot = std::make_unique<DeviceFloats>();
      slot->upload(p->value.ptr(), p->value.numel());
    }
    return slot->ptr;
  }
  void gemm(float* out, const float* in, const float* w, int64_t m, int64_t n, int64_t k) {
    if (precision == GemmPrecision::bf16)
      gemm_xwt_bf16(out, in, w, m, n, k, nullptr);
    else
      gemm_xwt_f32(out, in, w, m, n, k, nullptr);
  }
};

CudaExperts::CudaExperts(const std::vector<MlpParams<float>>& experts, GemmPrecision precision)
    : impl_(std::make_unique<Impl>()) {
  MOE_CHECK(precision != GemmPrecision::fp8)
      << "--device cuda runs the routed experts in fp32 or bf16 (fp8 GEMMs on the GPU: moelab fp8 gemm)";
  impl_->experts = experts;
  impl_->precision = precision;
}

CudaExperts::~CudaExperts() {
  if (impl_->token_of) cudaFree(impl_->token_of);
  if (impl_->row_of) cudaFree(impl_->row_of);
}

void CudaExperts::forward(Tensor<float>& y, const Tensor<float>& x, const Tensor<int32_t>& topk_idx,
                          const Tensor<float>& topk_weight) {
  Impl& m = *impl_;
  const int64_t E = static_cast<int64_t>(m.experts.size()), H = x.dim(-1), tokens = x.numel() / H;
  const int64_t K = topk_idx.numel() / tokens;
  cpu::make_permute_index(m.index, topk_idx.ptr(), tokens, K, E);
  const int64_t R = m.index.rows();
  if (R > m.index_capacity) {
    if (m.token_of) MOE_CUDA_CHECK(cudaFree(m.token_of));
    if (m.row_of) MOE_CUDA_CHECK(cudaFree(m.row_of));
    MOE_CUDA_CHECK(cudaMalloc(&m.token_of, R * sizeof(int32_t)));
    MOE_CUDA_CHECK(cudaMalloc(&m.row_of, R * sizeof(int32_t)));
    m.index_capacity = R;
  }
  MOE_CUDA_CHECK(cudaMemcpy(m.token_of, m.index.token_of.data(), R * sizeof(int32_t), cudaMemcpyHostToDevice));
  MOE_CUDA_CHECK(cudaMemcpy(m.row_of, m.index.row_of.data(), R * sizeof(int32_t), cudaMemcpyHostToDevice));
  const float* dx = m.x.upload(x.ptr(), tokens * H);
  float* xp = m.xp.reserve(R * H);
  permute_rows(xp, dx, m.token_of, R, H, nullptr);
  float* yp = m.yp.reserve(R * H);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = m.index.expert_rows(e);
    if (rows == 0) continue;
    const MlpParams<float>& p = m.experts[e];
    const int64_t I = p.inner(), off = m.index.expert_offsets[e];
    float* g = m.g.reserve(rows * I);
    float* u = m.u.reserve(rows * I);
    float* h = m.h.reserve(rows * I);
    m.gemm(g, xp + off * H, m.device_weight(p.gate_proj), rows, I, H);
    m.gemm(u, xp + off * H, m.device_weight(p.up_proj), rows, I, H);
    swiglu_forward(h, g, u, rows, I, I, nullptr);
    m.gemm(yp + off * H, h, m.device_weight(p.down_proj), rows, H, I);
  }
  const float* w = m.weight.upload(topk_weight.ptr(), tokens * K);
  float* dy = m.y.reserve(tokens * H);
  unpermute_rows(dy, yp, w, m.row_of, tokens, K, H, nullptr);
  y.resize({tokens, H});
  MOE_CUDA_CHECK(cudaMemcpy(y.ptr(), dy, tokens * H * sizeof(float), cudaMemcpyDeviceToHost));
}

void CudaExperts::backward(Tensor<float>&, Tensor<float>&, const Tensor<float>&) {
  MOE_FAIL() << "the CUDA routed experts are forward only (training runs on --device cpu)";
}

ExpertsFactory<float> cuda_experts_factory() {
  return [](int64_t, const std::vector<MlpParams<float>>& experts, GemmPrecision precision) {
    return std::unique_ptr<RoutedExperts<float>>(std::make_unique<CudaExperts>(experts, precision));
  };
}

}  // namespace moelab::cuda
