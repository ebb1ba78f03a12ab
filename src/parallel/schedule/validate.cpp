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
  const detail::Replay run = detail::replay(s, g, [](const Op&) { return 1.0; }, 0.0);
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

}  // namespace moelab::schedule
