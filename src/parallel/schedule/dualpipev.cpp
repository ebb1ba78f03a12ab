// DualPipeV (deepseek-ai/DualPipe dualpipev.py, after Sea AI Lab's
// "cut-in-half" DualPipe): N ranks hold 2N stages in a V. Rank r holds stage
// r (phase 0, chunk 0, on the way down) and stage 2N-1-r (phase 1, chunk 1,
// on the way up); all micro-batches enter at rank 0 and their loss is
// computed there; on the last rank stage N-1 feeds stage N locally. The same
// eight steps as DualPipe (dualpipe.cpp) with h -> r, PP/2 -> N, C/2 -> C; the
// last rank runs its first nF0B1 pair un-overlapped. Table 2 (PP = 2N
// stages): bubble (PP/2-1)(F&B+B-3W), parameters 2x, activations PP+1, on
// PP/2 devices.
#include "core/error.hpp"
#include "parallel/schedule/dualpipe_steps.hpp"
#include "parallel/schedule/generators.hpp"

namespace moelab::schedule {

Schedule make_dualpipev(int num_ranks, int num_microbatches) {
  const int n = num_ranks, c = num_microbatches;
  MOE_CHECK(c >= 2 * n) << "schedule dualpipev: micro-batches (" << c << ") must be >= 2·ranks (" << 2 * n
                        << ")";
  std::vector<int> stage_rank(2 * n), stage_chunk(2 * n);
  for (int stage = 0; stage < 2 * n; ++stage) {
    stage_rank[stage] = stage < n ? stage : 2 * n - 1 - stage;
    stage_chunk[stage] = stage < n ? 0 : 1;
  }
  Schedule s = empty_schedule("dualpipev", n, c, stage_rank, stage_chunk);
  for (int r = 0; r < n; ++r) {
    detail::DualPipeRank rank;
    rank.half = n;
    rank.half_rank = r;
    rank.half_chunks = c;
    rank.runs_first_pair_apart = r == n - 1;
    rank.stage[0] = r;
    rank.stage[1] = 2 * n - 1 - r;
    rank.microbatch = [](int, int index) { return index; };
    s.ops[r] = detail::dualpipe_steps(rank);
  }
  return s;
}

}  // namespace moelab::schedule
