// Device discovery and the CUDA error check. Host code only.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/error.hpp"

#define MOE_CUDA_CHECK(call)                                                              \
  do {                                                                                    \
    cudaError_t moe_cuda_rc_ = (call);                                                    \
    MOE_CHECK(moe_cuda_rc_ == cudaSuccess) << "CUDA call " #call " failed: "              \
                                           << cudaGetErrorString(moe_cuda_rc_);           \
  } while (0)

namespace moelab::cuda {

// Number of usable GPUs; 0 (not an error) when there is no driver or device.
int device_count();
// "NVIDIA H100 80GB HBM3 (sm_90)" or why there is none.
std::string device_description();

}  // namespace moelab::cuda
