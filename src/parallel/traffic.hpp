// Traffic figures of expert parallelism as the HDF5 comm/ datasets
// [steps, ranks] (results/README.md, "moelab ep"): one place that names them,
// used by `moelab ep` and by the EP training loop.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "io/results.hpp"
#include "parallel/dispatch_combine.hpp"

namespace moelab::parallel {

// (name, value) of one rank's figures, in the order of the comm/ datasets.
std::vector<std::pair<std::string, double>> traffic_figures(const TrafficStats& s, int64_t top_k,
                                                            double expert_time_s);

// Gathers every rank's figures to world rank 0 (collective over topo.world())
// and, on rank 0 with a run, appends one row [ranks] to each comm/<name> and
// comm/load_imbalance (max/mean expert load over the EP ranks of each DP
// replica, worst replica). Returns that imbalance on rank 0 (0 elsewhere).
double append_comm_step(const Topology& topo, const TrafficStats& s, int64_t top_k, double expert_time_s,
                        ResultsRun* run);

}  // namespace moelab::parallel
