#include "backend/cpu/attention.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/gemm.hpp"

namespace moelab::cpu {

template <typename T>
void attention_forward(T* o, T* probs, const T* q, const T* k, const T* v, const AttentionShape& s, double scale) {
  const int64_t S = s.seq_len, H = s.heads;
  const int64_t ldq = H * s.dqk, ldv = H * s.dv;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const T* qb = q + b * S * ldq + h * s.dqk;
      const T* kb = k + b * S * ldq + h * s.dqk;
      const T* vb = v + b * S * ldv + h * s.dv;
      T* p = probs + (b * H + h) * S * S;
      // scores [S, S] = scale * q k^T
      gemm(false, true, S, S, s.dqk, static_cast<T>(scale), qb, ldq, kb, ldq, T(0), p, S);
      // causal softmax per row, in the row's own precision
#pragma omp parallel for schedule(static) if (S * S > 16384)
      for (int64_t i = 0; i < S; ++i) {
        T* row = p + i * S;
        T m = row[0];
        for (int64_t j = 1; j <= i; ++j) m = std::max(m, row[j]);
        T sum = 0;
        for (int64_t j = 0; j <= i; ++j) sum += (row[j] = std::exp(row[j] - m));
        const T inv = T(1) / sum;
        for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
        for (int64_t j = i + 1; j < S; ++j) row[j] = 0;
      }
      // o [S, dv] = P v
      gemm(false, false, S, s.dv, S, T(1), p, S, vb, ldv, T(0), o + b * S * ldv + h * s.dv, ldv);
    }
}

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* d_o, const T* q, const T* k, const T* v, const T* o,
                        const T* probs, const AttentionShape& s, double scale) {
  const int64_t S = s.seq_len, H = s.heads;
  const int64_t ldq = H * s.dqk, ldv = H * s.dv;
  static thread_local std::vector<T> ds_buffer;  // [S, S] scratch, reused across calls
  ds_buffer.resize(S * S);
  T* const ds = ds_buffer.data();  // NOTE: a pointer, so OpenMP workers use the caller's buffer
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t qoff = b * S * ldq + h * s.dqk, voff = b * S * ldv + h * s.dv;
      const T* p = probs + (b * H + h) * S * S;
      // dV = P^T dO
      gemm(true, false, S, s.dv, S, T(1), p, S, d_o + voff, ldv, T(0), dv + voff, ldv);
      // dP = dO V^T
      gemm(false, true, S, S, s.dv, T(1), d_o + voff, ldv, v + voff, ldv, T(0), ds, S);
      // delta_i = sum_j P_ij dP_ij = dO_i . O_i ;  dS = P (dP - delta)
#pragma omp parallel for schedule(static) if (S * S > 16384)
      for (int64_t i = 0; i < S; ++i) {
        const T* doi = d_o + voff + i * ldv;
        const T* oi = o + voff + i * ldv;
        T d = 0;
        for (int64_t c = 0; c < s.dv; ++c) d += doi[c] * oi[c];
        T* row = ds + i * S;
        const T* prow = p + i * S;
        for (int64_t j = 0; j <= i; ++j) row[j] = prow[j] * (row[j] - d);
        for (int64_t j = i + 1; j < S; ++j) row[j] = 0;
      }
      // dQ = scale dS K ; dK = scale dS^T Q
      gemm(false, false, S, s.dqk, S, static_cast<T>(scale), ds, S, k + qoff, ldq, T(0), dq + qoff, ldq);
      gemm(true, false, S, s.dqk, S, static_cast<T>(scale), ds, S, q + qoff, ldq, T(0), dk + qoff, ldq);
    }
}

template void attention_forward<float>(float*, float*, const float*, const float*, const float*,
                                       const AttentionShape&, double);
template void attention_forward<double>(double*, double*, const double*, const double*, const double*,
                                        const AttentionShape&, double);
template void attention_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                        const float*, const float*, const float*, const AttentionShape&, double);
template void attention_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                         const double*, const double*, const double*, const AttentionShape&, double);

}  // namespace moelab::cpu
