#include "parallel/schedule/measured_durations.hpp"

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"

namespace moelab::schedule {

Durations mean_durations(const SimResult& timeline, const Durations& fallback) {
  double sum[kNumOpKinds] = {}, count[kNumOpKinds] = {};
  for (const Event& e : timeline.events) {
    sum[static_cast<int>(e.kind)] += e.end_s - e.start_s;
    count[static_cast<int>(e.kind)] += 1;
  }
  auto ran = [&](OpKind k) { return count[static_cast<int>(k)] > 0; };
  auto mean = [&](OpKind k) { return sum[static_cast<int>(k)] / count[static_cast<int>(k)]; };
  Durations d = fallback;
  if (ran(OpKind::F)) d.f_s = mean(OpKind::F);
  if (ran(OpKind::W))
    d.w_s = mean(OpKind::W);
  else if (!ran(OpKind::BInput))
    d.w_s = 0;  // nothing was split: W plays no part
  if (ran(OpKind::B))
    d.b_s = mean(OpKind::B);
  else if (ran(OpKind::BInput))
    d.b_s = mean(OpKind::BInput) + d.w_s;
  d.w_s = std::min(d.w_s, d.b_s);
  d.fb_s = ran(OpKind::FB) ? mean(OpKind::FB) : d.f_s + d.b_s;
  return d;
}

Overheads measured_overheads(const SimResult& timeline) {
  // Who produced what, and when: the forward output and the input gradient
  // of each (micro-batch, stage), and the B_input a W continues; an F&B op
  // produces both of its halves at its end.
  struct Produced {
    int rank = -1;
    double end_s = 0;
  };
  auto key = [](int mb, int stage) { return (static_cast<int64_t>(mb) << 32) | static_cast<uint32_t>(stage); };
  std::unordered_map<int64_t, Produced> forward_out, backward_out;
  int num_ranks = 0;
  for (const Event& e : timeline.events) {
    MOE_CHECK(e.rank >= 0) << "measured_overheads: event of rank " << e.rank;
    num_ranks = std::max(num_ranks, e.rank + 1);
    if (e.kind == OpKind::F || e.kind == OpKind::FB) forward_out[key(e.microbatch, e.stage)] = {e.rank, e.end_s};
    if (e.kind == OpKind::B || e.kind == OpKind::BInput) backward_out[key(e.microbatch, e.stage)] = {e.rank, e.end_s};
    if (e.kind == OpKind::FB) backward_out[key(e.b_microbatch, e.b_stage)] = {e.rank, e.end_s};
  }
  // Each op with the end of its rank's previous op (-1: none) and the latest
  // end among its inputs from other ranks (-1: all local). The inputs of a
  // backward on the same rank (its forward, and W's B_input) are local.
  struct Seen {
    double start_s, previous_end_s, remote_end_s;
  };
  std::vector<std::vector<const Event*>> by_rank(num_ranks);
  for (const Event& e : timeline.events) by_rank[e.rank].push_back(&e);
  std::vector<Seen> seen;
  for (auto& ops : by_rank) {
    std::stable_sort(ops.begin(), ops.end(), [](const Event* a, const Event* b) { return a->start_s < b->start_s; });
    double previous_end_s = -1;
    for (const Event* e : ops) {
      double remote_end_s = -1;
      auto need = [&](const std::unordered_map<int64_t, Produced>& from, int mb, int stage) {
        auto it = from.find(key(mb, stage));
        if (it != from.end() && it->second.rank != e->rank) remote_end_s = std::max(remote_end_s, it->second.end_s);
      };
      if (e->kind == OpKind::F || e->kind == OpKind::FB) need(forward_out, e->microbatch, e->stage - 1);
      if (e->kind == OpKind::B || e->kind == OpKind::BInput) need(backward_out, e->microbatch, e->stage + 1);
      if (e->kind == OpKind::FB) need(backward_out, e->b_microbatch, e->b_stage + 1);
      seen.push_back({e->start_s, previous_end_s, remote_end_s});
      previous_end_s = std::max(previous_end_s, e->end_s);
    }
  }
  Overheads out;
  auto mean = [](double sum, int64_t n) { return n > 0 ? std::max(sum / n, 0.0) : 0.0; };
  // 1. The gap where nothing came from another rank.
  double gap_sum = 0, p2p_sum = 0;
  for (const Seen& x : seen)
    if (x.previous_end_s >= 0 && x.remote_end_s < 0) gap_sum += x.start_s - x.previous_end_s, ++out.num_gap_samples;
  const double local_gap_s = mean(gap_sum, out.num_gap_samples);
  // 2. The latency where the rank waited for a transfer. NOTE: data that
  // arrived while the rank was busy says nothing about the latency.
  for (const Seen& x : seen)
    if (x.remote_end_s >= 0 && x.remote_end_s > (x.previous_end_s >= 0 ? x.previous_end_s + local_gap_s : 0.0))
      p2p_sum += x.start_s - x.remote_end_s, ++out.num_p2p_samples;
  out.p2p_s = mean(p2p_sum, out.num_p2p_samples);
  // 3. The gap again, with the ops whose remote inputs were already there.
  for (const Seen& x : seen)
    if (x.previous_end_s >= 0 && x.remote_end_s >= 0 && x.remote_end_s + out.p2p_s <= x.previous_end_s)
      gap_sum += x.start_s - x.previous_end_s, ++out.num_gap_samples;
  out.gap_s = mean(gap_sum, out.num_gap_samples);
  return out;
}

StageDurations stage_durations(const Schedule& s, const SimResult& timeline, const Durations& fallback) {
  const int R = s.num_ranks, S = s.num_stages;
  // [R, S][kind] and [R, S, S] (rank, forward stage, backward stage) sums and counts.
  const size_t places = static_cast<size_t>(R) * S;
  std::vector<std::array<double, kNumOpKinds>> sum(places), count(places);
  for (size_t i = 0; i < places; ++i) sum[i].fill(0), count[i].fill(0);
  std::vector<double> pair_sum(places * S, 0), pair_count(places * S, 0);
  for (const Event& e : timeline.events) {
    MOE_CHECK(e.rank >= 0 && e.rank < R && e.stage >= 0 && e.stage < S)
        << "stage_durations: event of rank " << e.rank << ", stage " << e.stage << " in schedule " << s.kind
        << " of " << R << " ranks x " << S << " stages";
    const size_t place = static_cast<size_t>(e.rank) * S + e.stage;
    const double d = e.end_s - e.start_s;
    sum[place][static_cast<int>(e.kind)] += d;
    count[place][static_cast<int>(e.kind)] += 1;
    if (e.kind == OpKind::FB) {
      MOE_CHECK(e.b_stage >= 0 && e.b_stage < S) << "stage_durations: F&B backward stage " << e.b_stage
                                                 << " in a schedule of " << S << " stages";
      pair_sum[place * S + e.b_stage] += d;
      pair_count[place * S + e.b_stage] += 1;
    }
  }
  Durations global = mean_durations(timeline, fallback);
  const Overheads overheads = measured_overheads(timeline);
  global.p2p_s = overheads.num_p2p_samples > 0 ? overheads.p2p_s : fallback.p2p_s;
  global.gap_s = overheads.num_gap_samples > 0 ? overheads.gap_s : fallback.gap_s;
  StageDurations out(global, R, S);
  for (size_t i = 0; i < places; ++i)
    for (int k = 0; k < kNumOpKinds; ++k)
      if (count[i][k] > 0)
        out.set(static_cast<int>(i / S), static_cast<int>(i % S), static_cast<OpKind>(k), sum[i][k] / count[i][k]);
  for (size_t i = 0; i < pair_sum.size(); ++i)
    if (pair_count[i] > 0) {
      const int rank = static_cast<int>(i / (static_cast<size_t>(S) * S));
      const int f_stage = static_cast<int>(i / S % S), b_stage = static_cast<int>(i % S);
      out.set_fb_pair(rank, f_stage, b_stage, pair_sum[i] / pair_count[i]);
    }
  return out;
}

}  // namespace moelab::schedule
