#include "parallel/schedule/schedule.hpp"

#include <set>
#include <sstream>

namespace moelab::schedule {

const char* op_name(OpKind kind) {
  switch (kind) {
    case OpKind::F: return "F";
    case OpKind::B: return "B";
    case OpKind::BInput: return "B_input";
    case OpKind::W: return "W";
    case OpKind::FB: return "F&B";
  }
  return "?";
}

int Schedule::chunks_on(int rank) const {
  std::set<int> chunks;
  for (int d = 0; d < num_directions; ++d)
    for (int s = 0; s < num_stages; ++s)
      if (stage_rank[d][s] == rank) chunks.insert(stage_chunk[d][s]);
  return static_cast<int>(chunks.size());
}

int Schedule::index_in_direction(int mb) const {
  int index = 0;
  for (int m = 0; m < mb; ++m) index += direction_of[m] == direction_of[mb];
  return index;
}

int64_t Schedule::total_ops() const {
  int64_t n = 0;
  for (const auto& rank_ops : ops) n += static_cast<int64_t>(rank_ops.size());
  return n;
}

std::string op_text(const Op& op) {
  std::ostringstream out;
  out << op_name(op.kind) << " " << op.microbatch << "." << op.stage;
  if (op.kind == OpKind::FB) out << "|" << op.b_microbatch << "." << op.b_stage;
  return out.str();
}

std::string schedule_text(const Schedule& s) {
  std::ostringstream out;
  for (int r = 0; r < static_cast<int>(s.ops.size()); ++r) {
    out << "rank " << r << ":";
    for (const Op& op : s.ops[r]) out << " " << op_text(op);
    out << "\n";
  }
  return out.str();
}

}  // namespace moelab::schedule
