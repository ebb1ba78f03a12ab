// SwiGLU activation of DeepSeek-V3's experts and dense MLP:
//   h = silu(g) * u,  silu(g) = g * sigmoid(g)
// Backward (=): dg = dh * u * sigmoid(g) * (1 + g (1 - sigmoid(g))),  du = dh * silu(g)
// g and u may be interleaved in one buffer: element i of row r is at
// r*ld + i, so a fused [gate | up] GEMM output is used in place.
#pragma once

#include <cstdint>

namespace moelab::cpu {

// h [rows, n] (ld n); g, u [rows, n] with leading dimension ld_in.
template <typename T>
void swiglu_forward(T* h, const T* g, const T* u, int64_t rows, int64_t n, int64_t ld_in);

// dg, du (=, leading dimension ld_in) from dh [rows, n] (ld n).
template <typename T>
void swiglu_backward(T* dg, T* du, const T* dh, const T* g, const T* u, int64_t rows, int64_t n, int64_t ld_in);

inline double swiglu_flops(int64_t rows, int64_t n) { return 6.0 * rows * n; }
inline double swiglu_bytes(int64_t rows, int64_t n, int elem_bytes) { return 3.0 * elem_bytes * rows * n; }
inline double swiglu_backward_flops(int64_t rows, int64_t n) { return 12.0 * rows * n; }
inline double swiglu_backward_bytes(int64_t rows, int64_t n, int elem_bytes) { return 5.0 * elem_bytes * rows * n; }

}  // namespace moelab::cpu
