// Runs a pipeline schedule over MPI ranks, op by op, with the model behind an
// abstract per-rank Stages interface, and logs the measured timeline in the
// schedule/events format (events_h5.hpp) so it compares row by row with the
// simulated one.
//
// Communication (why it cannot deadlock): before an op a rank receives what
// the op needs (the previous stage's activation for a forward, the next
// stage's input gradient for a backward) with a blocking wait on MPI_Irecv
// (posted one op ahead, so a transfer can land while the previous op computes);
// after the op it sends what it produced with MPI_Isend and does NOT wait for
// the send (the request and its buffer are kept, tested for completion at each
// op and all waited at the end of the step). A rank therefore only ever blocks
// on data that its producer sends as soon as it has computed it, which is the
// model validate() checks: a schedule that passes the validator (dependency
// graph plus program order acyclic) cannot deadlock here. DualPipe's own
// executor gets the same guarantee differently, by batching each op's sends
// with the next op's receives (batch_isend_irecv) in a hand-placed order;
// with non-blocking sends no placement is needed. Stages that meet on the
// same rank (DualPipeV's turn, stages N-1 and N) hand their tensors over in
// memory.
//
// Messages are identified by tag = 2·(mb·S + stage) + {0 activation, 1 gradient},
// so any order of arrival is fine; the tag range is checked against MPI_TAG_UB.
// The transport is pluggable (PipelineTransport below; MPI by default): a
// transport that matches in issue order instead of by tag (NCCL,
// src/backend/cuda/nccl_pipeline.hpp) posts each pair's receives in the
// sender's order (p2p_order.hpp) and gets an F&B op's sends in a fixed order.
//
// Overlap (DeepSeek-V3 Figure 4): an F&B op runs the forward of one
// micro-batch and the backward of another as an OverlapPair
// (parallel/overlap_pair.hpp): whenever one half waits for communication
// (its MoE layers' dispatch/combine all-to-alls, which are non-blocking and
// waited with parallel::wait_request), the other half computes; each half
// sends its result to the next rank as soon as it is done. A progress thread
// (parallel/comm_progress.hpp) tests every in-flight request, so transfers
// advance while the rank computes, and measures per rank how much of the
// communication time was hidden behind computation (ExecuteResult::comm).
// The progress thread needs MPI_THREAD_MULTIPLE; without it requests
// progress only when waited on (the halves still interleave, as fibers on the
// rank's one thread, so nothing else needs it). Zero bubble: B_input
// calls backward_input with defer_weight = true and the matching W op calls
// backward_weight.
//
// Plugging in the DeepSeek-V3 stages (issue 6, `moelab train` with
// parallel.pp > 1), what a Stages implementation over src/model must do:
//   - stage s holds a contiguous range of decoder layers; stage 0 also the
//     embedding (forward reads the micro-batch's token ids itself, input is
//     empty), the last stage also the final norm, head and MTP modules and
//     the loss (output empty; backward_input starts from the loss, scaled
//     by 1/C so the summed gradients equal one full-batch step);
//     boundary_numel = T·H of the hidden states ([T, H], fp32 or bf16 bits).
//   - DualPipe: rank r holds stage r and stage PP-1-r, so ranks 0 and PP-1
//     each hold the embedding and the head (the paper's shared embedding /
//     head for MTP). The two copies of a stage (ranks r and PP-1-r) start
//     equal and their gradients are summed (all-reduce over the pair) before
//     the optimizer step, as DualPipe does; DualPipeV has no copies.
//   - zero bubble: backward_input(defer_weight = true) computes dx and
//     keeps (x, dy) of every linear for backward_weight (DualPipe's
//     WeightGradStore); the MoE layers' expert weights included.
//   - expert parallelism: each stage's RoutedExperts dispatch/combine runs on
//     the EP communicator of that pipeline rank (a PP × EP layout splits
//     MPI_COMM_WORLD into PP-rank and EP-rank communicators; `comm` here is
//     the pipeline one); an F&B op interleaves the F and B all-to-alls of
//     two micro-batches (Overlap above).
//   - execute() returns per-rank events; gather_measured + write_schedule_group
//     log them as schedule/events (source = measured), and
//     measured_durations.hpp (stage_durations, mean_durations) feeds the
//     simulator for the sim-vs-measured comparison.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <span>
#include <vector>

#include "parallel/comm_progress.hpp"
#include "parallel/schedule/schedule.hpp"
#include "parallel/schedule/simulate.hpp"

namespace moelab::schedule {

// The stages one rank holds. Activations and gradients cross stage
// boundaries as flat float buffers of boundary_numel(mb) elements (the
// stage's own shapes, e.g. [T, H] hidden states, are its business).
// Gradient rule: parameter gradients accumulate (+=) over micro-batches.
class Stages {
 public:
  virtual ~Stages() = default;
  // Elements of the activation (and of its gradient) passed between stages
  // for micro-batch mb.
  virtual int64_t boundary_numel(int mb) const = 0;
  // Forward of (mb, stage). input: the previous stage's output (empty for
  // stage 0, which reads its own data). output: to fill (empty for the last
  // stage, which computes and keeps the micro-batch's loss). Saves what the
  // backward needs.
  virtual void forward(int mb, int stage, std::span<const float> input, std::span<float> output) = 0;
  // Backward of (mb, stage) for the input: grad_output is dL/d(output)
  // (empty for the last stage: start from the loss); fills grad_input =
  // dL/d(input) (empty for stage 0). defer_weight = false: also accumulate the
  // weight gradients and free the saved activations (a full B). true: keep
  // what the weight gradient needs until backward_weight(mb, stage) (B_input).
  virtual void backward_input(int mb, int stage, std::span<const float> grad_output, std::span<float> grad_input,
                              bool defer_weight) = 0;
  // The deferred weight gradient of (mb, stage) (W); frees its activations.
  virtual void backward_weight(int mb, int stage) = 0;
};

// How activations and gradients travel between the ranks of the pipeline.
// The executor posts receives ahead, sends without waiting for the send, and
// blocks only in wait() on a receive it needs now (see the top of this file).
// The default (ExecuteOptions::transport == nullptr) is MPI point-to-point on
// the executor's communicator (MPI_Irecv/MPI_Isend with tags, progressed by
// the progress thread and counted in ExecuteResult::comm[pipeline]);
// src/backend/cuda/nccl_pipeline.hpp has the NCCL one.
class PipelineTransport {
 public:
  virtual ~PipelineTransport() = default;
  using Handle = int64_t;
  // Receive n floats from rank `source` into data (which stays put until the
  // handle completed). tag: p2p_tag(schedule, mb, from_stage, payload).
  virtual Handle post_recv(float* data, int64_t n, int source, int tag) = 0;
  // Send n floats to rank `dest` (data stays put until the handle completed).
  virtual Handle send(const float* data, int64_t n, int dest, int tag) = 0;
  // Blocks until the handle completed (a receive's data is then in place).
  virtual void wait(Handle h) = 0;
  // Whether the handle completed (without blocking).
  virtual bool done(Handle h) = 0;
  // True when a pair's sends and receives match in the order they are issued
  // rather than by tag (NCCL): the executor then issues an F&B op's two sends
  // after both halves, the forward's first (the order p2p_send_order assumes).
  virtual bool matches_in_order() const { return false; }
};

struct ExecuteOptions {
  bool overlap = true;          // interleave the halves of F&B ops
  bool progress_thread = true;  // progress requests while computing
  PipelineTransport* transport = nullptr;  // null: MPI point-to-point on comm
};

struct ExecuteResult {
  double origin_s = 0;  // steady clock (s) at this rank's time 0, its exit from the start barrier
  std::vector<Event> events;  // this rank's ops, program order; seconds since the common start
  double compute_s = 0;       // sum of op times (F&B: both halves, interleaved)
  double wait_s = 0;          // time blocked in pipeline receives before ops
  bool overlapped = false;       // F&B halves interleaved (options.overlap)
  bool progress_thread = false;  // options.progress_thread and MPI_THREAD_MULTIPLE
  int64_t fb_switches = 0;       // F&B halves handing over to each other (OverlapPair::run)
  // Communication of this step: [0] expert-parallel all-to-alls, [1]
  // pipeline point-to-point; comm_total counts time with either in flight once.
  parallel::CommFigures comm[parallel::kNumCommClasses];
  parallel::CommFigures comm_total;
};

// Runs this rank's program of `s` (rank = the rank in comm, which must have
// s.num_ranks ranks). Validates the schedule first (every rank, same answer).
// Stages are called from the calling thread only (an F&B op's halves run as
// two fibers on it, never at the same time).
ExecuteResult execute(const Schedule& s, Stages& stages, MPI_Comm comm, const ExecuteOptions& options = {});

// Gathers every rank's events to root and returns the measured figures there
// on one time axis (seconds since the earliest rank's origin_s) when the
// ranks are on one node
// (makespan, per-rank busy/idle, and the schedule's peak activations and
// parameter copies), in the same form as the simulator's; other ranks get an
// empty result.
SimResult gather_measured(const Schedule& s, const ExecuteResult& mine, MPI_Comm comm, int root = 0);

}  // namespace moelab::schedule
