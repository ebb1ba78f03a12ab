#include "train/pp_hooks.hpp"

#include <mpi.h>

#include <array>
#include <cstdio>
#include <memory>

#include "core/error.hpp"
#include "parallel/ep_experts.hpp"
#include "parallel/pipeline_stages.hpp"
#include "parallel/topology.hpp"
#include "parallel/schedule/executor.hpp"
#include "parallel/schedule/generators.hpp"
#include "train/pp_comm_report.hpp"
#include "train/pp_sim_vs_measured.hpp"

namespace moelab::train {

void declare_pp_train_options(po::options_description_easy_init add) {
  add("parallel.pp", po::value<int>()->default_value(1),
      "pipeline-parallel ranks; > 1 runs parallel.schedule over mpirun -np PP with real layers")  //
      ("parallel.schedule", po::value<std::string>()->default_value("1f1b"),
       "pipeline schedule: 1f1b, zb1p, dualpipe, dualpipev or gpipe")  //
      ("parallel.microbatches", po::value<int>()->default_value(0),
       "micro-batches per step (must divide data.batch_size); 0 = one per sequence")  //
      ("parallel.overlap", po::value<bool>()->default_value(true),
       "F&B steps (dualpipe, dualpipev): overlap one micro-batch's communication with another's computation "
       "(false: run the forward then the backward, for comparison)")  //
      ("parallel.comm_progress", po::value<bool>()->default_value(true),
       "pipeline runs: a thread progresses in-flight MPI requests while the rank computes (needs "
       "MPI_THREAD_MULTIPLE; false: requests move only when waited on, for comparison)");
}

TrainHooks pp_train_hooks(const TrainConfig& config, const PpTrainOptions& o, const EpTrainOptions& ep_options,
                          std::ostream* progress) {
  int world = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const int EP = ep_options.ep;
  MOE_CHECK(EP >= 1 && o.pp * EP == world) << "parallel.pp = " << o.pp << " x parallel.ep = " << EP << " needs mpirun -np "
                                           << o.pp * EP << " (the world has " << world << " ranks)";
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
  // EP dispatch/combine time of this rank in the current step (as the
  // dispatcher sees it: from posting an all-to-all to the end of its wait).
  auto ep_traffic = std::make_shared<parallel::TrafficStats>();
  if (EP > 1) {
    const parallel::Topology topo =
        parallel::Topology::create(stage_group, EP, ep_options.gpus_per_node, mcfg.n_routed_experts);
    // Built once (a custom factory, e.g. NCCL's, may set up communicators collectively).
    const ExpertsFactory<float> factory = ep_options.make_experts
                                              ? ep_options.make_experts(topo, ep_traffic)
                                              : parallel::ep_experts_factory(topo, ep_options.dispatch, ep_traffic);
    h.setup_context = [factory](ModelContext<float>& ctx) { ctx.make_experts = factory; };
  }
  h.write_checkpoints = rank == 0;
  // This rank's communication figures summed over the steps: expert, pipeline, both.
  auto comm_run = std::make_shared<std::array<parallel::CommFigures, 3>>();
  const schedule::ExecuteOptions exec_options{.overlap = o.overlap, .progress_thread = o.comm_progress};
  const MtpLambdaSchedule mtp_lambda = config.mtp_lambda;
  const BalanceConfig balance = config.balance;
  const auto transport = o.transport;
  h.forward_backward = [sched, mcfg, last_step, rank, progress, EP, replica, pipe, ep_traffic, comm_run, exec_options,
                        mtp_lambda, balance, transport](
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
    pipeline::ExtraLosses extra;
    extra.mtp_lambda = mtp_lambda.lambda(step);
    if (balance.has_aux_loss()) {
      const int64_t E = mcfg.n_routed_experts, K = mcfg.num_experts_per_tok;
      extra.balance = [balance, E, K](MoeSaved<float>& moe, int64_t num_seqs, int64_t seq_len) {
        return add_balance_loss(moe, balance, num_seqs, seq_len, E, K);
      };
    }
    pipeline::ModelStages stages(params, mcfg, s.num_stages, mbs, ctx, extra);
    *ep_traffic = parallel::TrafficStats{};
    MPI_Barrier(MPI_COMM_WORLD);
    schedule::ExecuteOptions step_options = exec_options;
    if (transport) step_options.transport = transport(s, stages, pipe);
    const schedule::ExecuteResult mine = schedule::execute(s, stages, pipe, step_options);
    (*comm_run)[0].add(mine.comm[0]);
    (*comm_run)[1].add(mine.comm[1]);
    (*comm_run)[2].add(mine.comm_total);
    pipeline::sum_pipeline_grads(params, MPI_COMM_WORLD);
    if (EP > 1)
      for (auto& p : params.all())
        for (float& g : p.grad.data) g /= static_cast<float>(EP);

    TrainHooks::StepOutput out;
    pipeline::LossSums sums = stages.loss_sums();  // main and MTP losses from the last stage, aux from every stage
    pipeline::sum_losses(sums, MPI_COMM_WORLD);
    sums *= 1.0 / (C * EP);
    out.losses.loss = sums.loss;
    out.losses.mtp_losses = sums.mtp;
    for (double l : sums.mtp) out.losses.mtp_loss += extra.mtp_lambda / static_cast<double>(sums.mtp.size()) * l;
    out.losses.total = sums.loss + out.losses.mtp_loss;
    out.aux_loss = sums.aux;
    const int64_t E = mcfg.n_routed_experts;
    std::vector<int64_t> moe_layers;  // main layers, then the MTP modules' (the loop's load/ rows)
    for (const auto& b : params.layers)
      if (b.is_moe) moe_layers.push_back(b.layer);
    for (const auto& m : params.mtp)
      if (m.block.is_moe) moe_layers.push_back(m.block.layer);
    for (int64_t l : moe_layers) {
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
    if (step == last_step) report_comm(*comm_run, mine, step + 1, progress, run);
    return out;
  };
  return h;
}

}  // namespace moelab::train
