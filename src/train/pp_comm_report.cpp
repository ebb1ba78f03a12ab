#include "train/pp_comm_report.hpp"

#include <mpi.h>

#include <cstdio>
#include <string>
#include <vector>

namespace moelab::train {

void report_comm(const std::array<parallel::CommFigures, 3>& figures, const schedule::ExecuteResult& last,
                 int64_t steps, std::ostream* progress, ResultsRun* run) {
  int rank = 0, world = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  double mine[6];
  for (int c = 0; c < 3; ++c) {
    mine[2 * c] = figures[c].comm_s;
    mine[2 * c + 1] = figures[c].exposed_s;
  }
  std::vector<double> all(6 * static_cast<size_t>(world));
  MPI_Gather(mine, 6, MPI_DOUBLE, all.data(), 6, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (rank != 0) return;
  const char* names[3] = {"expert", "pipeline", "total"};
  std::vector<double> comm_s[3], exposed_s[3], hidden[3];
  double sum_comm[3] = {}, sum_exposed[3] = {};
  for (int r = 0; r < world; ++r)
    for (int c = 0; c < 3; ++c) {
      const parallel::CommFigures f{all[6 * r + 2 * c], all[6 * r + 2 * c + 1], 0};
      comm_s[c].push_back(f.comm_s);
      exposed_s[c].push_back(f.exposed_s);
      hidden[c].push_back(f.hidden_fraction());
      sum_comm[c] += f.comm_s;
      sum_exposed[c] += f.exposed_s;
    }
  auto overall = [&](int c) { return sum_comm[c] > 0 ? 1.0 - sum_exposed[c] / sum_comm[c] : 0.0; };
  if (progress) {
    char line[200];
    std::snprintf(line, sizeof line,
                  "communication over %lld steps (F&B halves %s, progress thread %s): hidden behind computation "
                  "%.1f%% (expert all-to-alls %.1f%%, pipeline p2p %.1f%%)\n",
                  static_cast<long long>(steps), last.overlapped ? "overlapped" : "one after the other",
                  last.progress_thread ? "on" : "off", 100 * overall(2), 100 * overall(0), 100 * overall(1));
    *progress << line << "  rank  ep_comm_ms  ep_hidden%  pp_comm_ms  pp_hidden%  all_comm_ms  hidden%\n";
    for (int r = 0; r < world; ++r) {
      std::snprintf(line, sizeof line, "%6d %11.3f %11.1f %11.3f %11.1f %12.3f %8.1f\n", r, 1e3 * comm_s[0][r],
                    100 * hidden[0][r], 1e3 * comm_s[1][r], 100 * hidden[1][r], 1e3 * comm_s[2][r], 100 * hidden[2][r]);
      *progress << line;
    }
  }
  if (run) {
    h5::Group g = run->group().open_group("schedule");
    g.set_attr("comm_steps", steps);
    g.set_attr("comm_fb_overlapped", int64_t{last.overlapped});
    g.set_attr("comm_progress_thread", int64_t{last.progress_thread});
    for (int c = 0; c < 3; ++c) {
      const std::string k = std::string("comm_") + names[c];
      g.set_attr(k + "_s", comm_s[c]);
      g.set_attr(k + "_exposed_s", exposed_s[c]);
      g.set_attr(k + "_hidden_fraction", hidden[c]);
      g.set_attr(k + "_hidden_fraction_all_ranks", overall(c));
    }
  }
}

}  // namespace moelab::train
