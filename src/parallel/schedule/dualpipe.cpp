// DualPipe (DeepSeek-V3 §3.2.1, Figure 5; the public deepseek-ai/DualPipe
// dualpipe.py). PP ranks, PP stages, micro-batches fed from both ends: the
// first C/2 go stage 0 -> PP-1 starting on rank 0 (direction 0), the other
// C/2 the same stages starting on rank PP-1 (direction 1), so rank r holds
// stage r (chunk 0, direction 0) and stage PP-1-r (chunk 1, direction 1): two
// parameter copies. A rank's phase 0 is direction 0 on the first half of the
// ranks and direction 1 on the second half; with h = min(r, PP-1-r):
//
//   1 nF0         2(PP/2-h-1) x  F0
//   2 nF0F1       h+1         x  F0 F1
//   3 nB1W1F1     PP/2-h-1    x  B_input1 W F1                    (zero bubble)
//   4 nF0B1F1B0   C/2-PP+h+1  x  F0&B1 F1&B0   (middle ranks: first F0, B1 apart)
//   5 nB1F1B0     PP/2-h-1    x  B1 F1&B0
//   6 nB1B0       h+1         x  B1 B0   (B_input from iteration (h+1)/2 on)
//   7 nWB0        PP/2-h-1    x  W B_input0                       (zero bubble)
//   8 nW          h+1         x  W
//
// W runs the oldest deferred weight gradient (DualPipe's WeightGradStore is a
// FIFO). Table 2: bubble (PP/2-1)(F&B+B-3W), parameters 2x, activations PP+1.
#include "core/error.hpp"
#include "parallel/schedule/dualpipe_steps.hpp"
#include "parallel/schedule/generators.hpp"

#include <algorithm>
#include <deque>
#include <utility>

namespace moelab::schedule {

namespace detail {

std::vector<Op> dualpipe_steps(const DualPipeRank& rank) {
  std::vector<Op> ops;
  int next_f[2] = {0, 0}, next_b[2] = {0, 0};
  std::deque<std::pair<int, int>> deferred_w;  // (micro-batch, stage), oldest first
  auto forward = [&](int phase) { ops.push_back(Op::f(rank.microbatch(phase, next_f[phase]++), rank.stage[phase])); };
  auto backward = [&](int phase, bool zero_bubble) {
    const int mb = rank.microbatch(phase, next_b[phase]++);
    if (zero_bubble) {
      ops.push_back(Op::b_input(mb, rank.stage[phase]));
      deferred_w.emplace_back(mb, rank.stage[phase]);
    } else {
      ops.push_back(Op::b(mb, rank.stage[phase]));
    }
  };
  auto weight = [&] {
    MOE_CHECK(!deferred_w.empty()) << "dualpipe: W with no deferred weight gradient";
    ops.push_back(Op::w(deferred_w.front().first, deferred_w.front().second));
    deferred_w.pop_front();
  };
  auto forward_backward = [&](int f_phase, int b_phase) {
    const int f_mb = rank.microbatch(f_phase, next_f[f_phase]++);
    const int b_mb = rank.microbatch(b_phase, next_b[b_phase]++);
    ops.push_back(Op::fb(f_mb, rank.stage[f_phase], b_mb, rank.stage[b_phase]));
  };

  const int half = rank.half, h = rank.half_rank;
  // Step 1: nF0
  for (int i = 0; i < (half - h - 1) * 2; ++i) forward(0);
  // Step 2: nF0F1
  for (int i = 0; i < h + 1; ++i) {
    forward(0);
    forward(1);
  }
  // Step 3: nB1W1F1 (zero bubble)
  for (int i = 0; i < half - h - 1; ++i) {
    backward(1, true);
    weight();
    forward(1);
  }
  // Step 4 (main): nF0B1F1B0
  const int step_4 = rank.half_chunks - 2 * half + h + 1;
  for (int i = 0; i < step_4; ++i) {
    if (i == 0 && rank.runs_first_pair_apart) {
      // NOTE: as DualPipe, not overlapped, to shorten the bubble.
      forward(0);
      backward(1, false);
    } else {
      forward_backward(0, 1);
    }
    forward_backward(1, 0);
  }
  // Step 5: nB1F1B0
  for (int i = 0; i < half - h - 1; ++i) {
    backward(1, false);
    forward_backward(1, 0);
  }
  // Step 6: nB1B0, the second half of them zero bubble
  bool zero_bubble = false;
  for (int i = 0; i < h + 1; ++i) {
    if (i == (h + 1) / 2 && h % 2 == 1) zero_bubble = true;
    backward(1, zero_bubble);
    if (i == (h + 1) / 2 && h % 2 == 0) zero_bubble = true;
    backward(0, zero_bubble);
  }
  // Step 7: nWB0 (zero bubble)
  for (int i = 0; i < half - h - 1; ++i) {
    weight();
    backward(0, true);
  }
  // Step 8: nW
  for (int i = 0; i < h + 1; ++i) weight();
  MOE_CHECK(deferred_w.empty()) << "dualpipe: " << deferred_w.size() << " weight gradients left deferred";
  return ops;
}

}  // namespace detail

Schedule make_dualpipe(int num_ranks, int num_microbatches) {
  const int pp = num_ranks, c = num_microbatches;
  MOE_CHECK(pp % 2 == 0) << "schedule dualpipe: PP (" << pp << ") must be even (rank r holds stages r and PP-1-r)";
  MOE_CHECK(c % 2 == 0) << "schedule dualpipe: micro-batches (" << c
                        << ") must be even (half enter from each end of the pipeline)";
  MOE_CHECK(c >= 2 * pp) << "schedule dualpipe: micro-batches (" << c << ") must be >= 2·PP (" << 2 * pp << ")";
  Schedule s;
  s.kind = "dualpipe";
  s.num_ranks = pp;
  s.num_stages = pp;
  s.num_microbatches = c;
  s.num_directions = 2;
  s.direction_of.resize(c);
  for (int mb = 0; mb < c; ++mb) s.direction_of[mb] = mb < c / 2 ? 0 : 1;
  s.stage_rank.assign(2, std::vector<int>(pp));
  s.stage_chunk.assign(2, std::vector<int>(pp));
  for (int stage = 0; stage < pp; ++stage) {
    s.stage_rank[0][stage] = stage;
    s.stage_rank[1][stage] = pp - 1 - stage;
    s.stage_chunk[0][stage] = 0;
    s.stage_chunk[1][stage] = 1;
  }
  s.ops.resize(pp);
  for (int r = 0; r < pp; ++r) {
    const bool second_half = r >= pp / 2;
    detail::DualPipeRank rank;
    rank.half = pp / 2;
    rank.half_rank = std::min(r, pp - 1 - r);
    rank.half_chunks = c / 2;
    rank.runs_first_pair_apart = r == pp / 2 - 1 || r == pp / 2;
    for (int phase = 0; phase < 2; ++phase) {
      const int direction = phase ^ static_cast<int>(second_half);
      rank.stage[phase] = direction == 0 ? r : pp - 1 - r;
    }
    rank.microbatch = [c, second_half](int phase, int index) {
      const int direction = phase ^ static_cast<int>(second_half);
      return direction * (c / 2) + index;
    };
    s.ops[r] = detail::dualpipe_steps(rank);
  }
  return s;
}

}  // namespace moelab::schedule
