#include "train/ep_hooks.hpp"

#include <mpi.h>

#include "core/error.hpp"
#include "parallel/ep_experts.hpp"
#include "parallel/routing.hpp"
#include "parallel/traffic.hpp"

namespace moelab::train {

void declare_ep_train_options(po::options_description_easy_init add) {
  add("parallel.ep", po::value<int>()->default_value(0),
      "expert-parallel degree; 0 = the MPI world size; the world is DP x EP (Megatron-Core expert_model_parallel_size)")  //
      ("parallel.gpus_per_node", po::value<int>()->default_value(8), "ranks per virtual node (traffic by link class)")  //
      ("parallel.max_nodes", po::value<int>()->default_value(0),
       "node limit M: when set, the model's n_group/topk_group must equal the EP group's nodes and M "
       "(balance.num_groups / balance.group_topk override them); 0 = no check")  //
      ("parallel.dispatch", po::value<std::string>()->default_value("direct"), "EP dispatch: direct or two_hop")  //
      ("parallel.dispatch_format", po::value<std::string>()->default_value("fp32"),
       "dispatch wire format: fp32 (exact), bf16 or fp8 (V3)")  //
      ("parallel.combine_format", po::value<std::string>()->default_value("fp32"),
       "combine and gradient wire format: fp32 (exact) or bf16 (V3)");
}

TrainHooks ep_train_hooks(const TrainConfig& config, const EpTrainOptions& options,
                          std::shared_ptr<parallel::TrafficStats> traffic) {
  const ModelConfig mcfg = train_model_config(config);
  const parallel::Topology topo =
      parallel::Topology::create(MPI_COMM_WORLD, options.ep, options.gpus_per_node, mcfg.n_routed_experts);
  if (options.max_nodes > 0)
    parallel::check_node_limit_matches_model(mcfg.n_group, mcfg.topk_group, topo.num_nodes(), options.max_nodes);
  const int W = topo.world_size;
  MOE_CHECK(config.batch_size % W == 0) << "data.batch_size (" << config.batch_size
                                        << ") must be a multiple of the MPI world size (" << W
                                        << "): each rank trains on batch_size / world sequences";
  TrainHooks h;
  // The EP traffic of one training step (forward and backward of every MoE
  // layer): reset when the step takes its batch, written to comm/ and added
  // to `traffic` after the step, so evaluation traffic is in neither.
  auto step_traffic = std::make_shared<parallel::TrafficStats>();
  const ExpertsFactory<float> factory = options.make_experts
                                            ? options.make_experts(topo, step_traffic)
                                            : parallel::ep_experts_factory(topo, options.dispatch, step_traffic);
  h.setup_context = [factory](ModelContext<float>& ctx) { ctx.make_experts = factory; };
  const int64_t top_k = mcfg.num_experts_per_tok;
  h.after_step = [topo, step_traffic, traffic, top_k](int64_t, ResultsRun* run) {
    parallel::append_comm_step(topo, *step_traffic, top_k, 0.0, run);
    if (traffic) parallel::add_traffic(*traffic, *step_traffic);
  };
  h.local_batch = [W, rank = topo.world_rank, step_traffic](const Batch& global) {
    *step_traffic = parallel::TrafficStats{};
    Batch b;
    b.batch_size = global.batch_size / W;
    b.seq_len = global.seq_len;
    const int64_t first = rank * b.batch_size * b.seq_len, n = b.batch_size * b.seq_len;
    b.inputs.assign(global.inputs.begin() + first, global.inputs.begin() + first + n);
    b.targets.assign(global.targets.begin() + first, global.targets.begin() + first + n);
    if (!global.domain.empty()) b.domain.assign(global.domain.begin() + first, global.domain.begin() + first + n);
    return b;
  };
  h.reduce_grads = [W](ModelParams<float>& params) {
    std::vector<float> flat;
    for (const Param<float>& p : params.all())
      if (p.trainable) flat.insert(flat.end(), p.grad.data.begin(), p.grad.data.end());
    MOE_CHECK(flat.size() < size_t(INT32_MAX)) << "gradients too large for one MPI_Allreduce";
    MOE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, flat.data(), static_cast<int>(flat.size()), MPI_FLOAT, MPI_SUM,
                                MPI_COMM_WORLD));
    const float inv = 1.0f / static_cast<float>(W);
    size_t at = 0;
    for (Param<float>& p : params.all())
      if (p.trainable)
        for (float& g : p.grad.data) g = flat[at++] * inv;
  };
  h.reduce_mean = [W](double v) {
    double s = 0;
    MOE_MPI_CHECK(MPI_Allreduce(&v, &s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    return s / W;
  };
  h.reduce_load = [](std::vector<double>& load) {
    MOE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, load.data(), static_cast<int>(load.size()), MPI_DOUBLE, MPI_SUM,
                                MPI_COMM_WORLD));
  };
  h.reduce_eval_load = local_load_reducer;
  h.write_checkpoints = topo.world_rank == 0;
  return h;
}

}  // namespace moelab::train
