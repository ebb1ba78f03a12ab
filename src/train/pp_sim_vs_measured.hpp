// Sim vs measured for `moelab train` with parallel.pp > 1 (issue 6): the
// last step's measured pipeline timeline against the simulator fed the
// durations measured in it.
//
//   predicted   per-(rank, stage, op kind) mean durations, F&B per rank and
//               (forward, backward) stage pair, the point-to-point latency seen in the
//               receive waits and the gap a rank leaves between its ops
//               (schedule/measured_durations.hpp)
//   stage_only  those means alone (p2p 0, no gap)
//   one_mean    one mean per op kind for all stages, p2p 0 (the first model,
//               kept for comparison: it misses that the embedding and the
//               head + loss stages weigh more than the middle ones)
//
// Prints the per-stage table and, per rank, measured and predicted end times
// with the error in percent; writes /runs/<run>/schedule (measured),
// /runs/<run>/schedule_predicted/schedule and the attributes listed in
// results/README.md ("Pipeline training").
#pragma once

#include <cstdint>
#include <ostream>
#include <vector>

#include "io/results.hpp"
#include "parallel/schedule/schedule.hpp"
#include "parallel/schedule/simulate.hpp"

namespace moelab::train {

// measured: gather_measured's timeline (root only). rank_wait_compute_comm:
// [ranks, 3] per pipeline rank, seconds blocked in pipeline receives, op
// compute time, EP dispatch + combine time. step: the 0-based step logged.
// progress, run: where the table and the results go (either may be null).
void report_sim_vs_measured(const schedule::Schedule& s, const schedule::SimResult& measured,
                            const std::vector<double>& rank_wait_compute_comm, int64_t step, std::ostream* progress,
                            ResultsRun* run);

}  // namespace moelab::train
