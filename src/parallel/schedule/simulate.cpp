#include "parallel/schedule/simulate.hpp"

#include <algorithm>
#include <functional>

#include "core/error.hpp"
#include "parallel/schedule/graph.hpp"
#include "parallel/schedule/replay.hpp"
#include "parallel/schedule/validate.hpp"

namespace moelab::schedule {

double Durations::of(OpKind kind) const {
  switch (kind) {
    case OpKind::F: return f_s;
    case OpKind::B: return b_s;
    case OpKind::BInput: return b_input_s();
    case OpKind::W: return w_s;
    case OpKind::FB: return fb_s;
  }
  return 0;
}

void Durations::validate() const {
  MOE_CHECK(f_s >= 0 && b_s >= 0 && w_s >= 0 && fb_s >= 0 && p2p_s >= 0 && gap_s >= 0)
      << "schedule durations must be >= 0 (F " << f_s << ", B " << b_s << ", W " << w_s << ", F&B " << fb_s
      << ", p2p " << p2p_s << ", gap " << gap_s << ")";
  MOE_CHECK(w_s <= b_s) << "schedule durations: W (" << w_s << ") is part of the full backward B (" << b_s
                        << ") and cannot exceed it";
}

StageDurations::StageDurations(const Durations& d, int ranks, int stages)
    : global(d), num_ranks(ranks), num_stages(stages) {
  MOE_CHECK(ranks >= 0 && stages >= 0 && (ranks == 0) == (stages == 0))
      << "schedule durations: a table of " << ranks << " ranks x " << stages << " stages";
  PerKind unset;
  unset.fill(kUnset);
  op_s.assign(static_cast<size_t>(ranks) * stages, unset);
  fb_pair_s.assign(static_cast<size_t>(ranks) * stages * stages, kUnset);
}

StageDurations StageDurations::per_stage(const std::vector<Durations>& stages, int ranks, double p2p_s) {
  Durations global;
  global.p2p_s = p2p_s;
  StageDurations out(global, ranks, static_cast<int>(stages.size()));
  for (int st = 0; st < out.num_stages; ++st) {
    stages[st].validate();
    for (int r = 0; r < ranks; ++r)
      for (int k = 0; k < kNumOpKinds; ++k) out.set(r, st, static_cast<OpKind>(k), stages[st].of(static_cast<OpKind>(k)));
  }
  return out;
}

void StageDurations::set(int rank, int stage, OpKind kind, double seconds) {
  MOE_CHECK(rank >= 0 && rank < num_ranks && stage >= 0 && stage < num_stages)
      << "schedule durations: rank " << rank << ", stage " << stage << " outside the table's " << num_ranks
      << " ranks x " << num_stages << " stages";
  op_s[static_cast<size_t>(rank) * num_stages + stage][static_cast<int>(kind)] = seconds;
}

void StageDurations::set_fb_pair(int rank, int f_stage, int b_stage, double seconds) {
  MOE_CHECK(rank >= 0 && rank < num_ranks && f_stage >= 0 && f_stage < num_stages && b_stage >= 0 &&
            b_stage < num_stages)
      << "schedule durations: rank " << rank << ", F&B pair (" << f_stage << ", " << b_stage
      << ") outside the table's " << num_ranks << " ranks x " << num_stages << " stages";
  fb_pair_s[(static_cast<size_t>(rank) * num_stages + f_stage) * num_stages + b_stage] = seconds;
}

double StageDurations::at(int rank, int stage, OpKind kind) const {
  if (rank >= 0 && rank < num_ranks && stage >= 0 && stage < num_stages) {
    const double v = op_s[static_cast<size_t>(rank) * num_stages + stage][static_cast<int>(kind)];
    if (v >= 0) return v;
  }
  return global.of(kind);
}

double StageDurations::of(int rank, const Op& op) const {
  if (op.kind == OpKind::FB && rank >= 0 && rank < num_ranks && op.stage >= 0 && op.stage < num_stages &&
      op.b_stage >= 0 && op.b_stage < num_stages) {
    const double v = fb_pair_s[(static_cast<size_t>(rank) * num_stages + op.stage) * num_stages + op.b_stage];
    if (v >= 0) return v;
  }
  return at(rank, op.stage, op.kind);
}

void StageDurations::validate(int expected_ranks, int expected_stages) const {
  global.validate();
  MOE_CHECK((num_ranks == 0 && num_stages == 0) || (num_ranks == expected_ranks && num_stages == expected_stages))
      << "schedule durations: a table of " << num_ranks << " ranks x " << num_stages << " stages for a schedule of "
      << expected_ranks << " x " << expected_stages;
  MOE_CHECK(op_s.size() == static_cast<size_t>(num_ranks) * num_stages &&
            fb_pair_s.size() == static_cast<size_t>(num_ranks) * num_stages * num_stages)
      << "schedule durations: tables of " << op_s.size() << " and " << fb_pair_s.size() << " entries for "
      << num_ranks << " ranks x " << num_stages << " stages";
  auto ok = [](double v) { return v == kUnset || v >= 0; };
  for (size_t i = 0; i < op_s.size(); ++i)
    for (int k = 0; k < kNumOpKinds; ++k)
      MOE_CHECK(ok(op_s[i][k])) << "schedule durations: rank " << i / num_stages << ", stage " << i % num_stages
                                << " " << op_name(static_cast<OpKind>(k)) << " " << op_s[i][k] << " s < 0";
  for (size_t i = 0; i < fb_pair_s.size(); ++i)
    MOE_CHECK(ok(fb_pair_s[i])) << "schedule durations: F&B entry " << i << " " << fb_pair_s[i] << " s < 0";
}

double SimResult::max_idle_s() const {
  double v = 0;
  for (const auto& r : ranks) v = std::max(v, r.idle_s);
  return v;
}

double SimResult::min_idle_s() const {
  double v = ranks.empty() ? 0 : ranks[0].idle_s;
  for (const auto& r : ranks) v = std::min(v, r.idle_s);
  return v;
}

int64_t SimResult::max_peak_activations() const {
  int64_t v = 0;
  for (const auto& r : ranks) v = std::max(v, r.peak_activations);
  return v;
}

Event make_event(const Schedule& s, int rank, const Op& op, double start_s, double end_s) {
  Event e;
  e.rank = rank;
  e.kind = op.kind;
  e.microbatch = op.microbatch;
  e.stage = op.stage;
  e.chunk = s.chunk_of(op.microbatch, op.stage);
  e.direction = s.direction(op.microbatch);
  if (op.kind == OpKind::FB) {
    e.b_microbatch = op.b_microbatch;
    e.b_stage = op.b_stage;
    e.b_chunk = s.chunk_of(op.b_microbatch, op.b_stage);
    e.b_direction = s.direction(op.b_microbatch);
  }
  e.start_s = start_s;
  e.end_s = end_s;
  return e;
}

std::vector<int64_t> peak_activations(const Schedule& s) {
  // A (mb, stage) whose backward was split frees its activations at W.
  std::vector<char> split(static_cast<size_t>(s.num_microbatches) * s.num_stages, 0);
  for (const auto& rank_ops : s.ops)
    for (const Op& op : rank_ops)
      if (op.kind == OpKind::BInput) split[static_cast<size_t>(op.microbatch) * s.num_stages + op.stage] = 1;
  std::vector<int64_t> peak(s.num_ranks, 0);
  for (int r = 0; r < s.num_ranks; ++r) {
    int64_t live = 0;
    for (const Op& op : s.ops[r]) {
      if (op.has_forward()) peak[r] = std::max(peak[r], ++live);
      if (op.kind == OpKind::B || op.kind == OpKind::W) --live;
      if (op.kind == OpKind::FB && !split[static_cast<size_t>(op.b_microbatch) * s.num_stages + op.b_stage]) --live;
    }
  }
  return peak;
}

namespace {

SimResult simulate_with(const Schedule& s, const std::function<double(int, const Op&)>& duration_s, double p2p_s,
                        double gap_s) {
  validate(s);
  const detail::Graph g = detail::build_graph(s);
  const detail::Replay run = detail::replay(s, g, duration_s, p2p_s, gap_s);
  MOE_CHECK(run.complete) << "schedule " << s.kind << ": replay did not complete";

  SimResult out;
  out.ranks.resize(s.num_ranks);
  out.events.reserve(g.num_ops());
  const std::vector<int64_t> peaks = peak_activations(s);
  for (int r = 0; r < s.num_ranks; ++r) {
    RankFigures& f = out.ranks[r];
    f.peak_activations = peaks[r];
    f.param_copies = s.chunks_on(r);
    f.num_ops = static_cast<int64_t>(s.ops[r].size());
    for (int i = 0; i < static_cast<int>(s.ops[r].size()); ++i) {
      const Op& op = s.ops[r][i];
      const int64_t id = g.id(r, i);
      const Event& e = out.events.emplace_back(make_event(s, r, op, run.start_s[id], run.end_s[id]));
      f.busy_s += e.end_s - e.start_s;
      f.end_s = std::max(f.end_s, e.end_s);
      ++f.num_ops_of[static_cast<int>(op.kind)];
    }
    out.makespan_s = std::max(out.makespan_s, f.end_s);
  }
  for (auto& f : out.ranks) f.idle_s = out.makespan_s - f.busy_s;
  return out;
}

}  // namespace

SimResult simulate(const Schedule& s, const Durations& d) {
  d.validate();
  return simulate_with(s, [&](int, const Op& op) { return d.of(op.kind); }, d.p2p_s, d.gap_s);
}

SimResult simulate(const Schedule& s, const StageDurations& d) {
  d.validate(s.num_ranks, s.num_stages);
  return simulate_with(s, [&](int rank, const Op& op) { return d.of(rank, op); }, d.global.p2p_s, d.global.gap_s);
}

double table2_bubble_s(const std::string& kind, int pp, const Durations& d) {
  if (kind == "1f1b" || kind == "gpipe") return (pp - 1) * (d.f_s + d.b_s);
  if (kind == "zb1p") return (pp - 1) * (d.f_s + d.b_s - 2 * d.w_s);
  if (kind == "dualpipe" || kind == "dualpipev") return (pp / 2 - 1) * (d.fb_s + d.b_s - 3 * d.w_s);
  MOE_CHECK(false) << "schedule " << kind << ": no closed-form bubble in DeepSeek-V3 Table 2";
  return 0;
}

int64_t table2_activations(const std::string& kind, int pp) {
  if (kind == "1f1b" || kind == "zb1p") return pp;
  if (kind == "dualpipe" || kind == "dualpipev") return pp + 1;
  MOE_CHECK(false) << "schedule " << kind << ": no activation figure in DeepSeek-V3 Table 2";
  return 0;
}

int table2_param_copies(const std::string& kind) {
  if (kind == "1f1b" || kind == "zb1p") return 1;
  if (kind == "dualpipe" || kind == "dualpipev") return 2;
  MOE_CHECK(false) << "schedule " << kind << ": no parameter figure in DeepSeek-V3 Table 2";
  return 0;
}

}  // namespace moelab::schedule
