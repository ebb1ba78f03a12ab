// make_schedule by name, and the single-direction layout helper.
#include "parallel/schedule/generators.hpp"

#include <numeric>

#include "core/error.hpp"

namespace moelab::schedule {

const std::vector<std::string>& schedule_kinds() {
  static const std::vector<std::string> kinds = {"gpipe", "1f1b", "interleaved_1f1b", "zb1p", "dualpipe", "dualpipev"};
  return kinds;
}

Schedule make_schedule(const std::string& kind, int num_ranks, int num_microbatches, int chunks_per_rank) {
  MOE_CHECK(num_ranks >= 1) << "schedule " << kind << ": pipeline ranks must be >= 1, got " << num_ranks;
  MOE_CHECK(num_microbatches >= 1) << "schedule " << kind << ": micro-batches must be >= 1, got "
                                   << num_microbatches;
  if (kind == "gpipe") return make_gpipe(num_ranks, num_microbatches);
  if (kind == "1f1b") return make_1f1b(num_ranks, num_microbatches);
  if (kind == "interleaved_1f1b") return make_interleaved_1f1b(num_ranks, num_microbatches, chunks_per_rank);
  if (kind == "zb1p") return make_zb1p(num_ranks, num_microbatches);
  if (kind == "dualpipe") return make_dualpipe(num_ranks, num_microbatches);
  if (kind == "dualpipev") return make_dualpipev(num_ranks, num_microbatches);
  std::string known;
  for (const auto& k : schedule_kinds()) known += (known.empty() ? "" : ", ") + k;
  MOE_CHECK(false) << "unknown schedule kind '" << kind << "' (expected one of " << known << ")";
  return {};
}

Schedule empty_schedule(const std::string& kind, int num_ranks, int num_microbatches, std::vector<int> stage_rank,
                        std::vector<int> stage_chunk) {
  Schedule s;
  s.kind = kind;
  s.num_ranks = num_ranks;
  s.num_stages = static_cast<int>(stage_rank.size());
  s.num_microbatches = num_microbatches;
  s.num_directions = 1;
  s.direction_of.assign(num_microbatches, 0);
  s.stage_rank = {std::move(stage_rank)};
  s.stage_chunk = {std::move(stage_chunk)};
  s.ops.resize(num_ranks);
  return s;
}

Schedule linear_schedule(const std::string& kind, int num_ranks, int num_microbatches) {
  std::vector<int> stage_rank(num_ranks), stage_chunk(num_ranks, 0);
  std::iota(stage_rank.begin(), stage_rank.end(), 0);
  return empty_schedule(kind, num_ranks, num_microbatches, std::move(stage_rank), std::move(stage_chunk));
}

}  // namespace moelab::schedule
