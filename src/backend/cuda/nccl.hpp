// NCCL communication for moelab's GPU runs: a communicator bootstrapped from
// MPI (rank 0 of the MPI communicator calls ncclGetUniqueId, MPI_Bcast hands
// it to every rank, each calls ncclCommInitRank), the all-to-allv of the
// expert-parallel dispatch/combine as ncclSend/ncclRecv pairs inside one
// ncclGroupStart/End, point-to-point for the pipeline, and all-reduce for
// gradients. All buffers are device pointers; calls are enqueued on `stream`.
//
// NcclDispatcher moves the same rows as parallel::Dispatcher in direct mode
// with FP32 wire formats: the plan is parallel::direct_send_lists and the
// traffic is counted by parallel::count_link_traffic with the same record
// sizes, so its TrafficStats equal the MPI path's (tests/parallel/
// test_nccl_dispatch.cpp checks both the accounting and, on GPUs, the rows).
#pragma once

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "parallel/dispatch_combine.hpp"
#include "parallel/topology.hpp"

#define MOE_NCCL_CHECK(call)                                                                          \
  do {                                                                                                \
    ncclResult_t moe_nccl_rc_ = (call);                                                               \
    MOE_CHECK(moe_nccl_rc_ == ncclSuccess) << "NCCL call " #call " failed: " << ncclGetErrorString(moe_nccl_rc_); \
  } while (0)

namespace moelab::cuda {

// Sets this rank's GPU: its index among the ranks of its host (MPI shared-
// memory split of `comm`) modulo the host's GPUs. Throws when the host has
// fewer GPUs than ranks (NCCL does not allow two ranks on one GPU). Returns it.
int select_local_device(MPI_Comm comm);
// 1 on every rank when each rank of `comm` has a GPU of its own, else 0
// (collective; the test's skip condition).
bool every_rank_has_gpu(MPI_Comm comm);

class NcclComm {
 public:
  // Collective over `comm` (MPI_COMM_WORLD or a sub-communicator such as
  // Topology::ep_comm()); the current CUDA device must be set already.
  explicit NcclComm(MPI_Comm comm = MPI_COMM_WORLD);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm mpi_comm() const { return mpi_; }
  ncclComm_t get() const { return comm_; }

  // Bytes: send_bytes[p] from send (packed, peers ascending) to rank p,
  // recv_bytes[p] from rank p into recv (packed, peers ascending). Every
  // rank's send_bytes[q] must equal q's recv_bytes[me].
  void all_to_allv(const void* send, const std::vector<int64_t>& send_bytes, void* recv,
                   const std::vector<int64_t>& recv_bytes, cudaStream_t stream) const;
  // Pipeline point-to-point (blocking only the stream; pair them across ranks).
  void send(const void* buf, int64_t bytes, int peer, cudaStream_t stream) const;
  void recv(void* buf, int64_t bytes, int peer, cudaStream_t stream) const;
  // Both in one NCCL group (a pipeline stage passing activations on while
  // receiving its next input: no ordering deadlock).
  void send_recv(const void* send_buf, int64_t send_bytes, int to, void* recv_buf, int64_t recv_bytes, int from,
                 cudaStream_t stream) const;
  // In place sum over the ranks (gradients).
  void all_reduce_sum(float* buf, int64_t count, cudaStream_t stream) const;

 private:
  MPI_Comm mpi_;
  int rank_ = 0, size_ = 1;
  ncclComm_t comm_ = nullptr;
};

// What an NCCL dispatch delivers: rows on the device, routing on the host.
struct DeviceReceived {
  int64_t rows = 0, hidden = 0;
  int top_k = 0;
  float* x = nullptr;               // [R, H] device, owned by the dispatcher
  std::vector<int32_t> src_rank;    // [R]
  std::vector<int32_t> src_token;   // [R]
  std::vector<int32_t> topk_idx;    // [R, K]
  std::vector<float> topk_weight;   // [R, K]
};

// The host side of one NCCL dispatch: the plan, per-peer row counts and the
// traffic it accounts. Needs no GPU (the accounting is tested on the CPU).
struct NcclDispatchPlan {
  std::vector<int32_t> send_src;            // [S] local token of each send slot, peers ascending
  std::vector<int> send_rows, recv_rows;    // per EP rank
  int64_t total_send = 0, total_recv = 0;
  // Collective over topo.ep_comm() (the row counts are exchanged with MPI_Alltoall).
  static NcclDispatchPlan build(const parallel::Topology& topo, const int32_t* topk_idx, int64_t num_tokens,
                                int top_k);
  // Adds this dispatch (and a combine when `with_combine`) to stats the way
  // the MPI Dispatcher does with FP32 wire formats.
  void account(const parallel::Topology& topo, const int32_t* topk_idx, int64_t num_tokens, int top_k,
               int64_t hidden, bool with_combine, parallel::TrafficStats& stats) const;
  // Adds the backward's two exchanges as the MPI Dispatcher counts them with
  // FP32 wire formats: dispatch_grad (payload rows, into stats.dispatch) and
  // combine_grad (payload + K FP32 weight gradients, into stats.combine).
  void account_backward(const parallel::Topology& topo, int top_k, int64_t hidden,
                        parallel::TrafficStats& stats) const;
};

class NcclDispatcher {
 public:
  // comm must span topo.ep_comm() in EP-rank order.
  NcclDispatcher(const parallel::Topology& topo, const NcclComm& comm);
  ~NcclDispatcher();
  NcclDispatcher(const NcclDispatcher&) = delete;
  NcclDispatcher& operator=(const NcclDispatcher&) = delete;

  // x [T,H] device; topk_idx, topk_weight [T,K] host. Synchronises the stream.
  const DeviceReceived& dispatch(const float* x, const int32_t* topk_idx, const float* topk_weight, int64_t num_tokens,
                                 int64_t hidden, int top_k, cudaStream_t stream);
  // partial [R,H] device -> y [T,H] device (=), summed over destination
  // ranks in ascending order (the MPI path's order, bit for bit in FP32).
  void combine(const float* partial, float* y, cudaStream_t stream);
  // Backward (the MPI Dispatcher's dispatch_grad / combine_grad, direct mode,
  // FP32): dy [T,H] device -> dy_rows [R,H] device (=), the rows of the last
  // dispatch in its order; dx_partial [R,H] and dweight_rows [R,K] device ->
  // dx [T,H], d_topk_weight [T,K] device (=), summed over destination ranks in
  // ascending order. Synchronise the stream.
  void dispatch_grad(const float* dy, float* dy_rows, cudaStream_t stream);
  void combine_grad(const float* dx_partial, const float* dweight_rows, float* dx, float* d_topk_weight,
                    cudaStream_t stream);

  const parallel::TrafficStats& stats() const;
  void reset_stats();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moelab::cuda
