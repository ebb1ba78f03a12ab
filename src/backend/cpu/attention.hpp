// Causal multi-head attention over a batch of equal-length sequences, the
// training form (full K and V per head). Layout, tokens sequence-major:
//   q, k [B*S, heads, dqk]   v [B*S, heads, dv]   o [B*S, heads, dv]
//   probs [B, heads, S, S]   saved softmax (zero above the diagonal)
// scores = scale * q k^T + causal mask; probs = softmax(scores); o = probs v.
// Backward (all =):
//   dV = P^T dO;  dP = dO V^T;  dS = P ∘ (dP - rowsum(dO ∘ O));  dQ = scale dS K;  dK = scale dS^T Q
// The GEMMs are per (sequence, head) BLAS calls on strided views.
#pragma once

#include <cstdint>

namespace moelab::cpu {

struct AttentionShape {
  int64_t batch, seq_len, heads, dqk, dv;
};

template <typename T>
void attention_forward(T* o, T* probs, const T* q, const T* k, const T* v, const AttentionShape& s, double scale);

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* d_o, const T* q, const T* k, const T* v, const T* o,
                        const T* probs, const AttentionShape& s, double scale);

// FLOPs as executed: full S x S score and value GEMMs (the causal half is
// computed and masked), plus the softmax.
inline double attention_flops(const AttentionShape& s) {
  return 2.0 * s.batch * s.heads * s.seq_len * s.seq_len * (s.dqk + s.dv) + 5.0 * s.batch * s.heads * s.seq_len * s.seq_len;
}
inline double attention_backward_flops(const AttentionShape& s) {
  return 4.0 * s.batch * s.heads * s.seq_len * s.seq_len * (s.dqk + s.dv) + 4.0 * s.batch * s.heads * s.seq_len * s.seq_len;
}
inline double attention_bytes(const AttentionShape& s, int elem_bytes) {
  const double tokens = static_cast<double>(s.batch) * s.seq_len;
  return elem_bytes * (tokens * s.heads * (2.0 * s.dqk + 2.0 * s.dv) + 1.0 * s.batch * s.heads * s.seq_len * s.seq_len);
}

}  // namespace moelab::cpu
