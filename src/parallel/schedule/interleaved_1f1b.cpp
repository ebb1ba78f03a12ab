// Interleaved 1F1B (Narayanan et al. 2021, Megatron-LM's virtual pipeline):
// the model is cut into PP·v stages and rank r holds stages r, r+PP, ...,
// r+(v-1)·PP (chunk c = stage / PP). Forwards go in groups of PP
// micro-batches per chunk: virtual forward k runs chunk (k / PP) mod v on
// micro-batch (k / (PP·v))·PP + k mod PP; backwards walk the chunks in
// reverse. Warm-up (PP-r-1)·2 + (v-1)·PP forwards, then 1F1B pairs, then
// the cool-down. As in Megatron-LM, C must be a multiple of PP. The bubble is
// (PP-1)(F+B)/v in units of a full (v-chunk) stage's F and B.
#include <algorithm>

#include "core/error.hpp"
#include "parallel/schedule/generators.hpp"

namespace moelab::schedule {

Schedule make_interleaved_1f1b(int num_ranks, int num_microbatches, int chunks_per_rank) {
  MOE_CHECK(chunks_per_rank >= 1) << "schedule interleaved_1f1b: chunks per rank must be >= 1, got "
                                  << chunks_per_rank;
  MOE_CHECK(num_microbatches % num_ranks == 0)
      << "schedule interleaved_1f1b: micro-batches (" << num_microbatches << ") must be a multiple of PP ("
      << num_ranks << "), as in Megatron-LM's interleaved schedule";
  const int p = num_ranks, v = chunks_per_rank, m = num_microbatches;
  std::vector<int> stage_rank(p * v), stage_chunk(p * v);
  for (int stage = 0; stage < p * v; ++stage) {
    stage_rank[stage] = stage % p;
    stage_chunk[stage] = stage / p;
  }
  Schedule s = empty_schedule("interleaved_1f1b", p, m, stage_rank, stage_chunk);
  const int total = m * v;
  auto mb_of = [&](int k) { return (k / (p * v)) * p + k % p; };
  auto forward = [&](int r, int k) { return Op::f(mb_of(k), ((k / p) % v) * p + r); };
  auto backward = [&](int r, int k) { return Op::b(mb_of(k), (v - 1 - (k / p) % v) * p + r); };
  for (int r = 0; r < p; ++r) {
    auto& ops = s.ops[r];
    const int warmup = m == p ? total : std::min((p - r - 1) * 2 + (v - 1) * p, total);
    int next_f = 0, next_b = 0;
    // nF: warm-up over the virtual stages.
    for (int i = 0; i < warmup; ++i) ops.push_back(forward(r, next_f++));
    // nFB: steady state.
    while (next_f < total) {
      ops.push_back(forward(r, next_f++));
      ops.push_back(backward(r, next_b++));
    }
    // nB: cool-down.
    while (next_b < total) ops.push_back(backward(r, next_b++));
  }
  return s;
}

}  // namespace moelab::schedule
