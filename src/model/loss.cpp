#include "model/loss.hpp"

#include <cmath>
#include <vector>

namespace moelab {

template <typename T>
double cross_entropy_forward(Tensor<T>& logits, const int32_t* targets, int64_t tokens, int64_t* counted) {
  const int64_t vocab = logits.numel() / tokens;
  MOE_CHECK(vocab * tokens == logits.numel()) << "cross entropy: logits " << shape_str(logits.shape) << " for "
                                              << tokens << " tokens";
  for (int64_t t = 0; t < tokens; ++t)
    MOE_CHECK(targets[t] < vocab) << "cross entropy: target " << targets[t] << " at token " << t
                                  << " outside the vocabulary of " << vocab;
  std::vector<double> nll(tokens, 0.0);
#pragma omp parallel for schedule(static) if (tokens * vocab > 65536)
  for (int64_t t = 0; t < tokens; ++t) {
    T* row = logits.ptr() + t * vocab;
    T m = row[0];
    for (int64_t v = 1; v < vocab; ++v) m = std::max(m, row[v]);
    const T target_logit = targets[t] >= 0 ? row[targets[t]] : m;
    T sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += (row[v] = std::exp(row[v] - m));
    // -log p = log(sum) - (logit - m): no exp underflow for far-off targets
    if (targets[t] >= 0) nll[t] = std::log(static_cast<double>(sum)) - static_cast<double>(target_logit - m);
    const T inv = T(1) / sum;
    for (int64_t v = 0; v < vocab; ++v) row[v] *= inv;
  }
  double total = 0;
  int64_t n = 0;
  for (int64_t t = 0; t < tokens; ++t)
    if (targets[t] >= 0) total += nll[t], ++n;
  if (counted) *counted = n;
  return n > 0 ? total / n : 0.0;
}

template <typename T>
void cross_entropy_backward(Tensor<T>& probs, const int32_t* targets, int64_t tokens, double scale) {
  const int64_t vocab = probs.numel() / tokens;
  int64_t n = 0;
  for (int64_t t = 0; t < tokens; ++t) n += targets[t] >= 0;
  const T f = n > 0 ? static_cast<T>(scale / n) : T(0);
#pragma omp parallel for schedule(static) if (tokens * vocab > 65536)
  for (int64_t t = 0; t < tokens; ++t) {
    T* row = probs.ptr() + t * vocab;
    if (targets[t] < 0) {
      for (int64_t v = 0; v < vocab; ++v) row[v] = 0;
      continue;
    }
    for (int64_t v = 0; v < vocab; ++v) row[v] *= f;
    row[targets[t]] -= f;
  }
}

template double cross_entropy_forward<float>(Tensor<float>&, const int32_t*, int64_t, int64_t*);
template double cross_entropy_forward<double>(Tensor<double>&, const int32_t*, int64_t, int64_t*);
template void cross_entropy_backward<float>(Tensor<float>&, const int32_t*, int64_t, double);
template void cross_entropy_backward<double>(Tensor<double>&, const int32_t*, int64_t, double);

}  // namespace moelab
