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
//                 synchronous_send_deadlock() checks the stricter naive
//                 executor with rendezvous sends (most schedules fail it).
#pragma once

#include <string>
#include <vector>

#include "parallel/schedule/schedule.hpp"

namespace moelab::schedule {

// Every problem found, at most max_problems lines; empty when valid.
std::vector<std::string> find_problems(const Schedule& s, int max_problems = 16);

// Throws moelab::Error with the first problems (one line each) when invalid.
void validate(const Schedule& s);

// The naive executor the validator does NOT assume: before each op a
// blocking receive per input from another rank, after it a synchronous
// (rendezvous, MPI_Ssend-like) send per output, one at a time in program
// order. Returns "" when every rank reaches its end that way, else one line
// naming where each rank is stuck. 1F1B deadlocks like this (a rank sends
// its next forward while its neighbour sends the previous backward), which is
// why Megatron pairs send_forward with recv_backward, DualPipe batches each
// op's sends with the next op's receives, and executor.hpp uses buffered
// non-blocking sends. Expects a schedule that passes validate().
std::string synchronous_send_deadlock(const Schedule& s);

}  // namespace moelab::schedule
