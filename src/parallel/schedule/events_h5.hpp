// The schedule/ group of a results file (results/README.md, "schedule"):
// written the same way for a simulated schedule (moelab schedule) and for a
// measured one (the executor), so the two compare row by row.
//   schedule/                attrs kind, source (simulated | measured), num_ranks, num_stages,
//                            num_microbatches, num_directions, makespan_s, op_codes
//   schedule/events/<column> [ops] one row per op: rank, op, microbatch, stage, chunk,
//                            direction, b_microbatch, b_stage, b_chunk, b_direction (int32;
//                            b_* the backward half of an F&B, else -1), start_s, end_s (float64)
//   schedule/ranks/<column>  [ranks] busy_s, idle_s, end_s, peak_activations, param_copies, num_ops
#pragma once

#include <string>

#include "io/hdf5.hpp"
#include "parallel/schedule/simulate.hpp"

namespace moelab::schedule {

// "0=F 1=B 2=B_input 3=W 4=F&B": the meaning of the op column.
std::string op_codes_text();

void write_schedule_group(h5::Group& run_group, const Schedule& s, const SimResult& result, const std::string& source);

}  // namespace moelab::schedule
