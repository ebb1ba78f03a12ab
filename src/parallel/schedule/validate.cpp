#include "parallel/schedule/validate.hpp"

#include <sstream>

#include "core/error.hpp"
#include "parallel/schedule/graph.hpp"
#include "parallel/schedule/replay.hpp"

namespace moelab::schedule {

std::vector<std::string> find_problems(const Schedule& s, int max_problems) {
  const detail::Graph g = detail::build_graph(s, max_problems);
  std::vector<std::string> problems = g.problems;
  if (!problems.empty()) return problems;
  const std::string name = "schedule " + s.kind + ": ";
  auto op_at = [&](int64_t id) {
    const detail::OpRef w = g.where[id];
    return "rank " + std::to_string(w.rank) + " op " + std::to_string(w.index) + " (" +
           op_text(s.ops[w.rank][w.index]) + ")";
  };
  // Order on a rank: a dependency held by the same rank must come first.
  for (int64_t id = 0; id < g.num_ops(); ++id) {
    for (int64_t k = g.dep_begin[id]; k < g.dep_begin[id + 1]; ++k) {
      const int64_t dep = g.deps[k];
      if (g.where[dep].rank == g.where[id].rank && g.where[dep].index >= g.where[id].index &&
          static_cast<int>(problems.size()) < max_problems)
        problems.push_back(name + "swapped dependency: " + op_at(id) + " runs before " + op_at(dep) +
                           ", which it needs");
    }
  }
  if (!problems.empty()) return problems;
  // Deadlock: replay with unit durations; buffered sends never block.
  const detail::Replay run = detail::replay(s, g, [](int, const Op&) { return 1.0; }, 0.0);
  if (!run.complete) {
    std::ostringstream line;
    line << name << "deadlock: every rank waits;";
    for (int r = 0; r < s.num_ranks; ++r) {
      if (run.next_index[r] >= static_cast<int>(s.ops[r].size())) continue;
      const int64_t id = g.id(r, run.next_index[r]);
      line << " " << op_at(id) << " waits for";
      for (int64_t k = g.dep_begin[id]; k < g.dep_begin[id + 1]; ++k)
        if (run.end_s[g.deps[k]] != run.end_s[g.deps[k]]) line << " " << op_at(g.deps[k]);
      line << ";";
    }
    problems.push_back(line.str());
  }
  return problems;
}

void validate(const Schedule& s) {
  const std::vector<std::string> problems = find_problems(s, 4);
  if (problems.empty()) return;
  std::string text = problems[0];
  for (size_t i = 1; i < problems.size(); ++i) text += "; " + problems[i];
  MOE_CHECK(false) << text;
}

namespace {

struct CommAction {
  bool is_send = false;
  int peer = -1;
  int64_t key = 0;  // 2·(mb·S + producing stage) + {0 activation, 1 gradient}
  int op_index = 0;
};

}  // namespace

std::string synchronous_send_deadlock(const Schedule& s) {
  const int64_t num_stages = s.num_stages;
  auto key = [&](int mb, int stage, int payload) { return 2 * (mb * num_stages + stage) + payload; };
  std::vector<std::vector<CommAction>> acts(s.num_ranks);
  for (int r = 0; r < s.num_ranks; ++r) {
    for (int i = 0; i < static_cast<int>(s.ops[r].size()); ++i) {
      const Op& op = s.ops[r][i];
      const int b_mb = op.backward_microbatch(), b_stage = op.backward_stage();
      auto add = [&](bool is_send, int peer, int64_t k) {
        if (peer != r) acts[r].push_back({is_send, peer, k, i});
      };
      // Receives before the op, sends after it.
      if (op.has_forward() && op.stage > 0)
        add(false, s.rank_of(op.microbatch, op.stage - 1), key(op.microbatch, op.stage - 1, 0));
      if (b_mb >= 0 && b_stage + 1 < s.num_stages) add(false, s.rank_of(b_mb, b_stage + 1), key(b_mb, b_stage + 1, 1));
      if (op.has_forward() && op.stage + 1 < s.num_stages)
        add(true, s.rank_of(op.microbatch, op.stage + 1), key(op.microbatch, op.stage, 0));
      if (b_mb >= 0 && b_stage > 0) add(true, s.rank_of(b_mb, b_stage - 1), key(b_mb, b_stage, 1));
    }
  }
  std::vector<size_t> pos(s.num_ranks, 0);
  bool progress = true;
  while (progress) {
    progress = false;
    for (int r = 0; r < s.num_ranks; ++r) {
      while (pos[r] < acts[r].size()) {
        const CommAction& a = acts[r][pos[r]];
        const int p = a.peer;
        if (pos[p] >= acts[p].size()) break;
        const CommAction& b = acts[p][pos[p]];
        if (b.peer != r || b.key != a.key || b.is_send == a.is_send) break;
        ++pos[r];  // the pair completes together
        ++pos[p];
        progress = true;
      }
    }
  }
  std::ostringstream line;
  bool stuck = false;
  for (int r = 0; r < s.num_ranks; ++r) {
    if (pos[r] >= acts[r].size()) continue;
    const CommAction& a = acts[r][pos[r]];
    line << (stuck ? "; " : "") << "rank " << r << " at op " << a.op_index << " (" << op_text(s.ops[r][a.op_index])
         << ") " << (a.is_send ? "sends to" : "receives from") << " rank " << a.peer;
    stuck = true;
  }
  return stuck ? "schedule " + s.kind + ": deadlock with synchronous sends: " + line.str() : "";
}

}  // namespace moelab::schedule
