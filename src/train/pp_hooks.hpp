// The training loop over a pipeline of MPI ranks (issue 6): `moelab train`
// with parallel.pp = P > 1 under mpirun -np P.
//
//   data      every rank sees the whole global batch (B sequences), cut into
//             C = parallel.microbatches micro-batches of B/C sequences
//   schedule  parallel.schedule (1f1b, zb1p, dualpipe, dualpipev, gpipe) on
//             P ranks; the decoder layers are cut into its stages
//             (pipeline::ModelStages: embedding on the first, norm + head +
//             loss + MTP on the last; DualPipe: rank r holds stages r and P-1-r)
//             and schedule::execute runs it with non-blocking point-to-point
//   grads     each rank holds the full parameters and accumulates only its
//             stages'; one world all-reduce (sum) after the schedule gives
//             every rank the full gradient (DualPipe's two copies of a stage
//             and the shared embedding/head summed), so clipping, AdamW and
//             the expert-bias update stay identical on every rank
//   loads     each MoE layer's loads summed over the micro-batches and ranks
//   timeline  at the last step the measured per-rank events go to
//             /runs/<run>/schedule (schedule/events, source = measured), and
//             the schedule is re-simulated with the durations measured in it
//             (pp_sim_vs_measured.hpp): /runs/<run>/schedule_predicted/schedule,
//             and per-rank measured_end_s, predicted_end_s,
//             predicted_vs_measured_error_pct attributes on /runs/<run>/schedule
//   overlap   an F&B op (DualPipe, DualPipeV) runs its forward and backward
//             halves interleaved at their communication waits, with a
//             progress thread moving the transfers (schedule/executor.hpp);
//             per rank, the communication time and the part of it hidden
//             behind computation are measured over the run and written as
//             attributes of /runs/<run>/schedule (comm_*); parallel.overlap
//             = false runs the halves one after the other, and
//             parallel.comm_progress = false runs without the progress thread
//             (requests then move only when waited on): the ablations
//   PP x EP   parallel.ep = EP > 1 (or 0: world / PP) runs EP pipeline
//             replicas on PP x EP ranks (see pp_train_hooks)
//   losses    MTP (model.mtp_depth > 0) on the last stage with the shared
//             embedding and head, weighted by mtp.lambda at the step; the
//             auxiliary balance losses computed by the stage holding each
//             MoE layer (sequence-wise: the same as one process; batch-wise:
//             per micro-batch); logged losses summed over the ranks
//   limits    evaluation runs the whole model on every rank; W ops run the
//             linear layers' deferred weight GEMMs (pipeline_stages.hpp)
#pragma once

#include <mpi.h>

#include <functional>
#include <string>

#include "parallel/schedule/executor.hpp"
#include "train/ep_hooks.hpp"
#include "train/loop.hpp"

namespace moelab::train {

struct PpTrainOptions {
  int pp = 1;
  std::string schedule = "1f1b";
  int microbatches = 0;  // 0: one per sequence of the batch
  bool overlap = true;   // interleave the halves of F&B ops (DualPipe)
  bool comm_progress = true;  // a thread progresses in-flight requests while computing
  // The pipeline's point-to-point for one step (ExecuteOptions::transport):
  // called before every step's execute with the schedule, that step's stages
  // and the replica's pipeline communicator; the first call is collective over
  // it. Empty, or returning null: MPI point-to-point. `moelab train --device
  // cuda` installs NCCL's (backend/cuda/nccl_pipeline.hpp), kept across steps.
  std::function<schedule::PipelineTransport*(const schedule::Schedule&, const schedule::Stages&, MPI_Comm)>
      transport;
};

// parallel.pp, parallel.schedule, parallel.microbatches, parallel.overlap,
// parallel.comm_progress.
void declare_pp_train_options(po::options_description_easy_init add);

template <typename Opts>
PpTrainOptions pp_train_options_from(const Opts& o) {
  PpTrainOptions p;
  p.pp = o.template get<int>("parallel.pp");
  p.schedule = o.template get<std::string>("parallel.schedule");
  p.microbatches = o.template get<int>("parallel.microbatches");
  p.overlap = o.template get<bool>("parallel.overlap");
  p.comm_progress = o.template get<bool>("parallel.comm_progress");
  return p;
}

// Hooks for `config` over MPI_COMM_WORLD, whose size must be options.pp x
// ep.ep (PP x EP: world rank w is pipeline rank w / EP of pipeline replica
// w % EP; the EP ranks of one pipeline rank form its EP group, whose
// dispatch/combine every MoE layer of its stages uses; replica e trains on
// rows [e·B/EP, (e+1)·B/EP) of the batch; gradients are summed over the
// world and divided by EP; the experts are ep.make_experts' when set, as in
// ep_train_hooks, else the MPI ones). Throws with the reason when the schedule,
// micro-batch count or model options do not fit. progress: where the
// sim-vs-measured table goes (rank 0).
TrainHooks pp_train_hooks(const TrainConfig& config, const PpTrainOptions& options, const EpTrainOptions& ep,
                          std::ostream* progress);

}  // namespace moelab::train
