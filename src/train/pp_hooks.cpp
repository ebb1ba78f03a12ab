#include "train/pp_hooks.hpp"

#include <mpi.h>

#include <cstdio>
#include <memory>

#include "core/error.hpp"
#include "parallel/ep_experts.hpp"
#include "parallel/pipeline_stages.hpp"
#include "parallel/topology.hpp"
#include "parallel/schedule/events_h5.hpp"
#include "parallel/schedule/executor.hpp"
#include "parallel/schedule/generators.hpp"
#include "parallel/schedule/simulate.hpp"
#include "train/pp_sim_vs_measured.hpp"

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
      // The measured timeline of this step against its re-simulation with the
      // durations measured in it (pp_sim_vs_measured.hpp).
      double wait[3] = {mine.wait_s, mine.compute_s, ep_traffic->dispatch_time_s + ep_traffic->combine_time_s};
      std::vector<double> all(3 * s.num_ranks);
      MPI_Gather(wait, 3, MPI_DOUBLE, all.data(), 3, MPI_DOUBLE, 0, pipe);
      const schedule::SimResult measured = schedule::gather_measured(s, mine, pipe);
      if (rank == 0) report_sim_vs_measured(s, measured, all, step, progress, run);
    }
    return out;
  };
  return h;
}

}  // namespace moelab::train
