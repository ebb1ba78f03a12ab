#include "parallel/schedule/events_h5.hpp"

#include <sstream>
#include <vector>

namespace moelab::schedule {

std::string op_codes_text() {
  std::ostringstream text;
  for (int k = 0; k < kNumOpKinds; ++k) text << (k ? " " : "") << k << "=" << op_name(static_cast<OpKind>(k));
  return text.str();
}

void write_schedule_group(h5::Group& run_group, const Schedule& s, const SimResult& result,
                          const std::string& source) {
  h5::Group g = run_group.group("schedule");
  g.set_attr("kind", s.kind);
  g.set_attr("source", source);
  g.set_attr("num_ranks", s.num_ranks);
  g.set_attr("num_stages", s.num_stages);
  g.set_attr("num_microbatches", s.num_microbatches);
  g.set_attr("num_directions", s.num_directions);
  g.set_attr("makespan_s", result.makespan_s);
  g.set_attr("op_codes", op_codes_text());

  const int64_t n = static_cast<int64_t>(result.events.size());
  std::vector<int32_t> rank(n), op(n), mb(n), stage(n), chunk(n), dir(n), b_mb(n), b_stage(n), b_chunk(n), b_dir(n);
  std::vector<double> start(n), end(n);
  for (int64_t i = 0; i < n; ++i) {
    const Event& e = result.events[i];
    rank[i] = e.rank;
    op[i] = static_cast<int32_t>(e.kind);
    mb[i] = e.microbatch;
    stage[i] = e.stage;
    chunk[i] = e.chunk;
    dir[i] = e.direction;
    b_mb[i] = e.b_microbatch;
    b_stage[i] = e.b_stage;
    b_chunk[i] = e.b_chunk;
    b_dir[i] = e.b_direction;
    start[i] = e.start_s;
    end[i] = e.end_s;
  }
  h5::Group ev = g.group("events");
  ev.write<int32_t>("rank", {n}, rank.data());
  ev.write<int32_t>("op", {n}, op.data());
  ev.write<int32_t>("microbatch", {n}, mb.data());
  ev.write<int32_t>("stage", {n}, stage.data());
  ev.write<int32_t>("chunk", {n}, chunk.data());
  ev.write<int32_t>("direction", {n}, dir.data());
  ev.write<int32_t>("b_microbatch", {n}, b_mb.data());
  ev.write<int32_t>("b_stage", {n}, b_stage.data());
  ev.write<int32_t>("b_chunk", {n}, b_chunk.data());
  ev.write<int32_t>("b_direction", {n}, b_dir.data());
  ev.write<double>("start_s", {n}, start.data());
  ev.write<double>("end_s", {n}, end.data());
  ev.set_attr("op_codes", op_codes_text());

  const int64_t r = static_cast<int64_t>(result.ranks.size());
  std::vector<double> busy(r), idle(r), rank_end(r);
  std::vector<int64_t> peak(r), params(r), ops(r);
  for (int64_t i = 0; i < r; ++i) {
    busy[i] = result.ranks[i].busy_s;
    idle[i] = result.ranks[i].idle_s;
    rank_end[i] = result.ranks[i].end_s;
    peak[i] = result.ranks[i].peak_activations;
    params[i] = result.ranks[i].param_copies;
    ops[i] = result.ranks[i].num_ops;
  }
  h5::Group rg = g.group("ranks");
  rg.write<double>("busy_s", {r}, busy.data());
  rg.write<double>("idle_s", {r}, idle.data());
  rg.write<double>("end_s", {r}, rank_end.data());
  rg.write<int64_t>("peak_activations", {r}, peak.data());
  rg.write<int64_t>("param_copies", {r}, params.data());
  rg.write<int64_t>("num_ops", {r}, ops.data());
}

}  // namespace moelab::schedule
