// The grouped SwiGLU FFN of a layer's routed experts on the GPU, over rows
// grouped by expert: the device twin of grouped_mlp_forward/backward
// (model/experts.hpp), shared by the single-GPU CudaExperts and the
// expert-parallel NCCL experts. Same ops in the same order as the CPU:
//   forward   per expert gate and up GEMMs into one [R, 2I] gate|up buffer,
//             SwiGLU, the down GEMM
//   backward  per expert dh = dyp W_down and W_down.grad += dyp^T h, SwiGLU
//             backward in place, dxp = dg W_gate + du W_up, W_gate.grad +=
//             dg^T xp, W_up.grad += du^T xp
// GEMMs through cuBLAS (kernels' gemm_f32): FP32 without TF32, or BF16
// inputs with FP32 accumulation; fp8 is refused. Each weight is copied to
// the device on its first use by this object and kept; each weight gradient
// is one GEMM into device scratch, added into the host Param::grad.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "backend/cuda/device_array.hpp"
#include "model/experts.hpp"

namespace moelab::cuda {

class DeviceGroupedMlp {
 public:
  DeviceGroupedMlp(const std::vector<MlpParams<float>>& experts, GemmPrecision precision);
  // yp [R, H] (device, =) from xp [R, H] (device; must stay unchanged until
  // backward); expert e serves rows offsets[e] .. offsets[e+1] (host, E + 1).
  void forward(float* yp, const float* xp, const std::vector<int64_t>& offsets);
  // dxp [R, H] (device, =) from dyp [R, H] (device) after forward; expert weight grads += (host).
  void backward(float* dxp, const float* dyp);
  int64_t inner() const;

 private:
  const float* device_weight(const Param<float>* p);
  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
            float beta, float* c, int64_t ldc);
  void weight_grad(Param<float>* p, const float* dy_rows, int64_t ldy, const float* x_rows, int64_t ldx, int64_t rows);

  std::vector<MlpParams<float>> experts_;
  GemmPrecision precision_;
  std::vector<int64_t> offsets_;
  const float* xp_ = nullptr;
  bool forward_done_ = false;
  std::map<const float*, std::unique_ptr<DeviceArray<float>>> weights_;  // by host address
  DeviceArray<float> gu_, h_, dh_, dw_;  // [R, 2I], [R, I], [R, I], [N * K] scratch
  std::vector<float> dw_host_;
};

}  // namespace moelab::cuda
