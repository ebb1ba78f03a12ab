// Op durations measured in a timeline (executed or simulated), to "simulate
// the executed run with the op durations measured in it" (issue 6): the
// executor's events (executor.hpp, gather_measured) give each op's compute
// time and the gaps a rank spent waiting for its inputs; from them
//
//   mean_durations       one mean per op kind (F, B, W, F&B) for all stages
//   stage_durations      one mean per (stage, op kind), F&B per (forward
//                        stage, backward stage) pair, and the point-to-point
//                        latency estimated from the receive waits
//
// Why per stage and not per rank: a stage is a fixed piece of the model (the
// embedding on the first, head and loss on the last, dense or MoE layers in
// between), which is what makes op times differ; DualPipe runs each stage on
// two ranks (direction 0 on rank s, direction 1 on rank PP-1-s) with the
// same layers, so their ops are pooled into one mean, and the table describes
// the model rather than one schedule's placement. An F&B op computes the
// forward of one stage and the backward of another (DualPipe(V): the two
// stages a rank holds, in either order), so its time belongs to the ordered
// pair, not to either stage. The invariant (tests/parallel/test_schedule.cpp):
// a timeline simulated with per-stage durations and a p2p latency, passed
// through stage_durations and simulated again, is reproduced exactly.
#pragma once

#include <cstdint>

#include "parallel/schedule/simulate.hpp"

namespace moelab::schedule {

// Mean op durations of a timeline: F, B, W and F&B from the ops of that kind;
// B = B_input + W when no full B ran; W = 0 when nothing was split; F&B =
// F + B when no pair ran; otherwise `fallback`'s values. p2p stays at
// fallback.p2p_s.
Durations mean_durations(const SimResult& timeline, const Durations& fallback = {});

// Point-to-point latency seen in a timeline. A sample is taken at every op
// that needs data from another rank which was produced after the op's rank
// had become free (its previous op's end): the rank then waited for that
// transfer, and start - (producer's end) is the latency (with the send and
// receive overheads). The estimate is the median of the samples (robust to a
// few descheduled ranks); a simulated timeline gives its p2p_s exactly.
struct P2pLatency {
  double latency_s = 0;     // median; 0 without samples
  int64_t num_samples = 0;
};
P2pLatency p2p_latency(const SimResult& timeline);

// Per-(stage, op kind) means of a timeline of a schedule with `num_stages`
// stages: every (stage, kind) that ran gets the mean of its ops, every F&B
// (forward stage, backward stage) pair that ran the mean of its ops (and
// each forward stage's F&B entry the mean over its pairs); the rest stays
// unset and falls back to global = mean_durations(timeline, fallback). The
// latency is p2p_latency(timeline) when it has samples, else fallback.p2p_s.
StageDurations stage_durations(const SimResult& timeline, int num_stages, const Durations& fallback = {});

}  // namespace moelab::schedule
