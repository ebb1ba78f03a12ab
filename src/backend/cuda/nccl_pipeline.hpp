// The pipeline executor's point-to-point over NCCL (issue 10): activations
// and gradients between pipeline ranks go through device buffers with
// ncclSend/ncclRecv instead of MPI_Isend/MPI_Irecv.
//
// NCCL has no tags: the sends and receives of a pair of ranks match in the
// order they are issued, and the operations of one communicator run one after
// the other. So the transport makes one communicator (bootstrapped from MPI,
// NcclComm) and one stream per ordered pair of ranks that exchange messages
// in the schedule (src -> dst: src only sends on it, dst only receives), and
// posts a pair's receives in the sender's order (schedule::p2p_send_order,
// tested on the CPU): asked for message m, it enqueues the receives of every
// earlier message of that pair first, into buffers of their own. Sends never
// block the host beyond the copy to the device, and a receive is waited on by
// its own event, so the executor's deadlock argument (it only ever blocks on
// data its producer sends as soon as it has computed it) holds as with MPI.
// An F&B op's two sends go out after both halves, the forward's first
// (matches_in_order), which is the order p2p_send_order assumes.
//
// The Stages stay on the host (the chain model, the CPU DeepSeek-V3 stages):
// a message is copied host -> device, sent, received, copied device -> host.
// ExecuteResult::comm[pipeline] stays zero (the progress engine sees only MPI
// requests). The current CUDA device must be set (select_local_device), one
// GPU per rank.
#pragma once

#include <mpi.h>

#include <memory>

#include "parallel/schedule/executor.hpp"
#include "parallel/schedule/schedule.hpp"

namespace moelab::cuda {

class NcclPipelineTransport : public schedule::PipelineTransport {
 public:
  // Collective over comm (the executor's, s.num_ranks ranks). `stages` gives
  // the message sizes (boundary_numel) of receives posted ahead.
  NcclPipelineTransport(const schedule::Schedule& s, const schedule::Stages& stages, MPI_Comm comm);
  ~NcclPipelineTransport() override;
  NcclPipelineTransport(const NcclPipelineTransport&) = delete;
  NcclPipelineTransport& operator=(const NcclPipelineTransport&) = delete;

  // The next step of the same schedule (a training loop's): the pair
  // communicators and streams are kept, the in-order bookkeeping starts over
  // and `stages` (this step's) gives the message sizes. Every transfer of the
  // previous step must have completed (execute() waits for all of them).
  void begin_step(const schedule::Stages& stages);

  Handle post_recv(float* data, int64_t n, int source, int tag) override;
  Handle send(const float* data, int64_t n, int dest, int tag) override;
  void wait(Handle h) override;
  bool done(Handle h) override;
  bool matches_in_order() const override { return true; }

  // Messages and bytes moved by this rank since construction.
  int64_t messages_sent() const;
  int64_t bytes_sent() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moelab::cuda
