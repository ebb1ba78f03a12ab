// The network model on tiny topologies: exact times from send_time and the
// collectives built on it (STYLE.md habit 13; ASTRA-sim analytical tests).
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "sim/network.hpp"

using namespace moelab;
using namespace moelab::sim;

namespace {

// 2 nodes x 2 GPUs: NVLink 100 GB/s, 1 us; network 25 GB/s at efficiency 0.5, 5 us.
Topology tiny() {
  return Topology(4, 2, Link{GBps(100), microseconds(1), 1.0}, Link{GBps(25), microseconds(5), 0.5});
}

}  // namespace

TEST(Units, BytesOverBandwidthIsSeconds) {
  EXPECT_DOUBLE_EQ((Bytes(1e9) / GBps(1)).value, 1.0);
  EXPECT_DOUBLE_EQ((Bytes(50e9) / GBps(50)).value, 1.0);
  EXPECT_DOUBLE_EQ((Seconds(1) + microseconds(5)).value, 1.000005);
  EXPECT_EQ(max(Seconds(1), Seconds(2)), Seconds(2));
}

TEST(Network, SendTimeIsExactPerLinkClass) {
  const Topology t = tiny();
  EXPECT_EQ(t.num_nodes(), 2);
  EXPECT_EQ(t.link_kind(0, 0), LinkKind::self);
  EXPECT_EQ(t.link_kind(0, 1), LinkKind::scale_up);
  EXPECT_EQ(t.link_kind(1, 2), LinkKind::scale_out);
  EXPECT_DOUBLE_EQ(t.send_time(0, 0, Bytes(1e6)).value, 0.0);
  // 1 us + 1e6 B / 100 GB/s = 1 us + 10 us.
  EXPECT_DOUBLE_EQ(t.send_time(0, 1, Bytes(1e6)).value, 11e-6);
  // 5 us + 1e6 B / (25 GB/s x 0.5) = 5 us + 80 us.
  EXPECT_DOUBLE_EQ(t.send_time(0, 2, Bytes(1e6)).value, 85e-6);
  EXPECT_DOUBLE_EQ(t.send_time(3, 0, Bytes(1e6)).value, 85e-6);
  // Zero bytes still pay the latency.
  EXPECT_DOUBLE_EQ(t.send_time(2, 3, Bytes(0)).value, 1e-6);
}

TEST(Network, RingStepsAreAsSlowAsTheirSlowestHop) {
  const Topology t = tiny();
  // 4 GPUs, 4e6 bytes: 3 steps of 1e6-byte chunks; hops 1->2 and 3->0 cross nodes (85 us).
  EXPECT_DOUBLE_EQ(t.ring_reduce_scatter({0, 1, 2, 3}, Bytes(4e6)).value, 3 * 85e-6);
  // Inside one node: 1 step of 1e6 bytes over NVLink.
  EXPECT_DOUBLE_EQ(t.ring_all_gather({0, 1}, Bytes(2e6)).value, 11e-6);
  EXPECT_DOUBLE_EQ(t.ring_reduce_scatter({2}, Bytes(2e6)).value, 0.0);
}

TEST(Network, TwoHopAllToAllTakesTheSlowerPhase) {
  const Topology t = tiny();
  // IB phase: 5 us + 2e6 / 12.5 GB/s = 165 us; NVLink phase: 1 us + 1e6 / 100 GB/s = 11 us.
  EXPECT_DOUBLE_EQ(two_hop_all_to_all_time(t, 0, A2ABytes{Bytes(2e6), Bytes(1e6)}).value, 165e-6);
  // NVLink-bound when the IB share is small: 1 us + 5e7 / 100 GB/s = 501 us.
  EXPECT_DOUBLE_EQ(two_hop_all_to_all_time(t, 3, A2ABytes{Bytes(1e5), Bytes(5e7)}).value, 501e-6);
  EXPECT_DOUBLE_EQ(two_hop_all_to_all_time(t, 1, A2ABytes{}).value, 0.0);
}

TEST(Network, BadInputIsAnError) {
  const Topology t = tiny();
  EXPECT_THROW(t.send_time(0, 4, Bytes(1)), Error);
  EXPECT_THROW(t.send_time(0, 1, Bytes(-1)), Error);
  EXPECT_THROW(Topology(0, 8, Link{GBps(1), Seconds(0)}, Link{GBps(1), Seconds(0)}), Error);
  const Topology one_node(2, 2, Link{GBps(1), Seconds(0)}, Link{GBps(1), Seconds(0)});
  EXPECT_THROW(two_hop_all_to_all_time(one_node, 0, A2ABytes{Bytes(1), Bytes(0)}), Error);
}
