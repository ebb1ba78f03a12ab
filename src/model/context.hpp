// What every layer call needs beyond its parameters and inputs: the GEMM
// precision and how routed experts are computed. The default (no factory)
// is LocalExperts; parallel/ installs a factory that returns its
// expert-parallel RoutedExperts for each MoE layer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "model/experts.hpp"

namespace moelab {

// (layer index, that layer's routed experts [E], precision) -> the implementation for one forward/backward.
template <typename T>
using ExpertsFactory = std::function<std::unique_ptr<RoutedExperts<T>>(
    int64_t layer, const std::vector<MlpParams<T>>& experts, GemmPrecision precision)>;

template <typename T>
struct ModelContext {
  GemmPrecision precision = GemmPrecision::fp32;
  ExpertsFactory<T> make_experts;  // empty: LocalExperts

  std::unique_ptr<RoutedExperts<T>> experts_for(int64_t layer, const std::vector<MlpParams<T>>& experts) const {
    if (make_experts) return make_experts(layer, experts, precision);
    return std::make_unique<LocalExperts<T>>(experts, precision);
  }
};

// Sequences in a batch: tokens are sequence-major, T = batch * seq_len,
// positions 0 .. seq_len-1 in each (causal attention within a sequence).
struct SeqShape {
  int64_t batch = 1;
  int64_t seq_len = 1;
  int64_t tokens() const { return batch * seq_len; }
};

}  // namespace moelab
