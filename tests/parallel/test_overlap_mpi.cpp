// F&B overlap (issue 6), under mpirun -np 4: the fiber pair's switching
// order, the progress thread's measurement of communication hidden behind
// computation, and a DualPipe step of PP = 2 x EP = 2 whose loss and
// gradients are bit-identical with and without overlap (the halves share no
// data, so interleaving them must not change one bit) while the halves did
// hand over at the expert all-to-alls.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "mpi_world.hpp"
#include "core/rng.hpp"
#include "model/config.hpp"
#include "parallel/comm_progress.hpp"
#include "parallel/ep_experts.hpp"
#include "parallel/overlap_pair.hpp"
#include "parallel/pipeline_stages.hpp"
#include "parallel/schedule/generators.hpp"

using namespace moelab;
using moelab::parallel::CommClass;
using moelab::parallel::CommProgress;
using moelab::parallel::OverlapPair;
using moelab::test::world_rank;
using moelab::test::world_size;

namespace {

void pause_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

TEST(OverlapPair, AlternatesAtEveryWait) {
  std::string log;
  const int switches = OverlapPair::run(
      [&] {
        log += "a1 ";
        OverlapPair::yield_turn();
        log += "a2 ";
        OverlapPair::yield_turn();
        log += "a3 ";
      },
      [&] {
        log += "b1 ";
        OverlapPair::yield_turn();
        log += "b2 ";
        OverlapPair::yield_turn();  // a still runs: hands over
        log += "b3 ";
      });
  EXPECT_EQ(log, "a1 b1 a2 b2 a3 b3 ");
  EXPECT_EQ(switches, 4);
}

TEST(OverlapPair, RunsOnAloneOnceTheOtherEnded) {
  std::string log;
  const int switches = OverlapPair::run([&] { log += "a "; },
                                        [&] {
                                          log += "b1 ";
                                          OverlapPair::yield_turn();
                                          log += "b2 ";
                                        });
  EXPECT_EQ(log, "a b1 b2 ");
  EXPECT_EQ(switches, 0);
  OverlapPair::yield_turn();  // outside a pair: nothing happens
}

TEST(OverlapPair, RethrowsAfterBothEnded) {
  bool a_finished = false;
  EXPECT_THROW(OverlapPair::run(
                   [&] {
                     OverlapPair::yield_turn();
                     a_finished = true;
                   },
                   [] { throw std::runtime_error("b failed"); }),
               std::runtime_error);
  EXPECT_TRUE(a_finished);
}

// Rank 1 sends 1 MiB 100 ms after rank 0 posted the receive. Computing (here:
// busy elsewhere, sleeping) for 250 ms before waiting hides the transfer;
// waiting at once exposes it.
void transfer_after_100ms(bool compute_first) {
  if (world_size() < 2) GTEST_SKIP() << "needs 2 ranks";
  if (!CommProgress::thread_supported()) GTEST_SKIP() << "MPI without MPI_THREAD_MULTIPLE";
  std::vector<float> buffer(1 << 18);
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 1) {
    pause_ms(100);
    MPI_Send(buffer.data(), static_cast<int>(buffer.size()), MPI_FLOAT, 0, 7, MPI_COMM_WORLD);
  } else if (world_rank() == 0) {
    CommProgress progress(true);
    MPI_Request request = MPI_REQUEST_NULL;
    MPI_Irecv(buffer.data(), static_cast<int>(buffer.size()), MPI_FLOAT, 1, 7, MPI_COMM_WORLD, &request);
    const auto ticket = progress.track(request, CommClass::pipeline);
    if (compute_first) pause_ms(250);
    progress.wait(ticket);
    const parallel::CommFigures f = progress.figures(CommClass::pipeline);
    EXPECT_EQ(f.requests, 1);
    EXPECT_GT(f.comm_s, 0.08);
    EXPECT_LT(f.comm_s, compute_first ? 0.25 : 1.0);
    EXPECT_EQ(progress.figures(CommClass::expert).requests, 0);
    if (compute_first) {
      EXPECT_GT(f.hidden_fraction(), 0.95) << "comm " << f.comm_s << " s, exposed " << f.exposed_s << " s";
    } else {
      EXPECT_LT(f.hidden_fraction(), 0.1) << "comm " << f.comm_s << " s, exposed " << f.exposed_s << " s";
    }
    progress.reset();
    EXPECT_EQ(progress.total().requests, 0);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(CommProgress, ComputingHidesATransfer) { transfer_after_100ms(true); }
TEST(CommProgress, WaitingAtOnceExposesIt) { transfer_after_100ms(false); }

// DualPipe on the pipeline ranks {0, 2} and {1, 3} (two replicas), each
// pipeline rank's MoE layers dispatched over its EP pair {0, 1} / {2, 3}.
TEST(OverlapModel, DualPipeTimesEpBitIdenticalWithAndWithoutOverlap) {
  if (world_size() != 4) GTEST_SKIP() << "needs 4 ranks (PP = 2 x EP = 2)";
  const int rank = world_rank(), EP = 2, replica = rank % EP;
  MPI_Comm pipe = MPI_COMM_NULL, stage_group = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, replica, rank / EP, &pipe);
  MPI_Comm_split(MPI_COMM_WORLD, rank / EP, replica, &stage_group);

  ModelConfig cfg = model_preset("v3-tiny");
  cfg.num_nextn_predict_layers = 0;
  cfg.num_hidden_layers = 4;  // both stages hold MoE layers: both halves of an F&B communicate
  const parallel::Topology topo = parallel::Topology::create(stage_group, EP, 8, cfg.n_routed_experts);
  ModelContext<float> ctx;
  ctx.make_experts = parallel::ep_experts_factory(topo, parallel::DispatchOptions{});
  const schedule::Schedule s = schedule::make_dualpipe(2, 4);
  std::vector<pipeline::MicroBatch> mbs(s.num_microbatches);
  Rng rng(41 + replica);
  for (auto& m : mbs) {
    m.batch = 2;
    m.seq_len = 8;
    for (int64_t t = 0; t < m.tokens(); ++t) {
      m.token_ids.push_back(static_cast<int32_t>(rng.next_u64() % cfg.vocab_size));
      m.targets.push_back(static_cast<int32_t>(rng.next_u64() % cfg.vocab_size));
    }
  }

  ModelParams<float> base(cfg, false);
  base.init(11, 0.05);
  ModelParams<float> grads[2] = {base, base};
  double loss[2] = {};
  schedule::ExecuteResult result[2];
  for (int overlap = 0; overlap < 2; ++overlap) {
    pipeline::ModelStages stages(grads[overlap], cfg, s.num_stages, mbs, ctx);
    result[overlap] = schedule::execute(s, stages, pipe, {.overlap = overlap == 1, .progress_thread = true});
    loss[overlap] = stages.loss_sums().loss;
  }
  EXPECT_EQ(loss[0], loss[1]);
  for (size_t i = 0; i < base.all().size(); ++i)
    ASSERT_EQ(grads[0].all()[i].grad.data, grads[1].all()[i].grad.data) << base.all()[i].name;

  EXPECT_FALSE(result[0].overlapped);
  EXPECT_EQ(result[0].fb_switches, 0);
  EXPECT_TRUE(result[1].overlapped);
  EXPECT_GT(result[1].fb_switches, 0) << "the F&B halves never handed over at an all-to-all";
  for (const auto& r : result) {
    EXPECT_GT(r.comm[0].requests, 0);  // expert all-to-alls, through the progress engine
    EXPECT_GT(r.comm[1].requests, 0);  // pipeline sends and receives
    EXPECT_GT(r.comm_total.comm_s, 0);
    EXPECT_GE(r.comm_total.hidden_fraction(), 0.0);
    EXPECT_LE(r.comm_total.hidden_fraction(), 1.0);
  }
  if (rank == 0)
    std::printf("  rank 0: F&B switches %lld; expert comm hidden %.1f%% with overlap, %.1f%% without\n",
                static_cast<long long>(result[1].fb_switches), 100 * result[1].comm[0].hidden_fraction(),
                100 * result[0].comm[0].hidden_fraction());
  MPI_Comm_free(&pipe);
  MPI_Comm_free(&stage_group);
}
