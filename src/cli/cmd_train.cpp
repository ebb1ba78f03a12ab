// moelab train --config experiments/paper/X.ini: the training loop of
// src/train (DeepSeek-V3 §4.2, §4.5) on the byte-level corpus, one run group
// per sweep point in one results file, a summary table at the end.
//   moelab train                                  v3-small, aux-loss-free + MTP, defaults
//   moelab train --config experiments/paper/mtp.ini
//   moelab train --set train.steps=50 --set data.corpus=tests/fixtures/corpus_sample.h5
// Results: /runs/<run>/{train,eval,load}/... (results/README.md, "train").
#include <cmath>
#include <cstdio>
#include <optional>

#include "backend/device.hpp"
#ifdef MOELAB_HAVE_CUDA
#include "backend/cuda/experts.hpp"
#include "backend/cuda/host_gemm.hpp"
#endif
#ifdef MOELAB_HAVE_NCCL
#include "backend/cuda/ep_experts_nccl.hpp"
#include "backend/cuda/nccl.hpp"
#include "backend/cuda/nccl_pipeline.hpp"
#endif
#include "cli/commands.hpp"
#include "cli/options.hpp"
#include <mpi.h>

#include "core/error.hpp"
#include "model/linear.hpp"
#include "parallel/topology.hpp"
#include "train/ep_hooks.hpp"
#include "train/loop.hpp"
#include "train/pp_hooks.hpp"

namespace moelab {

int cmd_train(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts("train", "[--config FILE.ini] [--set section.key=value ...]",
                      "Train a DeepSeek-V3 model (default v3-small) on the byte-level corpus with\n"
                      "AdamW, the paper's LR schedule, multi-token prediction and the selected load\n"
                      "balancing; log every step to HDF5 (train/, load/) and evaluate on the held-out\n"
                      "split (eval/: main-model loss, per domain; MaxVio_global; expert load by domain).\n"
                      "The corpus is built by scripts/prepare_corpus.sh (data/corpus.h5).\n"
                      "INI sections: [model] [data] [train] [balance] [mtp] [output]; sweep lines run\n"
                      "several configurations into one file, e.g. `sweep = balance.method: aux_free, aux_loss`.\n"
                      "--device cuda (model.precision fp32 or bf16) runs on the GPU: the routed experts' forward\n"
                      "and backward (permute, gate/up/down GEMMs through cuBLAS, SwiGLU, weighted unpermute, their\n"
                      "backward and weight gradients; activations stay on the GPU between the two) and the GEMMs of\n"
                      "every dense linear (attention projections, dense and shared-expert MLPs, LM head, MTP\n"
                      "projection: forward, dgrad and wgrad, operands copied per call). On the CPU stay: embeddings,\n"
                      "RMSNorm, RoPE, attention scores/softmax, router, losses, balancing, gradient clipping, AdamW.\n"
                      "Under mpirun (one rank per GPU; parallel.ep > 1) the EP dispatch/combine and their backward go\n"
                      "over NCCL (parallel.dispatch direct or two_hop, parallel.dispatch_format fp32/bf16/fp8,\n"
                      "parallel.combine_format fp32/bf16; the MPI path's traffic accounting in comm/); with\n"
                      "parallel.pp > 1 (PP x EP too) the stages' experts run on the GPU as above and the pipeline's\n"
                      "point-to-point goes over NCCL (ncclSend/ncclRecv per rank pair); gradients are all-reduced\n"
                      "on the host over MPI.");
  opts.add()("device", po::value<std::string>()->default_value("cpu"),
             "cpu, or cuda: routed experts (fwd+bwd) and dense linear GEMMs on the GPU, the rest on the CPU; "
             "EP over NCCL under mpirun (see above). Needs a GPU per rank (exit 2 without); fp32 or bf16");
  train::declare_train_options(opts.add());
  train::declare_ep_train_options(opts.add());
  train::declare_pp_train_options(opts.add());
  if (!opts.parse(args, ctx)) return 0;
  const Device device = parse_device(opts.get<std::string>("device"));
  require_device(device);
#ifdef MOELAB_HAVE_NCCL
  // Under mpirun each rank takes the GPU of its index on its host (one rank per GPU).
  if (device == Device::cuda && ctx.world_size > 1) cuda::select_local_device(MPI_COMM_WORLD);
#else
  MOE_CHECK(device == Device::cpu || ctx.world_size == 1)
      << "--device cuda under mpirun needs NCCL (this moelab was built without it); run one process or --device cpu";
#endif
#ifdef MOELAB_HAVE_CUDA
  // Every dense linear's GEMMs go through cuBLAS for the whole command.
  std::optional<LinearGemmScope> gpu_gemms;
  if (device == Device::cuda) gpu_gemms.emplace(&cuda::host_gemm);
#endif

  const std::vector<ConfigPairs> points = opts.sweep_points();
  std::shared_ptr<ResultsFile> results;
  struct Row {
    std::string name;
    train::TrainSummary s;
  };
  std::vector<Row> rows;
  for (const ConfigPairs& point : points) {
    if (!point.empty()) opts.apply_point(point, ctx);
    const train::TrainConfig cfg = train::train_config_from(opts);
    MOE_CHECK(device == Device::cpu || cfg.precision != "fp8")
        << "--device cuda: model.precision fp8 is not on the GPU in training (fp32 or bf16; FP8 GEMMs on the GPU: "
           "moelab fp8 gemm --device cuda)";
    std::string name = cfg.run_name;
    if (name.empty()) name = point.empty() ? "train" : point_label(point);
    if (!results && ctx.is_root())
      results = ResultsFile::create(cfg.out, cfg.force, ctx.command_line, ctx.world_size);
    std::optional<ResultsRun> run;
    if (ctx.is_root()) run.emplace(results->new_run(name, opts.resolved()));
    ctx.print() << "== run " << name << "\n";
    // Under mpirun: the expert-parallel loop (EP x DP over the world).
    train::TrainHooks hooks;
    auto traffic = std::make_shared<parallel::TrafficStats>();
    // parallel.pp > 1: the pipeline loop (train/pp_hooks.hpp) instead of EP x DP.
    train::PpTrainOptions pp = train::pp_train_options_from(opts);
    const bool pipelined = pp.pp > 1;
    if (ctx.world_size > 1) {
      std::string text;
      for (const auto& [k, v] : opts.resolved()) text += k + "=" + v + "\n";
      parallel::check_same_config(MPI_COMM_WORLD, text);
    }
    if (ctx.world_size > 1 || pipelined) {
      // The EP group spans the world, or with a pipeline the ranks of one pipeline rank.
      train::EpTrainOptions ep_options = train::ep_train_options_from(opts, ctx.world_size / (pipelined ? pp.pp : 1));
#ifdef MOELAB_HAVE_NCCL
      if (device == Device::cuda) {
        // EP dispatch/combine over NCCL in the run's mode and wire formats (NcclDispatcher).
        ep_options.make_experts = [dispatch = ep_options.dispatch](const parallel::Topology& topo,
                                                                   std::shared_ptr<parallel::TrafficStats> sink) {
          return cuda::nccl_ep_experts_factory(topo, cuda::nccl_ep_setup(topo), std::move(sink), dispatch);
        };
        // Pipeline point-to-point over NCCL: one transport for the whole run (its
        // communicators made at the first step), readied for each step's stages.
        auto nccl_p2p = std::make_shared<std::unique_ptr<cuda::NcclPipelineTransport>>();
        pp.transport = [nccl_p2p](const schedule::Schedule& s, const schedule::Stages& stages,
                                  MPI_Comm pipe) -> schedule::PipelineTransport* {
          if (!*nccl_p2p)
            *nccl_p2p = std::make_unique<cuda::NcclPipelineTransport>(s, stages, pipe);
          else
            (*nccl_p2p)->begin_step(stages);
          return nccl_p2p->get();
        };
      }
#endif
      hooks = pipelined ? train::pp_train_hooks(cfg, pp, ep_options, &ctx.print())
                        : train::ep_train_hooks(cfg, ep_options, traffic);
    }
#ifdef MOELAB_HAVE_CUDA
    if (device == Device::cuda) {
      // The routed experts on this rank's GPU, unless the EP hooks installed the NCCL ones
      // (one process, or a pipeline without EP).
      if (!hooks.setup_context)
        hooks.setup_context = [](ModelContext<float>& c) { c.make_experts = cuda::cuda_experts_factory(); };
      ctx.print() << "device: " << device_name(device) << " (routed experts and dense GEMMs on the GPU)\n";
    }
#endif
    hooks.progress = &ctx.print();
    train::TrainSummary s = train::run_training(cfg, run ? &*run : nullptr, hooks);
    if (ctx.world_size > 1 && !pipelined) {
      // EP traffic of the whole run (forward and backward of every MoE layer), summed over ranks.
      double v[4] = {double(traffic->dispatch.bytes_sent_inter), double(traffic->dispatch.bytes_sent_intra),
                     double(traffic->tokens), double(traffic->nodes_per_token_max)};
      double sum[3] = {0, 0, 0}, mx = 0;
      MPI_Allreduce(v, sum, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      MPI_Allreduce(&v[3], &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      double comm_s = traffic->dispatch_time_s + traffic->combine_time_s, comm_max = 0;
      MPI_Allreduce(&comm_s, &comm_max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      char line[320];
      std::snprintf(line, sizeof line,
                    "EP traffic: dispatch bytes (forward + backward) per token per MoE layer %.1f inter-node, %.1f intra-node; max nodes "
                    "per token %.0f; dispatch+combine %.1f ms per step (slowest rank)\n",
                    sum[0] / std::max(1.0, sum[2]), sum[1] / std::max(1.0, sum[2]), mx,
                    s.steps_done > 0 ? comm_max / double(s.steps_done) * 1e3 : 0.0);
      ctx.print() << line;
      if (run) {
        run->group().set_attr("ep_dispatch_inter_node_bytes_per_token", sum[0] / std::max(1.0, sum[2]));
        run->group().set_attr("ep_nodes_per_token_max", mx);
      }
    }
    if (run) {
      if (s.stopped_early)
        run->fail("stopped after " + std::to_string(s.steps_done) + " steps (train.stop_after); resume with "
                  "train.resume=" + (cfg.checkpoint_dir.empty() ? std::string("<no checkpoint_dir>") : cfg.checkpoint_dir));
      else
        run->complete();
    }
    rows.push_back({name, s});
  }

  // Summary table: the figures `moelab show` prints per run.
  std::ostream& out = ctx.print();
  size_t width = 4;
  for (const auto& r : rows) width = std::max(width, r.name.size());
  char line[512];
  std::snprintf(line, sizeof line, "\n%-*s %7s %10s %10s %13s %14s %10s\n", static_cast<int>(width), "run", "steps",
                "loss", "eval_loss", "MaxVio_batch", "MaxVio_global", "tok/s");
  out << line;
  for (const auto& r : rows) {
    std::snprintf(line, sizeof line, "%-*s %7lld %10.4f %10.4f %13.3f %14.3f %10.0f\n", static_cast<int>(width),
                  r.name.c_str(), static_cast<long long>(r.s.steps_done), r.s.final_loss, r.s.final_eval_loss,
                  r.s.final_maxvio_batch, r.s.final_maxvio_global, r.s.tokens_per_s);
    out << line;
  }
  if (results) out << "wrote " << results->path() << "\n";
  return 0;
}

}  // namespace moelab
