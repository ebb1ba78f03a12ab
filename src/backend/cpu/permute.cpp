#include "backend/cpu/permute.hpp"

#include "core/error.hpp"

namespace moelab::cpu {

void make_permute_index(PermuteIndex& index, const int32_t* topk_idx, int64_t tokens, int64_t top_k,
                        int64_t num_experts) {
  index.tokens = tokens;
  index.top_k = top_k;
  index.num_experts = num_experts;
  index.expert_offsets.assign(num_experts + 1, 0);
  const int64_t rows = tokens * top_k;
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t e = topk_idx[i];
    MOE_CHECK(e >= 0 && e < num_experts) << "permute: expert index " << e << " at token " << i / top_k
                                         << " outside [0, " << num_experts << ")";
    ++index.expert_offsets[e + 1];
  }
  for (int64_t e = 0; e < num_experts; ++e) index.expert_offsets[e + 1] += index.expert_offsets[e];
  index.row_of.resize(rows);
  index.token_of.resize(rows);
  std::vector<int64_t> next(index.expert_offsets.begin(), index.expert_offsets.end() - 1);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t row = next[topk_idx[i]]++;
    index.row_of[i] = static_cast<int32_t>(row);
    index.token_of[row] = static_cast<int32_t>(i / top_k);
  }
}

template <typename T>
void permute_rows(T* xp, const T* x, const PermuteIndex& index, int64_t n) {
  const int64_t rows = index.rows();
#pragma omp parallel for schedule(static) if (rows * n > 32768)
  for (int64_t row = 0; row < rows; ++row) {
    const T* src = x + static_cast<int64_t>(index.token_of[row]) * n;
    T* dst = xp + row * n;
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

template <typename T>
void unpermute_rows(T* y, const T* yp, const T* weight, const PermuteIndex& index, int64_t n) {
  const int64_t K = index.top_k;
#pragma omp parallel for schedule(static) if (index.rows() * n > 32768)
  for (int64_t t = 0; t < index.tokens; ++t) {
    T* dst = y + t * n;
    for (int64_t i = 0; i < n; ++i) dst[i] = 0;
    for (int64_t k = 0; k < K; ++k) {  // slot order: a fixed summation order
      const T w = weight ? weight[t * K + k] : T(1);
      const T* src = yp + static_cast<int64_t>(index.row_of[t * K + k]) * n;
      for (int64_t i = 0; i < n; ++i) dst[i] += w * src[i];
    }
  }
}

template <typename T>
void unpermute_backward(T* dyp, T* d_weight, const T* dy, const T* yp, const T* weight, const PermuteIndex& index,
                        int64_t n) {
  const int64_t K = index.top_k;
#pragma omp parallel for schedule(static) if (index.rows() * n > 32768)
  for (int64_t t = 0; t < index.tokens; ++t) {
    const T* g = dy + t * n;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t row = index.row_of[t * K + k];
      const T w = weight[t * K + k];
      const T* src = yp + row * n;
      T* dst = dyp + row * n;
      T d = 0;
      for (int64_t i = 0; i < n; ++i) {
        d += g[i] * src[i];
        dst[i] = w * g[i];
      }
      d_weight[t * K + k] = d;
    }
  }
}

#define MOELAB_PERMUTE_INSTANTIATE(T)                                                                   \
  template void permute_rows<T>(T*, const T*, const PermuteIndex&, int64_t);                          \
  template void unpermute_rows<T>(T*, const T*, const T*, const PermuteIndex&, int64_t);              \
  template void unpermute_backward<T>(T*, T*, const T*, const T*, const T*, const PermuteIndex&, int64_t);
MOELAB_PERMUTE_INSTANTIATE(float)
MOELAB_PERMUTE_INSTANTIATE(double)

}  // namespace moelab::cpu
