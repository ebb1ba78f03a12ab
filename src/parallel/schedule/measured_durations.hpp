// Op durations measured in a timeline (executed or simulated), to "simulate
// the executed run with the op durations measured in it" (issue 6): the
// executor's events (executor.hpp, gather_measured) give each op's compute
// time and the gaps a rank spent waiting for its inputs; from them
//
//   mean_durations       one mean per op kind (F, B, W, F&B) for all stages
//   stage_durations      one mean per (rank, stage, op kind), F&B per rank
//                        and (forward stage, backward stage) pair, and the
//                        point-to-point latency and the gap between ops seen
//                        in the timeline
//
// Why per stage: a stage is a fixed piece of the model (the embedding on the
// first, head and loss on the last, dense or MoE layers in between), which
// is what makes op times differ. Why also per rank: DualPipe runs each stage
// on two ranks (direction 0 on rank s, direction 1 on rank PP-1-s), and the
// same layers took measurably different times there (ranks sharing cores
// with different neighbours); pooling the two put DualPipe's predicted end
// times 5-10% lower than keeping them apart (4 ranks on 2 cores, README).
// For the other schedules a stage lives on one rank and the two keys agree.
// An F&B op computes the forward of one stage and the backward of another
// (DualPipe(V): the two stages a rank holds, in either order), so its time
// belongs to the ordered pair, not to either stage. The invariant
// (tests/parallel/test_measured_durations.cpp): a timeline simulated with
// per-(rank, stage) durations, a p2p latency and a gap, passed through
// stage_durations and simulated again, is reproduced exactly.
#pragma once

#include <cstdint>

#include "parallel/schedule/simulate.hpp"

namespace moelab::schedule {

// Mean op durations of a timeline: F, B, W and F&B from the ops of that kind;
// B = B_input + W when no full B ran; W = 0 when nothing was split; F&B =
// F + B when no pair ran; otherwise `fallback`'s values. p2p stays at
// fallback.p2p_s.
Durations mean_durations(const SimResult& timeline, const Durations& fallback = {});

// What a timeline shows besides op durations: the point-to-point latency and
// the gap a rank leaves between two of its ops when nothing holds it back
// (bookkeeping, sends; and, with more ranks than cores, waiting to be
// scheduled again: 4 ranks on 2 cores leave milliseconds). Both are means,
// not medians: the gaps are mostly microseconds with a few of milliseconds,
// and a makespan is their sum. Estimated in this order, so that a simulated
// timeline gives back its gap_s and p2p_s exactly:
//   gap  start - (previous op's end) over ops whose inputs are all local
//        (stage 0's forwards, the last stage's backwards, W ...)
//   p2p  start - (producer's end) over ops with an input from another rank
//        produced later than the rank's previous op's end + gap: the rank
//        then waited for the transfer
//   gap  again, adding the ops whose remote inputs were there (end + p2p)
//        before the rank's previous op ended
struct Overheads {
  double p2p_s = 0, gap_s = 0;  // means; 0 without samples
  int64_t num_p2p_samples = 0, num_gap_samples = 0;
};
Overheads measured_overheads(const SimResult& timeline);

// Per-(rank, stage, op kind) means of a timeline of schedule `s`: every
// (rank, stage, kind) that ran gets the mean of its ops, every F&B (rank,
// forward stage, backward stage) the mean of its ops (and each (rank,
// forward stage)'s F&B entry the mean over its pairs); the rest stays unset
// and falls back to global = mean_durations(timeline, fallback). The latency
// and the gap are measured_overheads(timeline)'s where it has samples, else
// fallback's.
StageDurations stage_durations(const Schedule& s, const SimResult& timeline, const Durations& fallback = {});

}  // namespace moelab::schedule
