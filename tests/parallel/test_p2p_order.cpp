// The pipeline's point-to-point send order (p2p_order.hpp), which the NCCL
// transport posts receives by: for every schedule kind on 2, 4 and 8 ranks,
// every message the executor receives from another rank is in exactly one
// pair's list, once, and nothing else is; the executor's tags are unique;
// the lists follow each sender's program order (1F1B: micro-batches
// ascending both ways).
#include <gtest/gtest.h>

#include <set>

#include "parallel/schedule/generators.hpp"
#include "parallel/schedule/p2p_order.hpp"

namespace moelab::schedule {
namespace {

// Every schedule kind that fits `ranks` (DualPipe needs an even count), with
// 4 micro-batches per rank (fits every generator's constraints).
std::vector<Schedule> every_schedule(int ranks) {
  std::vector<Schedule> out;
  for (const std::string& kind : schedule_kinds())
    if (kind != "dualpipe" || ranks % 2 == 0) out.push_back(make_schedule(kind, ranks, 4 * ranks));
  return out;
}

TEST(P2pOrder, EveryReceivedMessageIsSentOnceInItsPairsList) {
  for (int ranks : {2, 4, 8}) {
    for (const Schedule& s : every_schedule(ranks)) {
      SCOPED_TRACE(s.kind + " on " + std::to_string(ranks) + " ranks");
      const auto order = p2p_send_order(s);
      // What the executor receives from another rank: (src, dst, tag).
      std::multiset<std::tuple<int, int, int>> received, sent;
      for (int r = 0; r < s.num_ranks; ++r)
        for (const Op& op : s.ops[r]) {
          if (op.has_forward() && op.stage > 0 && s.rank_of(op.microbatch, op.stage - 1) != r)
            received.insert({s.rank_of(op.microbatch, op.stage - 1), r,
                             p2p_tag(s, op.microbatch, op.stage - 1, kActivationPayload)});
          const int b_mb = op.backward_microbatch(), b_stage = op.backward_stage();
          if (b_mb >= 0 && b_stage + 1 < s.num_stages && s.rank_of(b_mb, b_stage + 1) != r)
            received.insert({s.rank_of(b_mb, b_stage + 1), r, p2p_tag(s, b_mb, b_stage + 1, kGradientPayload)});
        }
      std::set<int> tags;
      for (const auto& [pair, msgs] : order) {
        EXPECT_NE(pair.first, pair.second);
        for (const P2pMessage& m : msgs) {
          sent.insert({pair.first, pair.second, m.tag});
          EXPECT_TRUE(tags.insert(m.tag).second) << "tag " << m.tag << " twice";
          EXPECT_EQ(m.tag, p2p_tag(s, m.microbatch, m.from_stage, m.payload));
          EXPECT_EQ(s.rank_of(m.microbatch, m.from_stage), pair.first);
          const int to = m.payload == kActivationPayload ? m.from_stage + 1 : m.from_stage - 1;
          EXPECT_EQ(s.rank_of(m.microbatch, to), pair.second);
        }
      }
      EXPECT_EQ(sent, received);
      EXPECT_FALSE(sent.empty());
    }
  }
}

TEST(P2pOrder, OneFOneBSendsMicroBatchesInOrder) {
  const Schedule s = make_1f1b(4, 9);
  const auto order = p2p_send_order(s);
  ASSERT_EQ(order.size(), 6u);  // 0->1, 1->2, 2->3 activations; 1->0, 2->1, 3->2 gradients
  for (const auto& [pair, msgs] : order) {
    ASSERT_EQ(msgs.size(), 9u);
    for (int mb = 0; mb < 9; ++mb) {
      EXPECT_EQ(msgs[mb].microbatch, mb);
      EXPECT_EQ(msgs[mb].payload, pair.second > pair.first ? kActivationPayload : kGradientPayload);
      EXPECT_EQ(msgs[mb].from_stage, pair.first);
    }
  }
}

TEST(P2pOrder, FAndBOpsSendTheForwardsActivationFirst) {
  const Schedule s = make_dualpipe(4, 12);
  const auto order = p2p_send_order(s);
  // Walk rank 1's program: each op's sends are the next entries of their pairs' lists, F's before B's.
  std::map<std::pair<int, int>, size_t> next;
  int fb_ops = 0;
  for (const Op& op : s.ops[1]) {
    auto expect_next = [&](int mb, int from_stage, int payload) {
      const int to = payload == kActivationPayload ? from_stage + 1 : from_stage - 1;
      const int dst = s.rank_of(mb, to);
      if (dst == 1) return;
      const auto& msgs = order.at({1, dst});
      size_t& i = next[{1, dst}];
      ASSERT_LT(i, msgs.size());
      EXPECT_EQ(msgs[i].tag, p2p_tag(s, mb, from_stage, payload));
      ++i;
    };
    if (op.has_forward() && op.stage + 1 < s.num_stages) expect_next(op.microbatch, op.stage, kActivationPayload);
    if (op.backward_microbatch() >= 0 && op.backward_stage() > 0)
      expect_next(op.backward_microbatch(), op.backward_stage(), kGradientPayload);
    fb_ops += op.kind == OpKind::FB;
  }
  EXPECT_GT(fb_ops, 0);
  for (const auto& [pair, i] : next) EXPECT_EQ(i, order.at(pair).size());
}

}  // namespace
}  // namespace moelab::schedule
