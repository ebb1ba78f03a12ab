// Event-driven replay of a schedule over its dependency graph (internal):
// each rank runs its ops in program order; an op starts when the rank is free
// and every dependency has finished (plus the point-to-point latency when the
// dependency ran on another rank); a rank that ran an op is free gap_s after
// its end. Shared by the deadlock check (validate.cpp)
// and the simulator (simulate.cpp).
#pragma once

#include <functional>
#include <vector>

#include "parallel/schedule/graph.hpp"

namespace moelab::schedule::detail {

struct Replay {
  std::vector<double> start_s, end_s;  // [ops]; NaN for ops never run
  std::vector<int> next_index;         // [ranks] first op not run (== size when done)
  bool complete = false;
};

Replay replay(const Schedule& s, const Graph& g, const std::function<double(int rank, const Op&)>& duration_s,
              double p2p_s,
              double gap_s = 0.0);

}  // namespace moelab::schedule::detail
