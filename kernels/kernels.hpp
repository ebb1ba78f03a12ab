// Launchers of moelab's CUDA kernels, one line per op; outputs first, then
// inputs, then sizes, then the stream. All pointers are device pointers.
// Every op has a CPU twin (the CPU backend, sharing kernels/shared/) and a
// test comparing the two wherever a GPU is present.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moelab::cuda {

// y [rows, n] = RMSNorm(x [rows, n]) * weight [n]; one block per row.
void rmsnorm_forward(float* y, const float* x, const float* weight, int64_t rows, int n, float eps,
                     cudaStream_t stream);

}  // namespace moelab::cuda
