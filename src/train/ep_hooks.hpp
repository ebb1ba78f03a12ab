// The training loop over an EP x DP MPI world (issue 5): the hooks that turn
// run_training (loop.hpp) into its expert-parallel version.
//
//   data      world rank r trains on rows [r*B/W, (r+1)*B/W) of the global
//             batch (B sequences, W ranks); the loss is each rank's mean, so
//             the global loss is the mean over ranks
//   experts   every MoE layer (main and MTP) runs its routed experts through
//             parallel/ep_experts over the rank's EP group
//   grads     after backward, every gradient is summed over the world and
//             divided by W in ONE all-reduce. Routed-expert grads are non-zero
//             only on the rank holding the expert (one per DP replica), so the
//             world sum is the DP sum of the holders, and every rank ends with
//             the same full gradient: clipping and AdamW stay identical to
//             EP = 1 and the replicas of non-local experts stay in sync.
//   loads     per-expert loads summed over the world (the global batch) for
//             MaxVio and the bias update; evaluation runs the whole held-out
//             batch on every rank, so its loads are not summed
//   output    rank 0 writes the results and checkpoints
// EP = 1 on one rank needs none of this (run_training's defaults).
#pragma once

#include <functional>
#include <memory>

#include "parallel/dispatch_combine.hpp"
#include "parallel/topology.hpp"
#include "train/loop.hpp"

namespace moelab::train {

struct EpTrainOptions {
  int ep = 1;
  int gpus_per_node = 8;
  int max_nodes = 0;  // node limit M to check against the model's n_group/topk_group; 0: no check
  parallel::DispatchOptions dispatch{parallel::DispatchMode::direct, parallel::WireFormat::fp32,
                                     parallel::WireFormat::fp32};
  // Builds the routed experts' factory from the topology and the per-step
  // traffic sink (called once, collectively, by ep_train_hooks); empty:
  // parallel::ep_experts_factory (MPI, CPU). `moelab train --device cuda`
  // installs the NCCL one (backend/cuda/ep_experts_nccl.hpp).
  std::function<ExpertsFactory<float>(const parallel::Topology&, std::shared_ptr<parallel::TrafficStats>)>
      make_experts;
};

// parallel.ep, parallel.gpus_per_node, parallel.dispatch, parallel.dispatch_format, parallel.combine_format.
void declare_ep_train_options(po::options_description_easy_init add);

template <typename Opts>
EpTrainOptions ep_train_options_from(const Opts& o, int world_size) {
  EpTrainOptions e;
  e.ep = o.template get<int>("parallel.ep");
  if (e.ep == 0) e.ep = world_size;
  e.gpus_per_node = o.template get<int>("parallel.gpus_per_node");
  e.max_nodes = o.template get<int>("parallel.max_nodes");
  e.dispatch.mode = parallel::parse_dispatch_mode(o.template get<std::string>("parallel.dispatch"));
  e.dispatch.dispatch_format = parallel::parse_wire_format(o.template get<std::string>("parallel.dispatch_format"));
  e.dispatch.combine_format = parallel::parse_wire_format(o.template get<std::string>("parallel.combine_format"));
  return e;
}

// Hooks for `config` over MPI_COMM_WORLD (collective). With max_nodes set,
// the model's group-limited router must be the node limit (n_group = nodes
// of an EP group, topk_group = M) or this throws saying why. Each training
// step's EP traffic is appended to the run's comm/ [steps, ranks] (rank 0)
// and summed into `traffic` when given.
TrainHooks ep_train_hooks(const TrainConfig& config, const EpTrainOptions& options,
                          std::shared_ptr<parallel::TrafficStats> traffic = nullptr);

}  // namespace moelab::train
