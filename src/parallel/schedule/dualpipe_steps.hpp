// The eight steps of DualPipe's per-rank program (DeepSeek-V3 §3.2.1;
// shared/reference/deepseek-v3.md §6.3), shared by dualpipe.cpp and
// dualpipev.cpp, which differ only in where the two phases of a rank live.
// Internal to the schedule library.
#pragma once

#include <functional>
#include <vector>

#include "parallel/schedule/schedule.hpp"

namespace moelab::schedule::detail {

struct DualPipeRank {
  int half = 0;         // PP/2 (DualPipe) or N ranks (DualPipeV)
  int half_rank = 0;    // h = min(r, PP-1-r) (DualPipe) or r (DualPipeV)
  int half_chunks = 0;  // micro-batches per phase: C/2 (DualPipe) or C (DualPipeV)
  bool runs_first_pair_apart = false;  // the rank(s) whose first nF0B1 pair is not overlapped
  int stage[2] = {0, 0};               // stage of phase 0 and phase 1 on this rank
  std::function<int(int phase, int index)> microbatch;  // the index-th micro-batch of a phase
};

std::vector<Op> dualpipe_steps(const DualPipeRank& rank);

}  // namespace moelab::schedule::detail
