#include "parallel/schedule/graph.hpp"

#include <sstream>

namespace moelab::schedule::detail {

namespace {

// Which op of a (micro-batch, stage) does what; -1 when absent, -2 when duplicated.
struct PassOps {
  int64_t forward = -1, backward = -1, weight = -1;
  bool backward_is_split = false;
};

std::string where_text(const Schedule& s, int rank, int index) {
  std::ostringstream out;
  out << "rank " << rank << " op " << index << " (" << op_text(s.ops[rank][index]) << ")";
  return out.str();
}

}  // namespace

Graph build_graph(const Schedule& s, int max_problems) {
  Graph g;
  auto problem = [&](const std::string& text) {
    if (static_cast<int>(g.problems.size()) < max_problems) g.problems.push_back(text);
  };
  const std::string name = "schedule " + s.kind + ": ";
  if (static_cast<int>(s.ops.size()) != s.num_ranks) {
    problem(name + "programs for " + std::to_string(s.ops.size()) + " ranks, expected " + std::to_string(s.num_ranks));
    return g;
  }
  if (static_cast<int>(s.direction_of.size()) != s.num_microbatches ||
      static_cast<int>(s.stage_rank.size()) != s.num_directions ||
      static_cast<int>(s.stage_chunk.size()) != s.num_directions) {
    problem(name + "layout tables do not match the micro-batch and direction counts");
    return g;
  }
  for (int d = 0; d < s.num_directions; ++d)
    for (int st = 0; st < s.num_stages; ++st)
      if (static_cast<int>(s.stage_rank[d].size()) != s.num_stages || s.stage_rank[d][st] < 0 ||
          s.stage_rank[d][st] >= s.num_ranks) {
        problem(name + "stage " + std::to_string(st) + " of direction " + std::to_string(d) + " has no valid rank");
        return g;
      }

  g.first_op.resize(s.num_ranks + 1, 0);
  for (int r = 0; r < s.num_ranks; ++r) g.first_op[r + 1] = g.first_op[r] + static_cast<int64_t>(s.ops[r].size());
  g.where.resize(g.first_op.back());
  for (int r = 0; r < s.num_ranks; ++r)
    for (int i = 0; i < static_cast<int>(s.ops[r].size()); ++i) g.where[g.id(r, i)] = {r, i};

  const int num_stages = s.num_stages;
  std::vector<PassOps> passes(static_cast<size_t>(s.num_microbatches) * num_stages);
  auto check_pass = [&](int r, int i, int mb, int stage) -> bool {
    if (mb < 0 || mb >= s.num_microbatches || stage < 0 || stage >= num_stages) {
      problem(name + where_text(s, r, i) + ": micro-batch or stage out of range (" +
              std::to_string(s.num_microbatches) + " micro-batches, " + std::to_string(num_stages) + " stages)");
      return false;
    }
    if (s.rank_of(mb, stage) != r) {
      problem(name + where_text(s, r, i) + ": stage " + std::to_string(stage) + " of micro-batch " +
              std::to_string(mb) + " lives on rank " + std::to_string(s.rank_of(mb, stage)));
      return false;
    }
    return true;
  };
  auto claim = [&](int64_t& slot, int64_t id, const char* what, int r, int i, int mb, int stage) {
    if (slot == -1) {
      slot = id;
    } else {
      const OpRef first = g.where[slot >= 0 ? slot : 0];
      problem(name + "micro-batch " + std::to_string(mb) + " stage " + std::to_string(stage) + ": " + what +
              " twice (" + where_text(s, first.rank, first.index) + " and " + where_text(s, r, i) + ")");
      slot = -2;
    }
  };
  for (int r = 0; r < s.num_ranks; ++r) {
    for (int i = 0; i < static_cast<int>(s.ops[r].size()); ++i) {
      const Op& op = s.ops[r][i];
      const int64_t id = g.id(r, i);
      if (!check_pass(r, i, op.microbatch, op.stage)) continue;
      PassOps& p = passes[static_cast<size_t>(op.microbatch) * num_stages + op.stage];
      switch (op.kind) {
        case OpKind::F: claim(p.forward, id, "forward", r, i, op.microbatch, op.stage); break;
        case OpKind::B: claim(p.backward, id, "backward", r, i, op.microbatch, op.stage); break;
        case OpKind::BInput:
          claim(p.backward, id, "backward", r, i, op.microbatch, op.stage);
          p.backward_is_split = true;
          break;
        case OpKind::W: claim(p.weight, id, "W", r, i, op.microbatch, op.stage); break;
        case OpKind::FB: {
          claim(p.forward, id, "forward", r, i, op.microbatch, op.stage);
          if (!check_pass(r, i, op.b_microbatch, op.b_stage)) break;
          PassOps& q = passes[static_cast<size_t>(op.b_microbatch) * num_stages + op.b_stage];
          claim(q.backward, id, "backward", r, i, op.b_microbatch, op.b_stage);
          break;
        }
      }
    }
  }
  // Completeness: each (micro-batch, stage) once forward, once backward, and a
  // W exactly when its backward was B_input.
  for (int mb = 0; mb < s.num_microbatches; ++mb) {
    for (int stage = 0; stage < num_stages; ++stage) {
      const PassOps& p = passes[static_cast<size_t>(mb) * num_stages + stage];
      const std::string pass = name + "micro-batch " + std::to_string(mb) + " stage " + std::to_string(stage) +
                               " (rank " + std::to_string(s.rank_of(mb, stage)) + "): ";
      if (p.forward == -1) problem(pass + "no forward");
      if (p.backward == -1) problem(pass + "no backward");
      if (p.backward_is_split && p.weight == -1) problem(pass + "B_input without its W");
      if (!p.backward_is_split && p.weight >= 0) {
        const OpRef w = g.where[p.weight];
        problem(pass + "W (" + where_text(s, w.rank, w.index) + ") without a B_input (a full B computes it)");
      }
    }
  }
  if (!g.problems.empty()) return g;

  // Dependencies.
  g.dep_begin.assign(g.num_ops() + 1, 0);
  auto pass_of = [&](int mb, int stage) -> const PassOps& {
    return passes[static_cast<size_t>(mb) * num_stages + stage];
  };
  for (int r = 0; r < s.num_ranks; ++r) {
    for (int i = 0; i < static_cast<int>(s.ops[r].size()); ++i) {
      const Op& op = s.ops[r][i];
      auto forward_deps = [&](int mb, int stage) {
        if (stage > 0) g.deps.push_back(pass_of(mb, stage - 1).forward);
      };
      auto backward_deps = [&](int mb, int stage) {
        g.deps.push_back(pass_of(mb, stage).forward);
        if (stage + 1 < num_stages) g.deps.push_back(pass_of(mb, stage + 1).backward);
      };
      switch (op.kind) {
        case OpKind::F: forward_deps(op.microbatch, op.stage); break;
        case OpKind::B:
        case OpKind::BInput: backward_deps(op.microbatch, op.stage); break;
        case OpKind::W: g.deps.push_back(pass_of(op.microbatch, op.stage).backward); break;
        case OpKind::FB:
          forward_deps(op.microbatch, op.stage);
          backward_deps(op.b_microbatch, op.b_stage);
          break;
      }
      g.dep_begin[g.id(r, i) + 1] = static_cast<int64_t>(g.deps.size());
    }
  }
  return g;
}

}  // namespace moelab::schedule::detail
