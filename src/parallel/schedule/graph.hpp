// The dependency graph of a schedule, shared by the validator and the
// simulator (internal to the schedule library). Ops are numbered rank by rank
// in program order; each op lists the ops whose results it needs:
//   forward  (mb, s)  <- forward (mb, s-1)
//   backward (mb, s)  <- forward (mb, s) and the input gradient of (mb, s+1)
//   W        (mb, s)  <- B_input (mb, s)
// where "backward" is B, B_input or the backward half of an F&B. Program
// order on a rank is the other kind of edge (not listed).
#pragma once

#include <string>
#include <vector>

#include "parallel/schedule/schedule.hpp"

namespace moelab::schedule::detail {

struct OpRef {
  int rank = -1;
  int index = -1;  // position in the rank's program
};

struct Graph {
  std::vector<int64_t> first_op;  // [ranks + 1] global id of each rank's first op
  std::vector<OpRef> where;       // [ops]
  std::vector<int64_t> dep_begin; // [ops + 1] CSR into deps
  std::vector<int64_t> deps;      // global ids of dependencies
  std::vector<std::string> problems;  // structural and completeness problems found while building

  int64_t id(int rank, int index) const { return first_op[rank] + index; }
  int64_t num_ops() const { return static_cast<int64_t>(where.size()); }
};

// Builds the graph; structure and completeness problems (ops out of range, on
// the wrong rank, missing or duplicated) go to problems, at most max_problems.
Graph build_graph(const Schedule& s, int max_problems = 16);

}  // namespace moelab::schedule::detail
