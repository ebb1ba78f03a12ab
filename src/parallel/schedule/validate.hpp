// Checks a schedule before anything runs it:
//   structure     every op names a (micro-batch, stage) in range, on the rank
//                 that holds that stage for that micro-batch's direction
//   completeness  each (micro-batch, stage) has exactly one forward and one
//                 backward, and a W exactly when the backward was B_input
//   order         on a rank, an op never precedes one of its own dependencies
//                 held by the same rank (a "swapped dependency")
//   deadlock      the ranks, each running its program in order, waiting
//                 (blocking receive) for the inputs an op needs, and sending
//                 results with buffered non-blocking sends as the executor
//                 does (executor.hpp), all reach the end: the dependency
//                 graph plus program order has no cycle. A stuck replay
//                 names, per rank, the op it waits at and what it waits for.
#pragma once

#include <string>
#include <vector>

#include "parallel/schedule/schedule.hpp"

namespace moelab::schedule {

// Every problem found, at most max_problems lines; empty when valid.
std::vector<std::string> find_problems(const Schedule& s, int max_problems = 16);

// Throws moelab::Error with the first problems (one line each) when invalid.
void validate(const Schedule& s);

}  // namespace moelab::schedule
