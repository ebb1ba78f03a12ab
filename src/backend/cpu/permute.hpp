// Permute/unpermute of tokens by expert: the layout grouped GEMMs run on.
// Row j of the permuted buffer holds one (token, slot) pair; rows are grouped
// by expert in expert order, and within an expert by token order (stable),
// so the permutation is a pure function of topk_idx (deterministic).
//
//   permute:    xp[row_of[t*K + k]] = x[t]
//   unpermute:  y[t] = sum_k w[t, k] * yp[row_of[t*K + k]]      (the MoE combine)
// Backward: permute's is an unweighted unpermute (dx[t] = sum_k dxp[row]);
// unpermute's is dyp[row] = w * dy[t] and dw[t, k] = dy[t] . yp[row].
#pragma once

#include <cstdint>
#include <vector>

namespace moelab::cpu {

struct PermuteIndex {
  int64_t tokens = 0, top_k = 0, num_experts = 0;
  std::vector<int64_t> expert_offsets;  // [E + 1] first permuted row of each expert
  std::vector<int32_t> row_of;          // [T * K] permuted row of (t, k)
  std::vector<int32_t> token_of;        // [T * K] source token of each permuted row
  int64_t rows() const { return tokens * top_k; }
  int64_t expert_rows(int64_t e) const { return expert_offsets[e + 1] - expert_offsets[e]; }
};

// topk_idx [T, K]; every index must be in [0, E).
void make_permute_index(PermuteIndex& index, const int32_t* topk_idx, int64_t tokens, int64_t top_k,
                        int64_t num_experts);

// xp [T*K, n] = rows of x [T, n].
template <typename T>
void permute_rows(T* xp, const T* x, const PermuteIndex& index, int64_t n);

// y [T, n] = sum_k weight[t, k] * yp[row]; weight null means 1 (permute's backward).
template <typename T>
void unpermute_rows(T* y, const T* yp, const T* weight, const PermuteIndex& index, int64_t n);

// Backward of unpermute: dyp [T*K, n] = weight * dy[t]; d_weight [T, K] = dy[t] . yp[row].
template <typename T>
void unpermute_backward(T* dyp, T* d_weight, const T* dy, const T* yp, const T* weight, const PermuteIndex& index,
                        int64_t n);

inline double permute_bytes(int64_t tokens, int64_t top_k, int64_t n, int elem_bytes) {
  return static_cast<double>(elem_bytes) * (tokens * n + tokens * top_k * n);
}
inline double unpermute_flops(int64_t tokens, int64_t top_k, int64_t n) { return 2.0 * tokens * top_k * n; }
inline double unpermute_bytes(int64_t tokens, int64_t top_k, int64_t n, int elem_bytes) {
  return static_cast<double>(elem_bytes) * (tokens * n + tokens * top_k * (n + 1));
}

}  // namespace moelab::cpu
