// The NCCL expert-parallel dispatch/combine against the MPI one, under
// mpirun -np 2 and -np 4, for every mode (direct, two_hop) x wire format
// (dispatch fp32/bf16/fp8, combine fp32/bf16) x node layout. Two suites:
//  - NcclPlan (always runs, no GPU needed): the NCCL path's plan (both hops,
//    the relay's second exchange built from the headers it received) and its
//    traffic accounting of dispatch, combine, dispatch_grad and combine_grad
//    equal the MPI Dispatcher's field for field; the combine's summation index
//    lists every row's send slots in ascending order.
//  - NcclDispatch (needs one GPU per rank, else "skipped: no GPU"): rows
//    carrying their identity (source rank, token, expert ids, then random
//    values) dispatched over NCCL equal the MPI dispatch's rows bit for bit
//    (after the same wire rounding), in the same order with the same routing;
//    combine, dispatch_grad and combine_grad equal the MPI ones bit for bit;
//    the traffic figures are equal; NCCL all-reduce and a ring of send/recv.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "backend/cuda/nccl.hpp"
#include "core/rng.hpp"
#include "kernels/device.hpp"
#include "kernels/gpu_test.hpp"
#include "parallel/dispatch_combine.hpp"
#include "parallel/mpi_world.hpp"
#include "parallel/topology.hpp"

namespace moelab::cuda {
namespace {

using parallel::Dispatcher;
using parallel::DispatchMode;
using parallel::DispatchOptions;
using parallel::LinkCounters;
using parallel::Topology;
using parallel::TrafficStats;
using parallel::WireFormat;
using test::DeviceBuffer;

constexpr int64_t kExperts = 16;
constexpr int kTopK = 3;
// Two 1x128 tiles, the second partial, and FP8 records of a size that is no
// multiple of 4 (unaligned scales).
constexpr int64_t kHidden = 150;

using test::world_size;

struct Inputs {
  int64_t tokens;
  std::vector<float> x, w, dy;
  std::vector<int32_t> idx;
};

// Token t of rank s: K distinct experts from (s, t); row (s, t, ids, values).
Inputs make_inputs(int s) {
  Inputs in{24 + 5 * s, {}, {}, {}, {}};
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
  for (float v : in.x) in.dy.push_back(v * 0.5f - 1.0f);
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

// Node layouts: one rank per node (all traffic inter-node, each rank its own
// relay), two ranks per node when that makes 2+ nodes (a real relay), one node.
std::vector<int> node_sizes() {
  const int n = world_size();
  std::vector<int> out{1};
  if (n > 2 && n % 2 == 0) out.push_back(2);
  out.push_back(n);
  return out;
}

struct Case {
  int gpn;
  DispatchOptions opt;
  std::string name() const {
    return "gpus_per_node " + std::to_string(gpn) + " " + parallel::dispatch_mode_name(opt.mode) + " dispatch " +
           parallel::wire_format_name(opt.dispatch_format) + " combine " + parallel::wire_format_name(opt.combine_format);
  }
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (int gpn : node_sizes())
    for (DispatchMode mode : {DispatchMode::direct, DispatchMode::two_hop})
      for (WireFormat d : {WireFormat::fp32, WireFormat::bf16, WireFormat::fp8})
        for (WireFormat c : {WireFormat::fp32, WireFormat::bf16}) out.push_back({gpn, {mode, d, c}});
  return out;
}

// The MPI Dispatcher's forward and backward on a case's inputs, with partials
// and weight gradients that depend on the receiving rank (so the order of the
// sums over destinations matters).
struct MpiRun {
  parallel::Received recv;
  std::vector<float> partial, y, dy_rows, dx_partial, dw_rows, dx, d_topk_weight;
  TrafficStats stats;
};

MpiRun run_mpi(const Topology& topo, const DispatchOptions& opt, const Inputs& in) {
  Dispatcher mpi(topo, opt);
  MpiRun run;
  run.recv = mpi.dispatch(in.x.data(), in.idx.data(), in.w.data(), in.tokens, kHidden, kTopK);
  const int64_t R = run.recv.rows, T = in.tokens;
  run.partial = run.recv.x;
  for (float& v : run.partial) v *= 1.0f + 0.375f * float(topo.ep_rank);
  run.y.assign(T * kHidden, 0.0f);
  mpi.combine(run.partial.data(), run.y.data());
  run.dy_rows.assign(R * kHidden, 0.0f);
  mpi.dispatch_grad(in.dy.data(), run.dy_rows.data());
  run.dx_partial = run.dy_rows;
  for (float& v : run.dx_partial) v *= 0.75f + 0.25f * float(topo.ep_rank);
  run.dw_rows.assign(R * kTopK, 0.0f);
  for (int64_t i = 0; i < R; ++i)
    for (int k = 0; k < kTopK; ++k)
      if (topo.is_local_expert(run.recv.topk_idx[i * kTopK + k])) run.dw_rows[i * kTopK + k] = 0.125f * float(i + k) - 1.0f;
  run.dx.assign(T * kHidden, 0.0f);
  run.d_topk_weight.assign(T * kTopK, 0.0f);
  mpi.combine_grad(run.dx_partial.data(), run.dw_rows.data(), run.dx.data(), run.d_topk_weight.data());
  run.stats = mpi.stats();
  return run;
}

// What hop 1 of a two_hop plan delivers to each relay: the headers of the
// rows it received, moved here with MPI (the NCCL path moves them over NCCL).
std::vector<uint8_t> relay_headers(const Topology& topo, const NcclExchange& hop1, const Inputs& in) {
  const int64_t head = parallel::dispatch_header_bytes(kTopK);
  std::vector<uint8_t> send(hop1.total_send * head), recv(hop1.total_recv * head);
  for (int64_t i = 0; i < hop1.total_send; ++i) {
    const int64_t t = hop1.send_src[i];
    parallel::write_dispatch_header(&send[i * head], topo.ep_rank, static_cast<int32_t>(t), &in.idx[t * kTopK],
                                    &in.w[t * kTopK], kTopK);
  }
  std::vector<int> sc(topo.ep), sd(topo.ep), rc(topo.ep), rd(topo.ep);
  for (int p = 0, so = 0, ro = 0; p < topo.ep; ++p) {
    sc[p] = static_cast<int>(hop1.send_rows[p] * head);
    rc[p] = static_cast<int>(hop1.recv_rows[p] * head);
    sd[p] = so;
    rd[p] = ro;
    so += sc[p];
    ro += rc[p];
  }
  MPI_Alltoallv(send.data(), sc.data(), sd.data(), MPI_BYTE, recv.data(), rc.data(), rd.data(), MPI_BYTE,
                topo.ep_comm());
  return recv;
}

void expect_csr_ascending(const NcclExchange& ex, int64_t rows) {
  ASSERT_EQ(int64_t(ex.offsets.size()), rows + 1);
  EXPECT_EQ(ex.offsets.back(), ex.total_send);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = ex.offsets[r]; j < ex.offsets[r + 1]; ++j) {
      EXPECT_EQ(ex.send_src[ex.slots[j]], r);
      if (j > ex.offsets[r]) {
        EXPECT_LT(ex.slots[j - 1], ex.slots[j]);
      }
    }
}

TEST(NcclPlan, PlanAndAccountingEqualMpiDispatcher) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name());
    Topology topo = Topology::create(MPI_COMM_WORLD, world_size(), c.gpn, kExperts);
    const Inputs in = make_inputs(topo.ep_rank);
    const MpiRun mpi = run_mpi(topo, c.opt, in);

    TrafficStats stats;
    NcclDispatchPlan plan = NcclDispatchPlan::begin(topo, c.opt.mode, in.idx.data(), in.tokens, kTopK, &stats);
    expect_csr_ascending(plan.hop1, in.tokens);
    if (plan.two_hop()) {
      const std::vector<uint8_t> heads = relay_headers(topo, plan.hop1, in);
      plan.relay(topo, heads.data(), parallel::dispatch_header_bytes(kTopK), kTopK);
      expect_csr_ascending(plan.hop2, plan.hop1.total_recv);
    }
    EXPECT_EQ(plan.rows_received(), mpi.recv.rows);
    stats.rows_received += plan.rows_received();
    const int64_t head = parallel::dispatch_header_bytes(kTopK),
                  dpay = parallel::wire_row_bytes(c.opt.dispatch_format, kHidden),
                  cpay = parallel::wire_row_bytes(c.opt.combine_format, kHidden);
    plan.count_forward(topo, head + dpay, stats.dispatch);     // dispatch
    plan.count_reverse(topo, cpay, stats.combine);             // combine
    plan.count_forward(topo, cpay, stats.dispatch);            // dispatch_grad
    plan.count_reverse(topo, cpay + 4 * kTopK, stats.combine);  // combine_grad
    expect_stats_eq(stats, mpi.stats);
    EXPECT_GT(stats.dispatch.bytes_sent_intra + stats.dispatch.bytes_sent_inter, 0);
  }
}

template <typename T>
void expect_bits_eq(const std::vector<T>& got, const std::vector<T>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(T)), 0) << what << " differ";
}

TEST(NcclDispatch, EveryModeAndWireFormatEqualsMpiBitForBit) {
  if (!every_rank_has_gpu(MPI_COMM_WORLD)) GTEST_SKIP() << "skipped: no GPU (needs one per rank)";
  select_local_device(MPI_COMM_WORLD);
  cudaStream_t stream;
  MOE_CUDA_CHECK(cudaStreamCreate(&stream));
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name());
    Topology topo = Topology::create(MPI_COMM_WORLD, world_size(), c.gpn, kExperts);
    const Inputs in = make_inputs(topo.ep_rank);
    const MpiRun mpi = run_mpi(topo, c.opt, in);
    const int64_t T = in.tokens, R = mpi.recv.rows;

    NcclComm comm(topo.ep_comm());
    NcclDispatcher nccl(topo, comm, c.opt);
    DeviceBuffer<float> d_x(in.x), d_dy(in.dy), d_partial(mpi.partial), d_dx_partial(mpi.dx_partial),
        d_dw_rows(mpi.dw_rows), d_y(T * kHidden), d_rows(R * kHidden), d_dx(T * kHidden), d_dw(T * kTopK);
    const DeviceReceived& g = nccl.dispatch(d_x.get(), in.idx.data(), in.w.data(), T, kHidden, kTopK, stream);
    ASSERT_EQ(g.rows, R);
    std::vector<float> gx(R * kHidden);
    if (R) MOE_CUDA_CHECK(cudaMemcpy(gx.data(), g.x, gx.size() * 4, cudaMemcpyDeviceToHost));
    expect_bits_eq(gx, mpi.recv.x, "dispatched rows");
    EXPECT_EQ(g.src_rank, mpi.recv.src_rank);
    EXPECT_EQ(g.src_token, mpi.recv.src_token);
    EXPECT_EQ(g.topk_idx, mpi.recv.topk_idx);
    EXPECT_EQ(g.topk_weight, mpi.recv.topk_weight);

    nccl.combine(d_partial.get(), d_y.get(), stream);
    expect_bits_eq(d_y.to_host(), mpi.y, "combined rows");
    nccl.dispatch_grad(d_dy.get(), d_rows.get(), stream);
    expect_bits_eq(d_rows.to_host(), mpi.dy_rows, "dispatch_grad rows");
    nccl.combine_grad(d_dx_partial.get(), d_dw_rows.get(), d_dx.get(), d_dw.get(), stream);
    expect_bits_eq(d_dx.to_host(), mpi.dx, "combine_grad dx");
    expect_bits_eq(d_dw.to_host(), mpi.d_topk_weight, "combine_grad d_topk_weight");
    expect_stats_eq(nccl.stats(), mpi.stats);
    EXPECT_EQ(nccl.stats().expert_load, mpi.stats.expert_load);
  }
  cudaStreamDestroy(stream);
}

TEST(NcclDispatch, AllReduceAndRingSendRecv) {
  if (!every_rank_has_gpu(MPI_COMM_WORLD)) GTEST_SKIP() << "skipped: no GPU (needs one per rank)";
  select_local_device(MPI_COMM_WORLD);
  cudaStream_t stream;
  MOE_CUDA_CHECK(cudaStreamCreate(&stream));
  NcclComm comm(MPI_COMM_WORLD);
  const int n = comm.size(), me = comm.rank();
  // Gradient all-reduce: the sum of every rank's (rank + 1) is exact.
  DeviceBuffer<float> g(std::vector<float>(64, float(me + 1)));
  comm.all_reduce_sum(g.get(), 64, stream);
  MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
  EXPECT_EQ(g.to_host()[0], float(n * (n + 1) / 2));
  // Pipeline point-to-point around a ring: rank r receives r - 1's values.
  DeviceBuffer<float> mine(std::vector<float>(64, float(10 + me))), got(64);
  comm.send_recv(mine.get(), 64 * 4, (me + 1) % n, got.get(), 64 * 4, (me + n - 1) % n, stream);
  MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
  EXPECT_EQ(got.to_host()[63], float(10 + (me + n - 1) % n));
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace moelab::cuda
