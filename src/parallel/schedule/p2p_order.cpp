#include "parallel/schedule/p2p_order.hpp"

#include "core/error.hpp"

namespace moelab::schedule {

int p2p_tag(const Schedule& s, int mb, int from_stage, int payload) {
  return static_cast<int>(2 * (static_cast<int64_t>(mb) * s.num_stages + from_stage) + payload);
}

std::map<std::pair<int, int>, std::vector<P2pMessage>> p2p_send_order(const Schedule& s) {
  std::map<std::pair<int, int>, std::vector<P2pMessage>> out;
  auto add = [&](int src, int mb, int from_stage, int payload) {
    const int to_stage = payload == kActivationPayload ? from_stage + 1 : from_stage - 1;
    const int dst = s.rank_of(mb, to_stage);
    if (dst != src) out[{src, dst}].push_back({mb, from_stage, payload, p2p_tag(s, mb, from_stage, payload)});
  };
  for (int r = 0; r < s.num_ranks; ++r)
    for (const Op& op : s.ops[r]) {
      if (op.has_forward() && op.stage + 1 < s.num_stages) add(r, op.microbatch, op.stage, kActivationPayload);
      const int b_mb = op.backward_microbatch(), b_stage = op.backward_stage();
      if (b_mb >= 0 && b_stage > 0) add(r, b_mb, b_stage, kGradientPayload);
    }
  return out;
}

InOrderPosting::InOrderPosting(const Schedule& s, int rank) : rank_(rank), order_(p2p_send_order(s)) {}

std::vector<P2pMessage> InOrderPosting::to_post(int source, int tag) {
  std::vector<P2pMessage> out;
  if (posted_.count(tag)) return out;
  auto it = order_.find({source, rank_});
  MOE_CHECK(it != order_.end()) << "pipeline transport: rank " << rank_ << " expects message tag " << tag
                                << " from rank " << source << ", which never sends to it in this schedule";
  size_t& next = next_[{source, rank_}];
  const std::vector<P2pMessage>& msgs = it->second;
  while (true) {
    MOE_CHECK(next < msgs.size()) << "pipeline transport: rank " << rank_ << " expects message tag " << tag
                                  << " from rank " << source << ", which the schedule never sends";
    const P2pMessage& m = msgs[next++];
    posted_[m.tag] = true;
    out.push_back(m);
    if (m.tag == tag) return out;
  }
}

void InOrderPosting::check_send(int dest, int tag) {
  auto it = order_.find({rank_, dest});
  MOE_CHECK(it != order_.end()) << "pipeline transport: rank " << rank_ << " sends tag " << tag << " to rank " << dest
                                << ", which the schedule never does";
  size_t& next = next_[{rank_, dest}];
  MOE_CHECK(next < it->second.size() && it->second[next].tag == tag)
      << "pipeline transport: rank " << rank_ << " sends tag " << tag << " to rank " << dest
      << " out of the schedule's order (expected tag " << (next < it->second.size() ? it->second[next].tag : -1)
      << ")";
  ++next;
}

}  // namespace moelab::schedule
