#include "parallel/schedule/replay.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moelab::schedule::detail {

Replay replay(const Schedule& s, const Graph& g, const std::function<double(int rank, const Op&)>& duration_s,
              double p2p_s,
              double gap_s) {
  const int64_t num_ops = g.num_ops();
  Replay out;
  out.start_s.assign(num_ops, std::numeric_limits<double>::quiet_NaN());
  out.end_s.assign(num_ops, std::numeric_limits<double>::quiet_NaN());
  out.next_index.assign(s.num_ranks, 0);
  std::vector<char> done(num_ops, 0);
  std::vector<double> rank_free_s(s.num_ranks, 0.0);
  std::vector<std::vector<int>> waiters(num_ops);  // ranks blocked on an op
  std::vector<int> work;
  for (int r = s.num_ranks - 1; r >= 0; --r) work.push_back(r);
  int64_t finished = 0;
  while (!work.empty()) {
    const int r = work.back();
    work.pop_back();
    const int n = static_cast<int>(s.ops[r].size());
    while (out.next_index[r] < n) {
      const int64_t id = g.id(r, out.next_index[r]);
      double ready_s = out.next_index[r] > 0 ? rank_free_s[r] + gap_s : 0.0;
      int64_t blocked_on = -1;
      for (int64_t k = g.dep_begin[id]; k < g.dep_begin[id + 1]; ++k) {
        const int64_t dep = g.deps[k];
        if (!done[dep]) {
          blocked_on = dep;
          break;
        }
        const double latency_s = g.where[dep].rank == r ? 0.0 : p2p_s;
        ready_s = std::max(ready_s, out.end_s[dep] + latency_s);
      }
      if (blocked_on >= 0) {
        waiters[blocked_on].push_back(r);
        break;
      }
      out.start_s[id] = ready_s;
      out.end_s[id] = ready_s + duration_s(r, s.ops[r][out.next_index[r]]);
      rank_free_s[r] = out.end_s[id];
      done[id] = 1;
      ++finished;
      for (int waiter : waiters[id]) work.push_back(waiter);
      waiters[id].clear();
      ++out.next_index[r];
    }
  }
  out.complete = finished == num_ops;
  return out;
}

}  // namespace moelab::schedule::detail
