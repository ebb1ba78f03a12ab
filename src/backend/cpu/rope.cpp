#include "backend/cpu/rope.hpp"

#include <cmath>

#include "core/error.hpp"
#include "kernels/shared/rope.hpp"

namespace moelab::cpu {

template <typename T>
RopeTable<T> make_rope_table(const std::vector<double>& inv_freq, int64_t max_positions, double mscale) {
  RopeTable<T> table;
  const int64_t pairs = static_cast<int64_t>(inv_freq.size());
  table.dim = 2 * pairs;
  table.max_positions = max_positions;
  table.cos.resize(max_positions * pairs);
  table.sin.resize(max_positions * pairs);
  for (int64_t p = 0; p < max_positions; ++p)
    for (int64_t i = 0; i < pairs; ++i) {
      // NOTE: the angle in double, as float32 torch computes t * inv_freq in
      // float; the difference is below FP32 tolerance for positions < 2^17.
      const double angle = static_cast<double>(p) * inv_freq[i];
      table.cos[p * pairs + i] = static_cast<T>(std::cos(angle) * mscale);
      table.sin[p * pairs + i] = static_cast<T>(std::sin(angle) * mscale);
    }
  return table;
}

template <typename T>
void rope_apply(T* x, int64_t tokens, int64_t token_stride, int64_t heads, int64_t head_stride,
                const int32_t* positions, const RopeTable<T>& table, bool inverse) {
  const int64_t pairs = table.dim / 2;
  const T sign = inverse ? T(-1) : T(1);
  for (int64_t t = 0; t < tokens; ++t)
    MOE_CHECK(positions[t] >= 0 && positions[t] < table.max_positions)
        << "rope: position " << positions[t] << " outside the table of " << table.max_positions << " positions";
#pragma omp parallel for schedule(static) if (tokens * heads * pairs > 16384)
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t pos = positions[t];
    const T* c = table.cos.data() + pos * pairs;
    const T* s = table.sin.data() + pos * pairs;
    for (int64_t h = 0; h < heads; ++h) {
      T* v = x + t * token_stride + h * head_stride;
      for (int64_t i = 0; i < pairs; ++i) shared::rope_rotate_pair(&v[2 * i], &v[2 * i + 1], c[i], sign * s[i]);
    }
  }
}

template RopeTable<float> make_rope_table<float>(const std::vector<double>&, int64_t, double);
template RopeTable<double> make_rope_table<double>(const std::vector<double>&, int64_t, double);
template void rope_apply<float>(float*, int64_t, int64_t, int64_t, int64_t, const int32_t*, const RopeTable<float>&,
                                bool);
template void rope_apply<double>(double*, int64_t, int64_t, int64_t, int64_t, const int32_t*,
                                 const RopeTable<double>&, bool);

}  // namespace moelab::cpu
