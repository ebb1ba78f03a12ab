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

P2pLatency p2p_latency(const SimResult& timeline) {
  // Who produced what, and when: the forward output and the input gradient
  // of each (micro-batch, stage); an F&B op produces both of its halves at
  // its end.
  struct Produced {
    int rank = -1;
    double end_s = 0;
  };
  auto key = [](int mb, int stage) { return (static_cast<int64_t>(mb) << 32) | static_cast<uint32_t>(stage); };
  std::unordered_map<int64_t, Produced> forward_out, backward_out;
  int num_ranks = 0;
  for (const Event& e : timeline.events) {
    num_ranks = std::max(num_ranks, e.rank + 1);
    if (e.kind == OpKind::F || e.kind == OpKind::FB) forward_out[key(e.microbatch, e.stage)] = {e.rank, e.end_s};
    if (e.kind == OpKind::B || e.kind == OpKind::BInput) backward_out[key(e.microbatch, e.stage)] = {e.rank, e.end_s};
    if (e.kind == OpKind::FB) backward_out[key(e.b_microbatch, e.b_stage)] = {e.rank, e.end_s};
  }
  // Each rank's ops by start time (the program order), to know when the rank became free.
  std::vector<std::vector<const Event*>> by_rank(num_ranks);
  for (const Event& e : timeline.events) by_rank[e.rank].push_back(&e);
  std::vector<double> samples;
  for (auto& ops : by_rank) {
    std::stable_sort(ops.begin(), ops.end(), [](const Event* a, const Event* b) { return a->start_s < b->start_s; });
    double free_s = 0;  // the previous op's end (0: the step's common start)
    for (const Event* e : ops) {
      double remote_end_s = -1;
      auto need = [&](const std::unordered_map<int64_t, Produced>& from, int mb, int stage) {
        auto it = from.find(key(mb, stage));
        if (it != from.end() && it->second.rank != e->rank) remote_end_s = std::max(remote_end_s, it->second.end_s);
      };
      if (e->kind == OpKind::F || e->kind == OpKind::FB) need(forward_out, e->microbatch, e->stage - 1);
      if (e->kind == OpKind::B || e->kind == OpKind::BInput) need(backward_out, e->microbatch, e->stage + 1);
      if (e->kind == OpKind::FB) need(backward_out, e->b_microbatch, e->b_stage + 1);
      // NOTE: only when the data was produced after this rank became free
      // did the rank certainly wait for the transfer; data that arrived
      // earlier says nothing about the latency.
      if (remote_end_s > free_s) samples.push_back(e->start_s - remote_end_s);
      free_s = std::max(free_s, e->end_s);
    }
  }
  P2pLatency out;
  out.num_samples = static_cast<int64_t>(samples.size());
  if (samples.empty()) return out;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  out.latency_s = n % 2 == 1 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  out.latency_s = std::max(out.latency_s, 0.0);  // clock offsets between ranks can make a few samples negative
  return out;
}

StageDurations stage_durations(const SimResult& timeline, int num_stages, const Durations& fallback) {
  MOE_CHECK(num_stages >= 1) << "stage_durations: num_stages must be >= 1, got " << num_stages;
  const int S = num_stages;
  // [S][kind] and [S, S] (forward stage, backward stage) sums and counts.
  std::vector<std::array<double, kNumOpKinds>> sum(S), count(S);
  for (int st = 0; st < S; ++st) sum[st].fill(0), count[st].fill(0);
  std::vector<double> pair_sum(static_cast<size_t>(S) * S, 0), pair_count(static_cast<size_t>(S) * S, 0);
  for (const Event& e : timeline.events) {
    MOE_CHECK(e.stage >= 0 && e.stage < S) << "stage_durations: event of stage " << e.stage << " in a schedule of "
                                           << S << " stages";
    const double d = e.end_s - e.start_s;
    sum[e.stage][static_cast<int>(e.kind)] += d;
    count[e.stage][static_cast<int>(e.kind)] += 1;
    if (e.kind == OpKind::FB) {
      MOE_CHECK(e.b_stage >= 0 && e.b_stage < S) << "stage_durations: F&B backward stage " << e.b_stage
                                                 << " in a schedule of " << S << " stages";
      pair_sum[static_cast<size_t>(e.stage) * S + e.b_stage] += d;
      pair_count[static_cast<size_t>(e.stage) * S + e.b_stage] += 1;
    }
  }
  Durations global = mean_durations(timeline, fallback);
  const P2pLatency p2p = p2p_latency(timeline);
  global.p2p_s = p2p.num_samples > 0 ? p2p.latency_s : fallback.p2p_s;
  StageDurations out(global, S);
  for (int st = 0; st < S; ++st)
    for (int k = 0; k < kNumOpKinds; ++k)
      if (count[st][k] > 0) out.set(st, static_cast<OpKind>(k), sum[st][k] / count[st][k]);
  for (size_t i = 0; i < pair_sum.size(); ++i)
    if (pair_count[i] > 0) out.set_fb_pair(static_cast<int>(i / S), static_cast<int>(i % S), pair_sum[i] / pair_count[i]);
  return out;
}

}  // namespace moelab::schedule
