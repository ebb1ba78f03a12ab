// SwiGLU of one element, single source for the CPU backend
// (src/backend/cpu/swiglu.cpp) and the CUDA kernel (kernels/swiglu.cu):
//   h = silu(g) * u = g * sigmoid(g) * u
//   dg = dh * u * sigmoid(g) * (1 + g (1 - sigmoid(g))),  du = dh * silu(g)
#pragma once

#include <math.h>

#include "kernels/shared/host_device.hpp"

namespace moelab::shared {

template <typename T>
MOE_HOST_DEVICE T swiglu_value(T g, T u) {
  return g / (T(1) + exp(-g)) * u;
}

template <typename T>
MOE_HOST_DEVICE void swiglu_grad(T* dg, T* du, T dh, T g, T u) {
  const T sig = T(1) / (T(1) + exp(-g));
  const T dg_value = dh * u * sig * (T(1) + g * (T(1) - sig));
  *du = dh * g * sig;  // written after u is read: du may alias u
  *dg = dg_value;
}

}  // namespace moelab::shared
