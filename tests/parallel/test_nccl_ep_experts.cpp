// The expert-parallel routed experts on GPUs over NCCL (train --device cuda
// with parallel.ep > 1) against the MPI/CPU EpExperts, under mpirun -np 2:
// same inputs on every rank's share of tokens, forward y, backward dx and
// d_topk_weight, and this rank's expert weight gradients within FP32 GEMM
// tolerance (1e-5 of each tensor's largest magnitude), and the same traffic
// (byte and token counts). Needs one GPU per rank, else "skipped: no GPU".
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <deque>

#include "backend/cuda/ep_experts_nccl.hpp"
#include "backend/cuda/nccl.hpp"
#include "core/rng.hpp"
#include "parallel/ep_experts.hpp"
#include "tests/kernels/gpu_test.hpp"

namespace moelab::cuda {
namespace {

using test::max_scaled_error;

struct Experts {
  std::deque<Param<float>> params;
  std::vector<MlpParams<float>> mlps;
  Experts(int64_t E, int64_t H, int64_t I) {
    for (int64_t e = 0; e < E; ++e) {
      auto make = [&](Shape s, uint64_t seed) {
        Param<float>& p = params.emplace_back("model.layers.1.mlp.experts." + std::to_string(e) + ".w", s);
        Rng rng(seed);
        for (float& v : p.value.data) v = static_cast<float>(0.2 * rng.normal());
        return &p;
      };
      mlps.push_back({make({I, H}, 10 * e + 1), make({I, H}, 10 * e + 2), make({H, I}, 10 * e + 3)});
    }
  }
};

TEST(NcclEpExperts, MatchMpiEpExperts) {
  if (!every_rank_has_gpu(MPI_COMM_WORLD)) GTEST_SKIP() << "skipped: no GPU (needs one per rank)";
  select_local_device(MPI_COMM_WORLD);
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const int64_t E = 8, H = 40, I = 24, K = 3;
  const parallel::Topology topo = parallel::Topology::create(MPI_COMM_WORLD, world, 1, E);
  const int64_t T = 21 + 4 * topo.ep_rank;
  Tensor<float> x({T, H}), w({T, K}), dy({T, H});
  Tensor<int32_t> idx({T, K});
  Rng rng(77 + topo.ep_rank);
  for (float& v : x.data) v = static_cast<float>(rng.normal());
  for (float& v : dy.data) v = static_cast<float>(rng.normal());
  for (float& v : w.data) v = static_cast<float>(0.2 + 0.1 * rng.normal());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) idx[t * K + k] = static_cast<int32_t>((t * 5 + k * 3 + topo.ep_rank) % E);

  Experts cpu_experts(E, H, I), gpu_experts(E, H, I);
  auto cpu_sink = std::make_shared<parallel::TrafficStats>(), gpu_sink = std::make_shared<parallel::TrafficStats>();
  const auto cpu_factory = parallel::ep_experts_factory(
      topo, {parallel::DispatchMode::direct, parallel::WireFormat::fp32, parallel::WireFormat::fp32}, cpu_sink);
  const auto gpu_factory = nccl_ep_experts_factory(topo, nccl_ep_setup(topo), gpu_sink);
  {
    auto a = cpu_factory(1, cpu_experts.mlps, GemmPrecision::fp32);
    auto b = gpu_factory(1, gpu_experts.mlps, GemmPrecision::fp32);
    Tensor<float> ya, yb, dxa, dxb, dwa, dwb;
    a->forward(ya, x, idx, w);
    b->forward(yb, x, idx, w);
    a->backward(dxa, dwa, dy);
    b->backward(dxb, dwb, dy);
    EXPECT_LT(max_scaled_error(yb.data, ya.data), 1e-5);
    EXPECT_LT(max_scaled_error(dxb.data, dxa.data), 1e-5);
    EXPECT_LT(max_scaled_error(dwb.data, dwa.data), 1e-5);
    for (size_t i = 0; i < cpu_experts.params.size(); ++i)
      EXPECT_LT(max_scaled_error(gpu_experts.params[i].grad.data, cpu_experts.params[i].grad.data), 1e-5)
          << cpu_experts.params[i].name;
  }
  EXPECT_EQ(gpu_sink->dispatch.bytes_sent_inter, cpu_sink->dispatch.bytes_sent_inter);
  EXPECT_EQ(gpu_sink->dispatch.tokens_recv_inter, cpu_sink->dispatch.tokens_recv_inter);
  EXPECT_EQ(gpu_sink->combine.bytes_sent_inter, cpu_sink->combine.bytes_sent_inter);
  EXPECT_EQ(gpu_sink->combine.bytes_recv_inter, cpu_sink->combine.bytes_recv_inter);
  EXPECT_EQ(gpu_sink->rows_received, cpu_sink->rows_received);
  EXPECT_EQ(gpu_sink->expert_load, cpu_sink->expert_load);
}

}  // namespace
}  // namespace moelab::cuda
