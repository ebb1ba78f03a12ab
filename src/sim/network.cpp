// The network model; see network.hpp.
#include "sim/network.hpp"

#include "core/error.hpp"

namespace moelab::sim {

Topology::Topology(int64_t num_gpus, int64_t gpus_per_node, Link scale_up, Link scale_out)
    : num_gpus_(num_gpus), gpus_per_node_(gpus_per_node), scale_up_(scale_up), scale_out_(scale_out) {
  MOE_CHECK(num_gpus > 0 && gpus_per_node > 0) << "topology: num_gpus (" << num_gpus << ") and gpus_per_node ("
                                               << gpus_per_node << ") must be positive";
  MOE_CHECK(scale_up.bandwidth.value > 0 && scale_out.bandwidth.value > 0)
      << "topology: link bandwidths must be positive";
  MOE_CHECK(scale_up.efficiency > 0 && scale_out.efficiency > 0) << "topology: link efficiencies must be positive";
}

Topology Topology::from_hardware(const Hardware& hw, int64_t num_gpus) {
  const Link up{GBps(hw.nvlink_GBps.value), microseconds(hw.nvlink_latency_us.value), hw.nvlink_efficiency.value};
  const Link out{GBps(hw.scaleout_GBps.value), microseconds(hw.scaleout_latency_us.value),
                 hw.scaleout_efficiency.value};
  return Topology(num_gpus, static_cast<int64_t>(hw.gpus_per_node.value), up, out);
}

LinkKind Topology::link_kind(int64_t src, int64_t dst) const {
  MOE_CHECK(src >= 0 && src < num_gpus_ && dst >= 0 && dst < num_gpus_)
      << "topology: GPU pair (" << src << ", " << dst << ") outside 0.." << num_gpus_ - 1;
  if (src == dst) return LinkKind::self;
  return node_of(src) == node_of(dst) ? LinkKind::scale_up : LinkKind::scale_out;
}

Seconds Topology::send_time(int64_t src, int64_t dst, Bytes bytes) const {
  MOE_CHECK(bytes.value >= 0) << "send_time: negative byte count " << bytes.value;
  switch (link_kind(src, dst)) {
    case LinkKind::self: return Seconds(0);
    case LinkKind::scale_up: return scale_up_.latency + bytes / scale_up_.effective();
    case LinkKind::scale_out: return scale_out_.latency + bytes / scale_out_.effective();
  }
  return Seconds(0);
}

Seconds Topology::ring_reduce_scatter(const std::vector<int64_t>& group, Bytes total) const {
  const int64_t n = static_cast<int64_t>(group.size());
  MOE_CHECK(n >= 1) << "ring collective over an empty group";
  if (n == 1) return Seconds(0);
  const Bytes chunk = total / static_cast<double>(n);
  Seconds step(0);
  for (int64_t i = 0; i < n; ++i) step = max(step, send_time(group[i], group[(i + 1) % n], chunk));
  return step * static_cast<double>(n - 1);
}

Seconds two_hop_all_to_all_time(const Topology& topo, int64_t gpu, const A2ABytes& bytes) {
  const int64_t g = topo.gpus_per_node();
  Seconds t(0);
  if (bytes.scale_out.value > 0) {
    MOE_CHECK(topo.num_nodes() > 1) << "two-hop all-to-all: scale-out bytes on a single-node topology";
    const int64_t peer = (gpu + g) % (topo.num_nodes() * g);  // same in-node index, next node
    t = max(t, topo.send_time(gpu, peer < topo.num_gpus() ? peer : gpu % g, bytes.scale_out));
  }
  if (bytes.scale_up.value > 0) {
    MOE_CHECK(g > 1) << "two-hop all-to-all: scale-up bytes with one GPU per node";
    const int64_t node_first = topo.node_of(gpu) * g;
    const int64_t peer = node_first + (gpu - node_first + 1) % g;
    t = max(t, topo.send_time(gpu, peer, bytes.scale_up));
  }
  return t;
}

}  // namespace moelab::sim
