// Communication hidden behind computation in `moelab train` with
// parallel.pp > 1 (issue 6, "Overlap"): every world rank's figures summed
// over the run (parallel/comm_progress.hpp: expert all-to-alls, pipeline
// point-to-point, both) gathered to rank 0, which prints the per-rank table
// and writes the comm_* attributes of /runs/<run>/schedule (results/README.md).
#pragma once

#include <array>
#include <cstdint>
#include <ostream>

#include "io/results.hpp"
#include "parallel/comm_progress.hpp"
#include "parallel/schedule/executor.hpp"

namespace moelab::train {

// figures: [expert, pipeline, total] of this rank; last: the last step's
// result (whether F&B overlapped, whether the progress thread ran).
// Collective over MPI_COMM_WORLD; progress and run are used on rank 0.
void report_comm(const std::array<parallel::CommFigures, 3>& figures, const schedule::ExecuteResult& last,
                 int64_t steps, std::ostream* progress, ResultsRun* run);

}  // namespace moelab::train
