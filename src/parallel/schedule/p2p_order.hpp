// The pipeline's point-to-point messages of a schedule, in the order the
// executor sends them. MPI matches a receive to a send by tag, so the order
// does not matter there; NCCL matches the sends and receives of a pair of
// ranks in the order they are issued (ncclSend/ncclRecv have no tag), so an
// NCCL transport must post a pair's receives in the sender's order. That
// order is fixed by the schedule: a rank sends after each op, in program
// order, the op's forward output first and its backward's input gradient
// second (an F&B op issues its two sends in that order after both halves,
// whichever half finished first; see PipelineTransport::matches_in_order).
// Host only; tests/parallel/test_p2p_order.cpp checks it on the CPU.
#pragma once

#include <map>
#include <utility>
#include <vector>

#include "parallel/schedule/schedule.hpp"

namespace moelab::schedule {

enum P2pPayload : int { kActivationPayload = 0, kGradientPayload = 1 };

// The executor's message tag of (mb, from_stage, payload): unique per step.
int p2p_tag(const Schedule& s, int mb, int from_stage, int payload);

struct P2pMessage {
  int microbatch = -1;
  int from_stage = -1;  // the stage that produced it
  int payload = kActivationPayload;
  int tag = -1;
};

// Per ordered rank pair (src, dst), src != dst: the messages src sends to dst,
// in the order src sends them. Same-rank hand-overs are not messages.
std::map<std::pair<int, int>, std::vector<P2pMessage>> p2p_send_order(const Schedule& s);

// The bookkeeping of a transport that matches in issue order, for one rank:
// its receives are posted in each sender's order, its sends checked against
// its own order. Host only (the NCCL transport uses it; the CPU tests drive
// it with MPI receives that all carry one tag per pair, which MPI's
// non-overtaking rule also matches in order).
class InOrderPosting {
 public:
  InOrderPosting(const Schedule& s, int rank);
  // The receive of message `tag` from `source` is wanted: the messages of
  // that pair to post now, in order - every earlier one not yet posted, then
  // this one; empty when it was posted already. Throws when the sender never
  // sends it.
  std::vector<P2pMessage> to_post(int source, int tag);
  // A send of `tag` to `dest`: throws unless it is the next in that pair's
  // order.
  void check_send(int dest, int tag);
  // The pairs this rank sends on / receives on (src, dst), ascending.
  const std::map<std::pair<int, int>, std::vector<P2pMessage>>& order() const { return order_; }

 private:
  int rank_;
  std::map<std::pair<int, int>, std::vector<P2pMessage>> order_;
  std::map<std::pair<int, int>, size_t> next_;
  std::map<int, bool> posted_;  // tags posted (received or to receive)
};

}  // namespace moelab::schedule
