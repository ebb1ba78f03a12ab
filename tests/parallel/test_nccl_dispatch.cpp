// The NCCL expert-parallel dispatch/combine against the MPI one, under
// mpirun -np 2 (and more). Two suites:
//  - NcclPlan (always runs, no GPU needed): the NCCL path's plan and traffic
//    accounting equal the MPI Dispatcher's (direct mode, FP32 wire formats)
//    field for field.
//  - NcclDispatch (needs one GPU per rank, else "skipped: no GPU"): rows
//    carrying their identity (source rank, token, expert ids, then random
//    values) dispatched over NCCL equal the MPI dispatch's rows bit for bit, in
//    the same order with the same routing; combine of the received rows with
//    per-rank factors equals the MPI combine bit for bit.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>

#include "backend/cuda/nccl.hpp"
#include "core/rng.hpp"
#include "kernels/device.hpp"
#include "parallel/dispatch_combine.hpp"
#include "parallel/topology.hpp"

namespace moelab::cuda {
namespace {

using parallel::Dispatcher;
using parallel::DispatchMode;
using parallel::LinkCounters;
using parallel::Topology;
using parallel::TrafficStats;
using parallel::WireFormat;

constexpr int64_t kExperts = 16;
constexpr int kTopK = 3;
constexpr int64_t kHidden = 96;

int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

struct Inputs {
  int64_t tokens;
  std::vector<float> x, w;
  std::vector<int32_t> idx;
};

// Token t of rank s: K distinct experts from (s, t); row (s, t, ids, values).
Inputs make_inputs(int s) {
  Inputs in{24 + 5 * s, {}, {}, {}};
  for (int64_t t = 0; t < in.tokens; ++t) {
    Rng rng(1000003ULL * s + t + 17);
    std::vector<int32_t> ids;
    while (int(ids.size()) < kTopK) {
      const int32_t e = static_cast<int32_t>(rng.below(kExperts));
      if (std::find(ids.begin(), ids.end(), e) == ids.end()) ids.push_back(e);
    }
    std::vector<float> row(kHidden);
    row[0] = float(s);
    row[1] = float(t);
    for (int k = 0; k < kTopK; ++k) row[2 + k] = float(ids[k]);
    for (int64_t h = 2 + kTopK; h < kHidden; ++h) row[h] = static_cast<float>(rng.normal());
    in.x.insert(in.x.end(), row.begin(), row.end());
    in.idx.insert(in.idx.end(), ids.begin(), ids.end());
    for (float w : {0.5f, 0.25f, 0.25f}) in.w.push_back(w);
  }
  return in;
}

void expect_counters_eq(const LinkCounters& a, const LinkCounters& b) {
  EXPECT_EQ(a.tokens_sent_intra, b.tokens_sent_intra);
  EXPECT_EQ(a.tokens_sent_inter, b.tokens_sent_inter);
  EXPECT_EQ(a.bytes_sent_intra, b.bytes_sent_intra);
  EXPECT_EQ(a.bytes_sent_inter, b.bytes_sent_inter);
  EXPECT_EQ(a.tokens_recv_intra, b.tokens_recv_intra);
  EXPECT_EQ(a.tokens_recv_inter, b.tokens_recv_inter);
  EXPECT_EQ(a.bytes_recv_intra, b.bytes_recv_intra);
  EXPECT_EQ(a.bytes_recv_inter, b.bytes_recv_inter);
}

void expect_stats_eq(const TrafficStats& nccl, const TrafficStats& mpi) {
  expect_counters_eq(nccl.dispatch, mpi.dispatch);
  expect_counters_eq(nccl.combine, mpi.combine);
  EXPECT_EQ(nccl.tokens, mpi.tokens);
  EXPECT_EQ(nccl.token_node_pairs, mpi.token_node_pairs);
  EXPECT_EQ(nccl.token_rank_pairs, mpi.token_rank_pairs);
  EXPECT_EQ(nccl.nodes_per_token_max, mpi.nodes_per_token_max);
  EXPECT_EQ(nccl.rows_received, mpi.rows_received);
}

// Every rank ends up with the layouts (gpus_per_node 1: one node per rank,
// all traffic inter-node; n: one node, all intra).
std::vector<int> node_sizes() { return {1, world_size()}; }

TEST(NcclPlan, AccountingEqualsMpiDispatcher) {
  for (int gpn : node_sizes()) {
    SCOPED_TRACE("gpus_per_node " + std::to_string(gpn));
    Topology topo = Topology::create(MPI_COMM_WORLD, world_size(), gpn, kExperts);
    Inputs in = make_inputs(topo.ep_rank);
    Dispatcher mpi(topo, {DispatchMode::direct, WireFormat::fp32, WireFormat::fp32});
    const parallel::Received& r = mpi.dispatch(in.x.data(), in.idx.data(), in.w.data(), in.tokens, kHidden, kTopK);
    std::vector<float> y(in.tokens * kHidden);
    mpi.combine(r.x.data(), y.data());

    const NcclDispatchPlan plan = NcclDispatchPlan::build(topo, in.idx.data(), in.tokens, kTopK);
    EXPECT_EQ(plan.total_recv, r.rows);
    TrafficStats stats;
    plan.account(topo, in.idx.data(), in.tokens, kTopK, kHidden, true, stats);
    expect_stats_eq(stats, mpi.stats());
    EXPECT_GT(stats.dispatch.bytes_sent_intra + stats.dispatch.bytes_sent_inter, 0);
  }
}

TEST(NcclDispatch, RowsAndCombineEqualMpiBitForBit) {
  if (!every_rank_has_gpu(MPI_COMM_WORLD)) GTEST_SKIP() << "skipped: no GPU (needs one per rank)";
  select_local_device(MPI_COMM_WORLD);
  cudaStream_t stream;
  MOE_CUDA_CHECK(cudaStreamCreate(&stream));
  for (int gpn : node_sizes()) {
    SCOPED_TRACE("gpus_per_node " + std::to_string(gpn));
    Topology topo = Topology::create(MPI_COMM_WORLD, world_size(), gpn, kExperts);
    Inputs in = make_inputs(topo.ep_rank);
    Dispatcher mpi(topo, {DispatchMode::direct, WireFormat::fp32, WireFormat::fp32});
    const parallel::Received& r = mpi.dispatch(in.x.data(), in.idx.data(), in.w.data(), in.tokens, kHidden, kTopK);
    // Partial rows: received rows times a factor of the receiving rank (so
    // the combine's per-destination order matters).
    std::vector<float> partial(r.x);
    for (float& v : partial) v *= 1.0f + 0.375f * float(topo.ep_rank);
    std::vector<float> y_mpi(in.tokens * kHidden);
    mpi.combine(partial.data(), y_mpi.data());

    NcclComm comm(topo.ep_comm());
    NcclDispatcher nccl(topo, comm);
    float *d_x = nullptr, *d_partial = nullptr, *d_y = nullptr;
    MOE_CUDA_CHECK(cudaMalloc(&d_x, in.x.size() * 4));
    MOE_CUDA_CHECK(cudaMemcpy(d_x, in.x.data(), in.x.size() * 4, cudaMemcpyHostToDevice));
    const DeviceReceived& g = nccl.dispatch(d_x, in.idx.data(), in.w.data(), in.tokens, kHidden, kTopK, stream);
    ASSERT_EQ(g.rows, r.rows);
    std::vector<float> gx(g.rows * kHidden);
    MOE_CUDA_CHECK(cudaMemcpy(gx.data(), g.x, gx.size() * 4, cudaMemcpyDeviceToHost));
    EXPECT_EQ(std::memcmp(gx.data(), r.x.data(), gx.size() * 4), 0) << "dispatched rows differ";
    EXPECT_EQ(g.src_rank, r.src_rank);
    EXPECT_EQ(g.src_token, r.src_token);
    EXPECT_EQ(g.topk_idx, r.topk_idx);
    EXPECT_EQ(g.topk_weight, r.topk_weight);

    MOE_CUDA_CHECK(cudaMalloc(&d_partial, std::max<size_t>(1, partial.size()) * 4));
    MOE_CUDA_CHECK(cudaMalloc(&d_y, y_mpi.size() * 4));
    MOE_CUDA_CHECK(cudaMemcpy(d_partial, partial.data(), partial.size() * 4, cudaMemcpyHostToDevice));
    nccl.combine(d_partial, d_y, stream);
    std::vector<float> y(y_mpi.size());
    MOE_CUDA_CHECK(cudaMemcpy(y.data(), d_y, y.size() * 4, cudaMemcpyDeviceToHost));
    EXPECT_EQ(std::memcmp(y.data(), y_mpi.data(), y.size() * 4), 0) << "combined rows differ";
    expect_stats_eq(nccl.stats(), mpi.stats());
    EXPECT_EQ(nccl.stats().expert_load, mpi.stats().expert_load);

    // Gradient all-reduce: the sum of every rank's (rank + 1) is exact.
    std::vector<float> g_host(64, float(topo.ep_rank + 1));
    MOE_CUDA_CHECK(cudaMemcpy(d_y, g_host.data(), 64 * 4, cudaMemcpyHostToDevice));
    comm.all_reduce_sum(d_y, 64, stream);
    MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
    MOE_CUDA_CHECK(cudaMemcpy(g_host.data(), d_y, 64 * 4, cudaMemcpyDeviceToHost));
    const int n = topo.ep;
    EXPECT_EQ(g_host[0], float(n * (n + 1) / 2));
    // Pipeline point-to-point around a ring: rank r receives r - 1's values.
    std::vector<float> mine(64, float(10 + topo.ep_rank)), got(64, 0.0f);
    MOE_CUDA_CHECK(cudaMemcpy(d_y, mine.data(), 64 * 4, cudaMemcpyHostToDevice));
    comm.send_recv(d_y, 64 * 4, (topo.ep_rank + 1) % n, d_y + 64, 64 * 4, (topo.ep_rank + n - 1) % n, stream);
    MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
    MOE_CUDA_CHECK(cudaMemcpy(got.data(), d_y + 64, 64 * 4, cudaMemcpyDeviceToHost));
    EXPECT_EQ(got[63], float(10 + (topo.ep_rank + n - 1) % n));
    cudaFree(d_x);
    cudaFree(d_partial);
    cudaFree(d_y);
  }
  cudaStreamDestroy(stream);
}

// The backward's two exchanges (train --device cuda with parallel.ep > 1):
// the NCCL accounting equals the MPI Dispatcher's dispatch_grad/combine_grad.
TEST(NcclPlan, BackwardAccountingEqualsMpiDispatcher) {
  for (int gpn : node_sizes()) {
    SCOPED_TRACE("gpus_per_node " + std::to_string(gpn));
    Topology topo = Topology::create(MPI_COMM_WORLD, world_size(), gpn, kExperts);
    Inputs in = make_inputs(topo.ep_rank);
    Dispatcher mpi(topo, {DispatchMode::direct, WireFormat::fp32, WireFormat::fp32});
    const parallel::Received& r = mpi.dispatch(in.x.data(), in.idx.data(), in.w.data(), in.tokens, kHidden, kTopK);
    mpi.reset_stats();
    std::vector<float> dy_rows(r.rows * kHidden), dw_rows(r.rows * kTopK, 0.0f), dx(in.tokens * kHidden),
        dw(in.tokens * kTopK);
    mpi.dispatch_grad(in.x.data(), dy_rows.data());
    mpi.combine_grad(dy_rows.data(), dw_rows.data(), dx.data(), dw.data());

    const NcclDispatchPlan plan = NcclDispatchPlan::build(topo, in.idx.data(), in.tokens, kTopK);
    TrafficStats stats;
    plan.account_backward(topo, kTopK, kHidden, stats);
    expect_counters_eq(stats.dispatch, mpi.stats().dispatch);
    expect_counters_eq(stats.combine, mpi.stats().combine);
    EXPECT_GT(stats.combine.bytes_sent_intra + stats.combine.bytes_sent_inter, 0);
  }
}

// dispatch_grad and combine_grad over NCCL equal the MPI ones bit for bit
// (rows, dx, d_topk_weight) and count the same traffic.
TEST(NcclDispatch, BackwardEqualsMpiBitForBit) {
  if (!every_rank_has_gpu(MPI_COMM_WORLD)) GTEST_SKIP() << "skipped: no GPU (needs one per rank)";
  select_local_device(MPI_COMM_WORLD);
  cudaStream_t stream;
  MOE_CUDA_CHECK(cudaStreamCreate(&stream));
  for (int gpn : node_sizes()) {
    SCOPED_TRACE("gpus_per_node " + std::to_string(gpn));
    Topology topo = Topology::create(MPI_COMM_WORLD, world_size(), gpn, kExperts);
    Inputs in = make_inputs(topo.ep_rank);
    std::vector<float> dy(in.x);
    for (float& v : dy) v = v * 0.5f - 1.0f;
    Dispatcher mpi(topo, {DispatchMode::direct, WireFormat::fp32, WireFormat::fp32});
    const parallel::Received& r = mpi.dispatch(in.x.data(), in.idx.data(), in.w.data(), in.tokens, kHidden, kTopK);
    const int64_t R = r.rows, T = in.tokens;
    mpi.reset_stats();
    std::vector<float> dy_rows(R * kHidden), dx_mpi(T * kHidden), dw_mpi(T * kTopK);
    mpi.dispatch_grad(dy.data(), dy_rows.data());
    // Partials: the rows times a factor of this rank; weight gradients: one per local slot.
    std::vector<float> dx_partial(dy_rows), dw_rows(R * kTopK, 0.0f);
    for (float& v : dx_partial) v *= 1.0f + 0.375f * float(topo.ep_rank);
    for (int64_t i = 0; i < R; ++i)
      for (int k = 0; k < kTopK; ++k)
        if (topo.is_local_expert(r.topk_idx[i * kTopK + k])) dw_rows[i * kTopK + k] = 0.125f * float(i + k) - 1.0f;
    mpi.combine_grad(dx_partial.data(), dw_rows.data(), dx_mpi.data(), dw_mpi.data());

    NcclComm comm(topo.ep_comm());
    NcclDispatcher nccl(topo, comm);
    float *d_x = nullptr, *d_dy = nullptr, *d_rows = nullptr, *d_part = nullptr, *d_wr = nullptr, *d_dx = nullptr,
          *d_dw = nullptr;
    for (auto [ptr, n] : {std::pair{&d_x, T * kHidden}, {&d_dy, T * kHidden}, {&d_rows, R * kHidden},
                          {&d_part, R * kHidden}, {&d_wr, R * kTopK}, {&d_dx, T * kHidden}, {&d_dw, T * kTopK}})
      MOE_CUDA_CHECK(cudaMalloc(ptr, std::max<int64_t>(1, n) * 4));
    MOE_CUDA_CHECK(cudaMemcpy(d_x, in.x.data(), T * kHidden * 4, cudaMemcpyHostToDevice));
    MOE_CUDA_CHECK(cudaMemcpy(d_dy, dy.data(), T * kHidden * 4, cudaMemcpyHostToDevice));
    nccl.dispatch(d_x, in.idx.data(), in.w.data(), T, kHidden, kTopK, stream);
    nccl.reset_stats();
    nccl.dispatch_grad(d_dy, d_rows, stream);
    std::vector<float> rows(R * kHidden);
    MOE_CUDA_CHECK(cudaMemcpy(rows.data(), d_rows, rows.size() * 4, cudaMemcpyDeviceToHost));
    EXPECT_EQ(rows, dy_rows);
    MOE_CUDA_CHECK(cudaMemcpy(d_part, dx_partial.data(), dx_partial.size() * 4, cudaMemcpyHostToDevice));
    MOE_CUDA_CHECK(cudaMemcpy(d_wr, dw_rows.data(), dw_rows.size() * 4, cudaMemcpyHostToDevice));
    nccl.combine_grad(d_part, d_wr, d_dx, d_dw, stream);
    std::vector<float> dx(T * kHidden), dw(T * kTopK);
    MOE_CUDA_CHECK(cudaMemcpy(dx.data(), d_dx, dx.size() * 4, cudaMemcpyDeviceToHost));
    MOE_CUDA_CHECK(cudaMemcpy(dw.data(), d_dw, dw.size() * 4, cudaMemcpyDeviceToHost));
    EXPECT_EQ(std::memcmp(dx.data(), dx_mpi.data(), dx.size() * 4), 0) << "dx differs";
    EXPECT_EQ(std::memcmp(dw.data(), dw_mpi.data(), dw.size() * 4), 0) << "d_topk_weight differs";
    expect_counters_eq(nccl.stats().dispatch, mpi.stats().dispatch);
    expect_counters_eq(nccl.stats().combine, mpi.stats().combine);
    for (float* p : {d_x, d_dy, d_rows, d_part, d_wr, d_dx, d_dw}) cudaFree(p);
  }
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace moelab::cuda
