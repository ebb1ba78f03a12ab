// MOE_HOST_DEVICE marks the single-source functions of kernels/shared/: the
// arithmetic that must be identical on CPU and GPU (one FP8 conversion, one
// RMSNorm row, one token's routing). nvcc compiles them for both sides; g++
// sees plain inline functions, so the CPU tests test the GPU's arithmetic.
#pragma once

#if defined(__CUDACC__)
#define MOE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MOE_HOST_DEVICE inline
#endif
