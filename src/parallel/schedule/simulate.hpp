// Event-driven simulator of a pipeline schedule (DeepSeek-V3 Table 2;
// shared/reference/deepseek-v3.md §6.5). Given the time of one chunk's
// forward F, full backward B, weight-gradient part W (so B_input = B - W),
// an overlapped forward-and-backward pair F&B and a point-to-point latency,
// every rank runs its program in order; an op starts when the rank is free
// (gap_s after its previous op: 0 for the paper's model; measured timelines
// have one) and its inputs have arrived. Reported per rank: busy time, idle time
// (makespan - busy: the bubble), peak in-flight activations (in units of one
// micro-batch's activations of one stage: +1 when a forward starts, -1 when
// the (mb, stage)'s backward is complete, i.e. after B or after W) and the
// parameter copies (stages held, in units of one stage).
//
// Durations may also differ by stage (StageDurations): the embedding stage and
// the head + loss stage of a real model are much heavier than the middle ones,
// and one mean per op kind misses that (measured_durations.hpp extracts such a
// table from a timeline).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "parallel/schedule/schedule.hpp"

namespace moelab::schedule {

struct Durations {
  double f_s = 1.0;    // forward of one chunk
  double b_s = 2.0;    // full backward of one chunk (input + weight gradients)
  double w_s = 1.0;    // weight-gradient part of b_s
  double fb_s = 3.0;   // overlapped forward + backward pair
  double p2p_s = 0.0;  // latency of one activation / gradient transfer between ranks
  double gap_s = 0.0;  // a rank's time between two of its ops (bookkeeping, or waiting for a core)
  double b_input_s() const { return b_s - w_s; }
  double of(OpKind kind) const;
  void validate() const;  // non-negative, w <= b
};

// Op durations per (rank, stage, op kind): a stage as run on a rank, each
// entry overriding `global` where set (an entry < 0 is unset). For every
// schedule but DualPipe a stage runs on one rank; DualPipe runs each on two
// (one per direction), and measured times of the same layers on two ranks
// differ (measured_durations.hpp). An F&B op overlaps the forward of one
// stage with the backward of another (DualPipe(V): the two stages a rank
// holds), so its time is looked up by the rank's (forward stage, backward
// stage) pair first, then by the rank's forward stage's F&B entry, then
// global.fb_s. The point-to-point latency (global.p2p_s) and the gap between
// two ops of a rank (global.gap_s) are the same everywhere.
struct StageDurations {
  static constexpr double kUnset = -1.0;
  using PerKind = std::array<double, kNumOpKinds>;  // seconds by OpKind; kUnset = use global

  Durations global;
  int num_ranks = 0, num_stages = 0;  // 0, 0: every op takes global
  std::vector<PerKind> op_s;          // [ranks, S]
  std::vector<double> fb_pair_s;      // [ranks, S, S]: rank, forward stage, backward stage

  StageDurations() = default;
  // Every (rank, stage, kind) unset: global for all ops until set.
  explicit StageDurations(const Durations& d, int num_ranks = 0, int num_stages = 0);
  // One Durations per stage ([S]; its B_input = B - W, its F&B the F&B whose
  // forward half is on that stage), the same on every rank.
  static StageDurations per_stage(const std::vector<Durations>& stages, int num_ranks, double p2p_s);

  void set(int rank, int stage, OpKind kind, double seconds);
  void set_fb_pair(int rank, int f_stage, int b_stage, double seconds);
  double at(int rank, int stage, OpKind kind) const;  // the entry, or global.of(kind)
  double of(int rank, const Op& op) const;
  // global.validate(); set entries >= 0; a table of 0 x 0 or ranks x stages.
  void validate(int expected_ranks, int expected_stages) const;
};

// One row of the schedule/events table.
struct Event {
  int32_t rank = 0;
  OpKind kind = OpKind::F;
  int32_t microbatch = -1, stage = -1, chunk = -1, direction = -1;
  int32_t b_microbatch = -1, b_stage = -1, b_chunk = -1, b_direction = -1;  // F&B: the backward half
  double start_s = 0, end_s = 0;
};

// The event row of one op of rank `rank` (chunk and direction from the layout).
Event make_event(const Schedule& s, int rank, const Op& op, double start_s, double end_s);

struct RankFigures {
  double busy_s = 0, idle_s = 0, end_s = 0;
  int64_t peak_activations = 0;
  int param_copies = 0;
  int64_t num_ops = 0;
  int64_t num_ops_of[kNumOpKinds] = {};
};

struct SimResult {
  double makespan_s = 0;
  std::vector<RankFigures> ranks;
  std::vector<Event> events;  // rank by rank in program order
  double max_idle_s() const;
  double min_idle_s() const;
  int64_t max_peak_activations() const;
};

// Validates the schedule (throws on problems), then replays it.
SimResult simulate(const Schedule& s, const Durations& d);
SimResult simulate(const Schedule& s, const StageDurations& d);

// Peak in-flight activations of each rank (timing-independent).
std::vector<int64_t> peak_activations(const Schedule& s);

// DeepSeek-V3 Table 2, PP = number of stages (for DualPipeV twice the ranks):
//   1f1b, gpipe  (PP-1)(F+B)     zb1p  (PP-1)(F+B-2W)
//   dualpipe, dualpipev  (PP/2-1)(F&B+B-3W)
// Throws for kinds without a closed form.
double table2_bubble_s(const std::string& kind, int num_stages, const Durations& d);
// Table 2's activation column (1F1B, ZB1P: PP; DualPipe(V): PP+1) and
// parameter column (1x; 2x).
int64_t table2_activations(const std::string& kind, int num_stages);
int table2_param_copies(const std::string& kind);

}  // namespace moelab::schedule
