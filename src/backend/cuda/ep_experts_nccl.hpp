// Expert-parallel routed experts on GPUs with NCCL: the RoutedExperts that
// `moelab train --device cuda` installs (through train::EpTrainOptions::
// make_experts) when parallel.ep > 1. The data flow and the traffic
// accounting are parallel/ep_experts.hpp's (EpExperts over MPI), with the
// rows on the device and the all-to-alls over NCCL (NcclDispatcher with the
// run's parallel.dispatch mode, direct or two_hop, and wire formats, fp32 /
// bf16 / fp8 dispatch and fp32 / bf16 combine, as the MPI Dispatcher):
//   forward   x up -> NCCL dispatch -> this rank's (row, slot) assignments
//             grouped by local expert (parallel::local_assignments) -> rows
//             gathered on the device -> DeviceGroupedMlp (the grouped SwiGLU
//             FFN on the GPU) -> per received row, the weighted sum of its
//             local slots -> NCCL combine -> y down
//   backward  dy up -> NCCL dispatch_grad -> dyp = w * dy_row and
//             d_weight = <dy_row, y_slot> (unpermute_backward over the
//             received rows' K slots) -> DeviceGroupedMlp backward (local
//             expert grads += on the host) -> per row the sum of its local
//             dxp -> NCCL combine_grad -> dx, d_topk_weight down
// Per received row the K slots are laid out like a token's in the
// single-GPU unpermute: slot (r, k) points at its assignment's row, or at a
// zero row (weight 0) when expert k of that row is another rank's, so the
// existing permute kernels do the gathers and sums. Dispatch/combine wall
// times go into the TrafficStats as the MPI path's do.
#pragma once

#include <memory>

#include "model/context.hpp"
#include "parallel/dispatch_combine.hpp"
#include "parallel/topology.hpp"

namespace moelab::cuda {

// The NCCL communicator over topo.ep_comm() and the stream the all-to-alls
// run on. Collective over the EP group; this rank's GPU must be selected
// already (select_local_device).
struct NcclEp;
std::shared_ptr<NcclEp> nccl_ep_setup(const parallel::Topology& topo);

// The factory for ModelContext<float>::make_experts; each call's traffic is
// added to `sink` when given. `options`: mode and wire formats of the
// dispatch/combine (combine_format fp8 is refused, as by the MPI path).
ExpertsFactory<float> nccl_ep_experts_factory(const parallel::Topology& topo, std::shared_ptr<NcclEp> ep,
                                              std::shared_ptr<parallel::TrafficStats> sink = nullptr,
                                              parallel::DispatchOptions options = {parallel::DispatchMode::direct,
                                                                                   parallel::WireFormat::fp32,
                                                                                   parallel::WireFormat::fp32});

}  // namespace moelab::cuda
