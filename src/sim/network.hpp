// The network model behind one narrow interface, send_time(src, dst, bytes)
// (ASTRA-sim's analytical backend is the model: typed units, exact times on
// tiny topologies). Two link classes: scale-up inside a node (NVLink through
// NVSwitch: every pair of GPUs at the full per-GPU rate) and scale-out across
// nodes (one NIC per GPU, rail-optimised fabric, no oversubscription: every
// GPU sends at its NIC rate regardless of what the others do).
//
//   send_time(src, dst, b) = 0                                  src == dst
//                          = lat_nvl + b / (bw_nvl * eff_nvl)   same node
//                          = lat_net + b / (bw_net * eff_net)   different nodes
//
// Collectives are built on send_time only: a ring step is the slowest of its
// concurrent hops; the two-hop all-to-all of DeepSeek-V3 §3.2.2 runs its IB
// and NVLink phases concurrently (pipelined), so it takes the slower of them.
#pragma once

#include <cstdint>
#include <vector>

#include "sim/hardware.hpp"
#include "sim/units.hpp"

namespace moelab::sim {

struct Link {
  GBps bandwidth;       // link rate per GPU per direction
  Seconds latency;
  double efficiency = 1.0;  // achieved fraction of the rate
  GBps effective() const { return bandwidth * efficiency; }
};

enum class LinkKind { self, scale_up, scale_out };

class Topology {
 public:
  Topology(int64_t num_gpus, int64_t gpus_per_node, Link scale_up, Link scale_out);
  static Topology from_hardware(const Hardware& hw, int64_t num_gpus);

  int64_t num_gpus() const { return num_gpus_; }
  int64_t gpus_per_node() const { return gpus_per_node_; }
  int64_t num_nodes() const { return (num_gpus_ + gpus_per_node_ - 1) / gpus_per_node_; }
  int64_t node_of(int64_t gpu) const { return gpu / gpus_per_node_; }
  LinkKind link_kind(int64_t src, int64_t dst) const;
  const Link& scale_up() const { return scale_up_; }
  const Link& scale_out() const { return scale_out_; }

  // The one primitive: time for `bytes` from GPU src to GPU dst, alone on its link.
  Seconds send_time(int64_t src, int64_t dst, Bytes bytes) const;

  // Ring reduce-scatter (or all-gather) of `total` bytes per GPU over `group`
  // in ring order: n-1 steps of total/n bytes, each step as slow as its slowest hop.
  Seconds ring_reduce_scatter(const std::vector<int64_t>& group, Bytes total) const;
  Seconds ring_all_gather(const std::vector<int64_t>& group, Bytes total) const {
    return ring_reduce_scatter(group, total);
  }

 private:
  int64_t num_gpus_, gpus_per_node_;
  Link scale_up_, scale_out_;
};

// Per-GPU bytes of one all-to-all by link class (what one GPU sends).
struct A2ABytes {
  Bytes scale_out;  // to GPUs of other nodes (first hop of the two-hop dispatch)
  Bytes scale_up;   // to GPUs of its own node (direct, or forwarded after the IB hop)
};

// The two-hop all-to-all from GPU `gpu`: the IB phase to a peer with the same
// in-node index on another node and the NVLink phase run concurrently, so the
// time is the slower of the two (DeepSeek-V3 §3.2.2: "fully overlapped").
Seconds two_hop_all_to_all_time(const Topology& topo, int64_t gpu, const A2ABytes& bytes);

}  // namespace moelab::sim
