#include "model/embedding.hpp"

#include <algorithm>

namespace moelab {

template <typename T>
void embedding_forward(Tensor<T>& y, const Param<T>& table, const int32_t* ids, int64_t tokens) {
  const int64_t vocab = table.value.dim(0), hidden = table.value.dim(1);
  prepare(y, {tokens, hidden});
  for (int64_t t = 0; t < tokens; ++t) {
    MOE_CHECK(ids[t] >= 0 && ids[t] < vocab)
        << "embedding: token id " << ids[t] << " at position " << t << " outside the vocabulary [0, " << vocab << ")";
    std::copy_n(table.value.ptr() + ids[t] * hidden, hidden, y.ptr() + t * hidden);
  }
}

template <typename T>
void embedding_backward(Param<T>& table, const Tensor<T>& dy, const int32_t* ids, int64_t tokens) {
  const int64_t hidden = table.value.dim(1);
  for (int64_t t = 0; t < tokens; ++t) {
    T* g = table.grad.ptr() + ids[t] * hidden;
    const T* d = dy.ptr() + t * hidden;
    for (int64_t i = 0; i < hidden; ++i) g[i] += d[i];
  }
}

template void embedding_forward<float>(Tensor<float>&, const Param<float>&, const int32_t*, int64_t);
template void embedding_forward<double>(Tensor<double>&, const Param<double>&, const int32_t*, int64_t);
template void embedding_backward<float>(Param<float>&, const Tensor<float>&, const int32_t*, int64_t);
template void embedding_backward<double>(Param<double>&, const Tensor<double>&, const int32_t*, int64_t);

}  // namespace moelab
