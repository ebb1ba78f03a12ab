#include "train/pp_sim_vs_measured.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

#include "parallel/schedule/events_h5.hpp"
#include "parallel/schedule/measured_durations.hpp"

namespace moelab::train {

namespace {

double error_pct(double predicted_s, double measured_s) {
  return measured_s > 0 ? 100.0 * (predicted_s - measured_s) / measured_s : 0.0;
}

std::string ms_or_dash(double seconds) {  // an unset table entry (< 0) prints as "-"
  char text[32] = "-";
  if (seconds >= 0) std::snprintf(text, sizeof text, "%.3f", 1e3 * seconds);
  return text;
}

}  // namespace

void report_sim_vs_measured(const schedule::Schedule& s, const schedule::SimResult& measured,
                            const std::vector<double>& rank_wait_compute_comm, int64_t step, std::ostream* progress,
                            ResultsRun* run) {
  const schedule::Durations zero{0, 0, 0, 0, 0};
  const schedule::Durations one_mean = schedule::mean_durations(measured, zero);
  const schedule::StageDurations table = schedule::stage_durations(s, measured, zero);
  const schedule::Overheads overheads = schedule::measured_overheads(measured);
  schedule::StageDurations stage_only = table;  // what the per-stage means alone predict
  stage_only.global.p2p_s = stage_only.global.gap_s = 0;
  const schedule::SimResult predicted = schedule::simulate(s, table);
  const schedule::SimResult predicted_stage_only = schedule::simulate(s, stage_only);
  const schedule::SimResult predicted_one_mean = schedule::simulate(s, one_mean);

  std::vector<double> m_end, p_end, err, err_stage_only, p1_end, err1, wait_frac, ep_comm_s;
  for (int r = 0; r < s.num_ranks; ++r) {
    m_end.push_back(measured.ranks[r].end_s);
    p_end.push_back(predicted.ranks[r].end_s);
    err.push_back(error_pct(p_end.back(), m_end.back()));
    err_stage_only.push_back(error_pct(predicted_stage_only.ranks[r].end_s, m_end.back()));
    p1_end.push_back(predicted_one_mean.ranks[r].end_s);
    err1.push_back(error_pct(p1_end.back(), m_end.back()));
    const double wait_s = rank_wait_compute_comm[3 * r], compute_s = rank_wait_compute_comm[3 * r + 1];
    wait_frac.push_back(wait_s + compute_s > 0 ? wait_s / (wait_s + compute_s) : 0.0);
    ep_comm_s.push_back(rank_wait_compute_comm[3 * r + 2]);
  }
  // [ranks, S, 5] (F, B, B_input, W, F&B with that forward stage), -1 where no op of the kind ran there.
  std::vector<double> rank_stage_s;
  for (const auto& per_kind : table.op_s) rank_stage_s.insert(rank_stage_s.end(), per_kind.begin(), per_kind.end());

  if (progress) {
    char line[320];
    std::snprintf(line, sizeof line,
                  "pipeline %s, %d ranks, %d stages, %d micro-batches (step %lld): mean op times F %.3f ms  B %.3f ms  "
                  "B_input %.3f ms  W %.3f ms  F&B %.3f ms\n",
                  s.kind.c_str(), s.num_ranks, s.num_stages, s.num_microbatches, static_cast<long long>(step + 1),
                  1e3 * one_mean.f_s, 1e3 * one_mean.b_s, 1e3 * one_mean.b_input_s(), 1e3 * one_mean.w_s,
                  1e3 * one_mean.fb_s);
    *progress << line << "  rank  stage    F_ms    B_ms  B_input_ms    W_ms  F&B_ms (mean of the ops of that stage on "
                         "that rank; F&B by forward stage)\n";
    for (int r = 0; r < s.num_ranks; ++r)
      for (int st = 0; st < s.num_stages; ++st) {
        const auto& k = table.op_s[static_cast<size_t>(r) * s.num_stages + st];
        if (*std::max_element(k.begin(), k.end()) < 0) continue;  // the stage is not on this rank
        std::snprintf(line, sizeof line, "%6d %6d %7s %7s %11s %7s %7s\n", r, st, ms_or_dash(k[0]).c_str(),
                      ms_or_dash(k[1]).c_str(), ms_or_dash(k[2]).c_str(), ms_or_dash(k[3]).c_str(),
                      ms_or_dash(k[4]).c_str());
        *progress << line;
      }
    std::snprintf(line, sizeof line,
                  "predicted: the (rank, stage) means, p2p latency %.3f ms (mean of %lld receive waits) and a gap of %.3f ms "
                  "between a rank's ops (mean of %lld); stage_only: those means alone; one_mean: one mean per op "
                  "kind\n",
                  1e3 * table.global.p2p_s, static_cast<long long>(overheads.num_p2p_samples),
                  1e3 * table.global.gap_s, static_cast<long long>(overheads.num_gap_samples));
    *progress << line
              << "  rank  measured_end_ms  predicted_end_ms  error%  recv_wait%  ep_comm_ms  "
                 "stage_only_error%  one_mean_error%\n";
    for (int r = 0; r < s.num_ranks; ++r) {
      std::snprintf(line, sizeof line, "%6d %16.3f %17.3f %7.1f %10.1f %11.3f %19.1f %16.1f\n", r, 1e3 * m_end[r],
                    1e3 * p_end[r], err[r], 100.0 * wait_frac[r], 1e3 * ep_comm_s[r], err_stage_only[r], err1[r]);
      *progress << line;
    }
  }
  if (run) {
    schedule::write_schedule_group(run->group(), s, measured, "measured");
    h5::Group pg = run->group().group("schedule_predicted");
    schedule::write_schedule_group(pg, s, predicted, "simulated");
    h5::Group g = run->group().open_group("schedule");
    g.set_attr("step", step + 1);
    g.set_attr("duration_model", "rank_stage_means+p2p+gap");
    g.set_attr("measured_mean_durations_s",
               std::vector<double>{one_mean.f_s, one_mean.b_s, one_mean.w_s, one_mean.fb_s, one_mean.p2p_s});
    g.set_attr("measured_rank_stage_durations_s", rank_stage_s);
    g.set_attr("measured_p2p_s", table.global.p2p_s);
    g.set_attr("measured_gap_s", table.global.gap_s);
    g.set_attr("measured_end_s", m_end);
    g.set_attr("predicted_end_s", p_end);
    g.set_attr("predicted_vs_measured_error_pct", err);
    g.set_attr("stage_only_error_pct", err_stage_only);
    g.set_attr("one_mean_predicted_end_s", p1_end);
    g.set_attr("one_mean_error_pct", err1);
    g.set_attr("recv_wait_fraction", wait_frac);
    g.set_attr("ep_comm_s", ep_comm_s);
    g.set_attr("w_defers_linear_weight_grads", int64_t{1});
  }
}

}  // namespace moelab::train
