// Elementwise FP8 conversion on the GPU through the single-source named
// converters of kernels/shared/fp8.hpp (float_to_e4m3 / float_to_e5m2), the
// same functions the CPU encoder calls: tests/kernels/test_fp8_convert_gpu.cpp
// compares every code with the host's on a sweep of FP32 bit patterns.
#include <algorithm>

#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

namespace {

__global__ void fp8_convert_kernel(uint8_t* codes, const float* x, int64_t n, bool e5m2) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    codes[i] = e5m2 ? shared::float_to_e5m2(x[i]) : shared::float_to_e4m3(x[i]);
}

}  // namespace

void fp8_convert(uint8_t* codes, const float* x, int64_t n, bool e5m2, cudaStream_t stream) {
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65535);
  fp8_convert_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(codes, x, n, e5m2);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
