// Schedule generators, one per file, each named as its schedule is named in
// the literature and its phases named in DualPipe's notation (nF0, nF0F1,
// nB1W1F1, nF0B1F1B0, ...). Every generator checks its constraints and
// throws moelab::Error with one line naming the schedule, the figure and what
// was expected.
//
//   gpipe              all forwards, then all backwards (GPipe)
//   1f1b               warm-up forwards, one-forward-one-backward, cool-down (PipeDream-Flush)
//   interleaved_1f1b   Megatron's virtual stages: rank r holds stages r, r+PP, ... (v per rank)
//   zb1p               ZB-H1 (Qi et al. 2023): 1F1B with B split into B_input and W,
//                      W deferred into the cool-down bubbles; same memory as 1F1B
//   dualpipe           DeepSeek-V3 §3.2.1: rank r holds stage r and PP-1-r, micro-batches
//                      enter from both ends; PP even, C even, C >= 2·PP
//   dualpipev          "cut-in-half" DualPipe: N ranks, 2N stages in a V (rank r holds
//                      stages r and 2N-1-r); C >= 2N
#pragma once

#include <string>
#include <vector>

#include "parallel/schedule/schedule.hpp"

namespace moelab::schedule {

Schedule make_gpipe(int num_ranks, int num_microbatches);
Schedule make_1f1b(int num_ranks, int num_microbatches);
Schedule make_interleaved_1f1b(int num_ranks, int num_microbatches, int chunks_per_rank);
Schedule make_zb1p(int num_ranks, int num_microbatches);
Schedule make_dualpipe(int num_ranks, int num_microbatches);
Schedule make_dualpipev(int num_ranks, int num_microbatches);

// By name: gpipe, 1f1b, interleaved_1f1b (chunks_per_rank virtual stages), zb1p,
// dualpipe, dualpipev.
Schedule make_schedule(const std::string& kind, int num_ranks, int num_microbatches, int chunks_per_rank = 2);
const std::vector<std::string>& schedule_kinds();

// Layout helpers: one direction, stage s on rank stage_rank[s] as chunk
// stage_chunk[s]; linear_schedule: stage r on rank r (GPipe, 1F1B, ZB1P).
Schedule empty_schedule(const std::string& kind, int num_ranks, int num_microbatches, std::vector<int> stage_rank,
                        std::vector<int> stage_chunk);
Schedule linear_schedule(const std::string& kind, int num_ranks, int num_microbatches);

}  // namespace moelab::schedule
