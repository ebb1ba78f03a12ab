// Pipeline schedules as data (DeepSeek-V3 §3.2.1, Table 2;
// shared/reference/deepseek-v3.md section 6).
//
// A model is cut into S stages; a micro-batch runs F through stages 0..S-1
// and its backward through S-1..0. A schedule places every stage on a rank
// (per direction: DualPipe feeds direction 0 into rank 0 and direction 1 into
// rank PP-1, so stage s of direction 1 lives on rank PP-1-s) and gives each
// rank an ordered list of operations:
//
//   F       forward of (micro-batch, stage)
//   B       full backward (input and weight gradients) of (micro-batch, stage)
//   B_input backward for the input only; its weight gradient is deferred to
//   W       the weight-gradient part of a B_input done earlier (zero bubble)
//   F&B     a forward of one micro-batch overlapped with the full backward of
//           another (DualPipe's overlapped chunk pair), one op on the rank
//
// Communication is implied: an F (B) whose predecessor stage is on another
// rank receives its input (output gradient) from there. The local chunk of a
// stage is its module index on the rank (DualPipe: chunk = direction;
// DualPipeV: 0 for the way down, 1 for the way up; interleaved 1F1B: the
// virtual stage index).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moelab::schedule {

enum class OpKind : uint8_t { F = 0, B = 1, BInput = 2, W = 3, FB = 4 };
inline constexpr int kNumOpKinds = 5;

// "F", "B", "B_input", "W", "F&B".
const char* op_name(OpKind kind);

struct Op {
  OpKind kind = OpKind::F;
  int32_t microbatch = -1;  // F, B, B_input, W: the op's; F&B: the forward's
  int32_t stage = -1;
  int32_t b_microbatch = -1;  // F&B only: the overlapped backward's
  int32_t b_stage = -1;

  static Op f(int mb, int stage) { return {OpKind::F, mb, stage, -1, -1}; }
  static Op b(int mb, int stage) { return {OpKind::B, mb, stage, -1, -1}; }
  static Op b_input(int mb, int stage) { return {OpKind::BInput, mb, stage, -1, -1}; }
  static Op w(int mb, int stage) { return {OpKind::W, mb, stage, -1, -1}; }
  static Op fb(int f_mb, int f_stage, int b_mb, int b_stage) { return {OpKind::FB, f_mb, f_stage, b_mb, b_stage}; }
  bool has_forward() const { return kind == OpKind::F || kind == OpKind::FB; }
  // The (micro-batch, stage) whose backward this op runs: B, B_input, or the
  // backward half of F&B; -1 for F and W.
  int backward_microbatch() const {
    return kind == OpKind::FB ? b_microbatch : (kind == OpKind::B || kind == OpKind::BInput) ? microbatch : -1;
  }
  int backward_stage() const {
    return kind == OpKind::FB ? b_stage : (kind == OpKind::B || kind == OpKind::BInput) ? stage : -1;
  }
  bool operator==(const Op&) const = default;
};

struct Schedule {
  std::string kind;  // "1f1b", "zb1p", "dualpipe", ...
  int num_ranks = 0;
  int num_stages = 0;        // stages of the model (S)
  int num_microbatches = 0;  // all directions together (C)
  int num_directions = 1;
  std::vector<int> direction_of;             // [C] direction of each micro-batch
  std::vector<std::vector<int>> stage_rank;  // [directions][S] rank holding the stage
  std::vector<std::vector<int>> stage_chunk; // [directions][S] its module index on that rank
  std::vector<std::vector<Op>> ops;          // [ranks] program order

  int direction(int mb) const { return direction_of[mb]; }
  int rank_of(int mb, int stage) const { return stage_rank[direction_of[mb]][stage]; }
  int chunk_of(int mb, int stage) const { return stage_chunk[direction_of[mb]][stage]; }
  // Distinct modules a rank holds (its parameter copies, in units of one stage).
  int chunks_on(int rank) const;
  // Index of a micro-batch among those of its direction (what the figures print).
  int index_in_direction(int mb) const;
  int64_t total_ops() const;
};

// "F 3.1" / "B_input 3.1" / "F&B 3.1|0.6": kind, micro-batch.stage.
std::string op_text(const Op& op);
// One line per rank: "rank 0: F 0.0 F 1.0 B 0.0 ..." (tests and debugging).
std::string schedule_text(const Schedule& s);

}  // namespace moelab::schedule
