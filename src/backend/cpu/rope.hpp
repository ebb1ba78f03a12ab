// Rotary position embedding of adjacent pairs (x[2i], x[2i+1]), as the
// official DeepSeek-V3 code (complex view); Hugging Face de-interleaves first,
// which permutes q and k alike and leaves every q.k unchanged.
//
//   (x0, x1) -> m * (x0 cos θ - x1 sin θ,  x0 sin θ + x1 cos θ),   θ = pos * inv_freq[i]
//
// m (YaRN's mscale ratio) is folded into the table. Backward is the
// transpose: the same rotation by -θ, times m.
#pragma once

#include <cstdint>
#include <vector>

namespace moelab::cpu {

template <typename T>
struct RopeTable {
  int64_t dim = 0;        // rotary dims (even); dim/2 pairs
  int64_t max_positions = 0;
  std::vector<T> cos, sin;  // [max_positions, dim/2], already times mscale
};

// inv_freq [dim/2]; mscale multiplies cos and sin.
template <typename T>
RopeTable<T> make_rope_table(const std::vector<double>& inv_freq, int64_t max_positions, double mscale);

// Rotates, in place, the `table.dim` values at x + t*token_stride + h*head_stride
// for every token t < tokens and head h < heads, at position positions[t].
// inverse: rotate by -θ (the backward pass).
template <typename T>
void rope_apply(T* x, int64_t tokens, int64_t token_stride, int64_t heads, int64_t head_stride,
                const int32_t* positions, const RopeTable<T>& table, bool inverse);

inline double rope_flops(int64_t tokens, int64_t heads, int64_t dim) { return 3.0 * tokens * heads * dim; }
inline double rope_bytes(int64_t tokens, int64_t heads, int64_t dim, int elem_bytes) {
  return static_cast<double>(elem_bytes) * (2.0 * tokens * heads * dim + tokens * dim);
}

}  // namespace moelab::cpu
