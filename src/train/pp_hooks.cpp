#include "train/pp_hooks.hpp"

#include <mpi.h>

#include <cstdio>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "parallel/ep_experts.hpp"
#include "parallel/pipeline_stages.hpp"
#include "parallel/topology.hpp"
#include "parallel/schedule/events_h5.hpp"
#include "parallel/schedule/executor.hpp"
#include "parallel/schedule/generators.hpp"
#include "parallel/schedule/measured_durations.hpp"
#include "parallel/schedule/simulate.hpp"

namespace moelab::train {

void declare_pp_train_options(po::options_description_easy_init add) {
  add("parallel.pp", po::value<int>()->default_value(1),
      "pipeline-parallel ranks; > 1 runs parallel.schedule over mpirun -np PP with real layers")  //
      ("parallel.schedule", po::value<std::string>()->default_value("1f1b"),
       "pipeline schedule: 1f1b, zb1p, dualpipe, dualpipev or gpipe")  //
      ("parallel.microbatches", po::value<int>()->default_value(0),
       "micro-batches per step (must divide data.batch_size); 0 = one per sequence");
}

TrainHooks pp_train_hooks(const TrainConfig& config, const PpTrainOptions& o, const EpTrainOptions& ep_options,
                          std::ostream* progress) {
  int world = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const int EP = ep_options.ep;
  MOE_CHECK(EP >= 1 && o.pp * EP == world) << "parallel.pp = " << o.pp << " x parallel.ep = " << EP << " needs mpirun -np "
                                           << o.pp * EP << " (the world has " << world << " ranks)";
  MOE_CHECK(config.mtp_depth == 0) << "parallel.pp > 1: MTP is not pipelined yet (set model.mtp_depth = 0)";
  MOE_CHECK(!config.balance.has_aux_loss())
      << "parallel.pp > 1: auxiliary balance losses are not pipelined yet (use balance.method = aux_free or none)";
  MOE_CHECK(config.batch_size % EP == 0) << "data.batch_size (" << config.batch_size << ") must be a multiple of parallel.ep ("
                                         << EP << "): each pipeline replica trains on batch_size / EP sequences";
  const int64_t replica_rows = config.batch_size / EP;
  const int C = o.microbatches > 0 ? o.microbatches : static_cast<int>(replica_rows);
  MOE_CHECK(replica_rows % C == 0) << "parallel.microbatches (" << C << ") must divide the sequences per pipeline replica ("
                                   << replica_rows << " = data.batch_size / parallel.ep)";
  auto sched = std::make_shared<schedule::Schedule>(schedule::make_schedule(o.schedule, o.pp, C));
  const ModelConfig mcfg = train_model_config(config);
  const int64_t last_step = config.steps - 1;
  // World rank w: pipeline rank w / EP in replica w % EP. pipe: the replica's
  // PP ranks (ordered by pipeline rank); the EP group: the EP ranks of one
  // pipeline rank. Never freed (they live as long as the process's training).
  const int replica = rank % EP;
  MPI_Comm pipe = MPI_COMM_WORLD, stage_group = MPI_COMM_SELF;
  if (EP > 1) {
    MPI_Comm_split(MPI_COMM_WORLD, replica, rank / EP, &pipe);
    MPI_Comm_split(MPI_COMM_WORLD, rank / EP, replica, &stage_group);
  }

  TrainHooks h;
  // EP dispatch/combine time of this rank in the current step (all of it
  // exposed: the all-to-alls block inside F and B, and an F&B op runs its
  // forward then its backward, so nothing is hidden behind computation).
  auto ep_traffic = std::make_shared<parallel::TrafficStats>();
  if (EP > 1) {
    const parallel::Topology topo =
        parallel::Topology::create(stage_group, EP, ep_options.gpus_per_node, mcfg.n_routed_experts);
    h.setup_context = [topo, ep_options, ep_traffic](ModelContext<float>& ctx) {
      ctx.make_experts = parallel::ep_experts_factory(topo, ep_options.dispatch, ep_traffic);
    };
  }
  h.write_checkpoints = rank == 0;
  h.forward_backward = [sched, mcfg, last_step, rank, progress, EP, replica, pipe, ep_traffic](
                            ModelParams<float>& params, const Batch& batch, int64_t step, ResultsRun* run,
                            const ModelContext<float>& ctx) {
    const schedule::Schedule& s = *sched;
    const int C = s.num_microbatches;
    const int64_t rows = batch.batch_size / EP / C, S = batch.seq_len, first = replica * (batch.batch_size / EP) * S;
    std::vector<pipeline::MicroBatch> mbs(C);
    for (int m = 0; m < C; ++m) {
      mbs[m].batch = rows;
      mbs[m].seq_len = S;
      const auto at = first + m * rows * S;
      mbs[m].token_ids.assign(batch.inputs.begin() + at, batch.inputs.begin() + at + rows * S);
      mbs[m].targets.assign(batch.targets.begin() + at, batch.targets.begin() + at + rows * S);
    }
    pipeline::ModelStages stages(params, mcfg, s.num_stages, mbs, ctx);
    *ep_traffic = parallel::TrafficStats{};
    MPI_Barrier(MPI_COMM_WORLD);
    const schedule::ExecuteResult mine = schedule::execute(s, stages, pipe);
    pipeline::sum_pipeline_grads(params, MPI_COMM_WORLD);
    if (EP > 1)
      for (auto& p : params.all())
        for (float& g : p.grad.data) g /= static_cast<float>(EP);

    TrainHooks::StepOutput out;
    double loss = stages.loss_sum();
    MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    out.losses.loss = out.losses.total = loss / (C * EP);
    const int64_t E = mcfg.n_routed_experts;
    for (int64_t l = 0; l < mcfg.num_hidden_layers; ++l) {
      if (!params.layers[l].is_moe) continue;
      std::vector<double> load(E, 0.0);
      auto it = stages.expert_loads().find(l);
      if (it != stages.expert_loads().end()) load = it->second;
      MPI_Allreduce(MPI_IN_PLACE, load.data(), static_cast<int>(E), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      out.moe_layers.push_back(l);
      out.loads.push_back(std::move(load));
    }

    if (step == last_step && replica == 0) {  // replica 0's timeline (its pipe holds world rank 0)
      // The measured timeline of this step and its re-simulation with the
      // durations measured in it: per (stage, op kind) means, F&B per
      // (forward, backward) stage pair, and the p2p latency seen in the
      // receive waits (measured_durations.hpp). One mean per op kind for all
      // stages (the earlier model) is kept for comparison: it misses the
      // heavy embedding and head stages.
      double wait[3] = {mine.wait_s, mine.compute_s, ep_traffic->dispatch_time_s + ep_traffic->combine_time_s};
      std::vector<double> all(3 * s.num_ranks);
      MPI_Gather(wait, 3, MPI_DOUBLE, all.data(), 3, MPI_DOUBLE, 0, pipe);
      const schedule::SimResult measured = schedule::gather_measured(s, mine, pipe);
      if (rank == 0) {
        const schedule::Durations zero{0, 0, 0, 0, 0};
        const schedule::Durations d = schedule::mean_durations(measured, zero);
        const schedule::StageDurations table = schedule::stage_durations(measured, s.num_stages, zero);
        const schedule::P2pLatency p2p = schedule::p2p_latency(measured);
        const schedule::SimResult predicted = schedule::simulate(s, table);
        const schedule::SimResult predicted_one_mean = schedule::simulate(s, d);
        auto error_pct = [](double predicted_s, double measured_s) {
          return measured_s > 0 ? 100.0 * (predicted_s - measured_s) / measured_s : 0.0;
        };
        std::vector<double> m_end, p_end, err, p1_end, err1, wait_frac, ep_comm_s;
        for (int r = 0; r < s.num_ranks; ++r) {
          m_end.push_back(measured.ranks[r].end_s);
          p_end.push_back(predicted.ranks[r].end_s);
          err.push_back(error_pct(p_end.back(), m_end.back()));
          p1_end.push_back(predicted_one_mean.ranks[r].end_s);
          err1.push_back(error_pct(p1_end.back(), m_end.back()));
          wait_frac.push_back(all[3 * r] + all[3 * r + 1] > 0 ? all[3 * r] / (all[3 * r] + all[3 * r + 1]) : 0.0);
          ep_comm_s.push_back(all[3 * r + 2]);
        }
        // [S, kinds] (F, B, B_input, W, F&B with that forward stage); -1 where no op of the kind ran.
        std::vector<double> stage_s;
        for (const auto& per_kind : table.stage_s) stage_s.insert(stage_s.end(), per_kind.begin(), per_kind.end());
        if (progress) {
          char line[256];
          std::snprintf(line, sizeof line,
                        "pipeline %s, %d ranks, %d stages, %d micro-batches (step %lld): mean op times F %.3f ms  B "
                        "%.3f ms  B_input %.3f ms  W %.3f ms  F&B %.3f ms\n",
                        s.kind.c_str(), s.num_ranks, s.num_stages, C, static_cast<long long>(step + 1), 1e3 * d.f_s,
                        1e3 * d.b_s, 1e3 * d.b_input_s(), 1e3 * d.w_s, 1e3 * d.fb_s);
          *progress << line;
          *progress << "  stage    F_ms    B_ms  B_input_ms    W_ms  F&B_ms (ops of that stage; F&B by forward stage)\n";
          auto ms = [](double v) {
            char text[32] = "-";
            if (v >= 0) std::snprintf(text, sizeof text, "%.3f", 1e3 * v);
            return std::string(text);
          };
          for (int st = 0; st < s.num_stages; ++st) {
            const auto& k = table.stage_s[st];
            std::snprintf(line, sizeof line, "%7d %7s %7s %11s %7s %7s\n", st, ms(k[0]).c_str(), ms(k[1]).c_str(),
                          ms(k[2]).c_str(), ms(k[3]).c_str(), ms(k[4]).c_str());
            *progress << line;
          }
          std::snprintf(line, sizeof line,
                        "predicted: per-(stage, op kind) means, p2p latency %.3f ms (median of %lld receive waits); "
                        "one_mean: one mean per op kind, p2p 0\n",
                        1e3 * table.global.p2p_s, static_cast<long long>(p2p.num_samples));
          *progress << line
                    << "  rank  measured_end_ms  predicted_end_ms  error%  recv_wait%  ep_comm_ms (exposed)  "
                       "one_mean_end_ms  one_mean_error%\n";
          for (int r = 0; r < s.num_ranks; ++r) {
            std::snprintf(line, sizeof line, "%6d %16.3f %17.3f %7.1f %10.1f %11.3f %27.3f %16.1f\n", r,
                          1e3 * m_end[r], 1e3 * p_end[r], err[r], 100.0 * wait_frac[r], 1e3 * ep_comm_s[r],
                          1e3 * p1_end[r], err1[r]);
            *progress << line;
          }
        }
        if (run) {
          schedule::write_schedule_group(run->group(), s, measured, "measured");
          h5::Group pg = run->group().group("schedule_predicted");
          schedule::write_schedule_group(pg, s, predicted, "simulated");
          h5::Group g = run->group().open_group("schedule");
          g.set_attr("step", step + 1);
          g.set_attr("measured_mean_durations_s", std::vector<double>{d.f_s, d.b_s, d.w_s, d.fb_s, d.p2p_s});
          g.set_attr("measured_stage_durations_s", stage_s);
          g.set_attr("measured_p2p_latency_s", table.global.p2p_s);
          g.set_attr("measured_p2p_samples", p2p.num_samples);
          g.set_attr("duration_model", "stage_means+p2p");
          g.set_attr("measured_end_s", m_end);
          g.set_attr("predicted_end_s", p_end);
          g.set_attr("predicted_vs_measured_error_pct", err);
          g.set_attr("one_mean_predicted_end_s", p1_end);
          g.set_attr("one_mean_error_pct", err1);
          g.set_attr("recv_wait_fraction", wait_frac);
          g.set_attr("ep_comm_s", ep_comm_s);
          g.set_attr("ep_comm_hidden_fraction", 0.0);  // blocking all-to-alls, F&B sequential: nothing hidden
          g.set_attr("w_defers_linear_weight_grads", int64_t{1});
        }
      }
    }
    return out;
  };
  return h;
}

}  // namespace moelab::train
