// The pipeline executor on 2, 4 and 8 MPI ranks (ctest runs this binary under
// mpirun -np 2, 4 and 8): for every schedule that fits the rank count, one
// step of the toy chain pipeline (chain_stages.hpp) gives the loss and every stage's
// weight gradient of a non-pipelined single-process step. Tolerance: 1e-6
// relative (float32; the pipelined run accumulates a stage's micro-batch
// gradients in its schedule's order, and DualPipe sums two copies' partial
// gradients, so only the reduction order differs). The measured events come
// back in the schedule/events form: one per op, in program order, disjoint
// on a rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "mpi_world.hpp"
#include "io/hdf5.hpp"
#include "parallel/schedule/events_h5.hpp"
#include "parallel/schedule/executor.hpp"
#include "parallel/schedule/simulate.hpp"
#include "parallel/schedule/generators.hpp"
#include "parallel/schedule/measured_durations.hpp"
#include "parallel/schedule/chain_stages.hpp"

using namespace moelab::schedule;
using moelab::test::world_rank;
using moelab::test::world_size;

namespace {

struct Outcome {
  double loss = 0;
  std::vector<std::vector<float>> grads;  // [stages][H·H], summed over ranks
  SimResult measured;                     // on rank 0
  ExecuteResult mine;
  size_t live_activations = 0;
};

Outcome run_pipelined(const Schedule& s, const ChainModel& m) {
  ChainStages stages(m, held_stages(s, world_rank()));
  Outcome out;
  out.mine = execute(s, stages, MPI_COMM_WORLD);
  out.live_activations = stages.live_activations();
  // Sum every stage's gradient over the ranks holding a copy of it.
  const size_t hh = static_cast<size_t>(m.hidden) * m.hidden;
  std::vector<float> flat(hh * m.num_stages, 0.f), sum(flat.size());
  for (const auto& [st, grad] : stages.grads()) std::copy(grad.begin(), grad.end(), flat.begin() + st * hh);
  MPI_Allreduce(flat.data(), sum.data(), static_cast<int>(flat.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  for (int st = 0; st < m.num_stages; ++st) out.grads.emplace_back(sum.begin() + st * hh, sum.begin() + (st + 1) * hh);
  double loss = stages.loss();
  MPI_Allreduce(&loss, &out.loss, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  out.measured = gather_measured(s, out.mine, MPI_COMM_WORLD);
  return out;
}

void check_against_reference(const Schedule& s, const ChainModel& m) {
  SCOPED_TRACE(s.kind + " on " + std::to_string(s.num_ranks) + " ranks, " + std::to_string(m.num_stages) +
               " stages, " + std::to_string(m.num_microbatches) + " micro-batches");
  const Outcome got = run_pipelined(s, m);
  const auto [ref_loss, ref_grads] = chain_reference(m);
  EXPECT_NEAR(got.loss, ref_loss, 1e-6 * std::abs(ref_loss));
  double max_rel = 0, ref_max = 0;
  for (int st = 0; st < m.num_stages; ++st)
    for (size_t k = 0; k < ref_grads[st].size(); ++k) ref_max = std::max(ref_max, double(std::abs(ref_grads[st][k])));
  ASSERT_GT(ref_max, 1e-6);
  for (int st = 0; st < m.num_stages; ++st)
    for (size_t k = 0; k < ref_grads[st].size(); ++k)
      max_rel = std::max(max_rel, std::abs(double(got.grads[st][k]) - ref_grads[st][k]) / ref_max);
  EXPECT_LT(max_rel, 1e-6) << "max |grad - ref| / max |ref|";
  EXPECT_EQ(got.live_activations, 0u) << "rank " << world_rank() << " kept saved activations";

  // This rank's measured events: its program, in order, disjoint.
  const auto& ev = got.mine.events;
  ASSERT_EQ(ev.size(), s.ops[world_rank()].size());
  for (size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].kind, s.ops[world_rank()][i].kind);
    EXPECT_EQ(ev[i].microbatch, s.ops[world_rank()][i].microbatch);
    EXPECT_LE(ev[i].start_s, ev[i].end_s);
    if (i) {
      EXPECT_LE(ev[i - 1].end_s, ev[i].start_s);
    }
  }
  if (world_rank() == 0) {
    EXPECT_EQ(static_cast<int64_t>(got.measured.events.size()), s.total_ops());
    EXPECT_GT(got.measured.makespan_s, 0.0);
    for (const auto& r : got.measured.ranks) {
      EXPECT_GT(r.busy_s, 0.0);
      EXPECT_GE(r.idle_s, 0.0);
    }
  }
}

}  // namespace

TEST(PipelineExecutor, OneFOneB) {
  ChainModel m;
  m.num_stages = world_size();
  for (int c : {1, 3, 2 * world_size() + 1}) {
    m.num_microbatches = c;
    check_against_reference(make_1f1b(world_size(), c), m);
  }
}

TEST(PipelineExecutor, GPipe) {
  ChainModel m;
  m.num_stages = world_size();
  m.num_microbatches = 5;
  check_against_reference(make_gpipe(world_size(), 5), m);
}

TEST(PipelineExecutor, ZeroBubbleH1) {
  ChainModel m;
  m.num_stages = world_size();
  m.num_microbatches = 2 * world_size() + 2;
  check_against_reference(make_zb1p(world_size(), m.num_microbatches), m);
}

TEST(PipelineExecutor, Interleaved1F1B) {
  ChainModel m;
  m.num_stages = 2 * world_size();
  m.num_microbatches = 2 * world_size();
  check_against_reference(make_interleaved_1f1b(world_size(), m.num_microbatches, 2), m);
}

TEST(PipelineExecutor, DualPipe) {
  if (world_size() % 2) GTEST_SKIP() << "DualPipe needs an even number of ranks";
  ChainModel m;
  m.num_stages = world_size();
  for (int c : {2 * world_size(), 2 * world_size() + 4}) {
    m.num_microbatches = c;
    check_against_reference(make_dualpipe(world_size(), c), m);
  }
}

TEST(PipelineExecutor, DualPipeV) {
  ChainModel m;
  m.num_stages = 2 * world_size();
  for (int c : {2 * world_size(), 2 * world_size() + 3}) {
    m.num_microbatches = c;
    check_against_reference(make_dualpipev(world_size(), c), m);
  }
}

// The measured timeline goes to HDF5 exactly like the simulated one, and the
// run can be re-simulated with its own mean op durations (sim vs measured).
TEST(PipelineExecutor, MeasuredEventsInResultsFormat) {
  ChainModel m;
  m.num_stages = 2 * world_size();
  m.num_microbatches = 2 * world_size();
  const Schedule s = make_dualpipev(world_size(), m.num_microbatches);
  const Outcome got = run_pipelined(s, m);
  if (world_rank() != 0) return;
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("moelab_executor_" + std::to_string(::getpid()) + ".h5")).string();
  {
    moelab::h5::File f = moelab::h5::File::create(path, true);
    moelab::h5::Group run = f.group("runs/measured");
    write_schedule_group(run, s, got.measured, "measured");
  }
  moelab::h5::File f = moelab::h5::File::open_read(path);
  moelab::h5::Group g = f.open_group("runs/measured/schedule");
  EXPECT_EQ(g.attr_string("source"), "measured");
  EXPECT_EQ(g.dataset_shape("events/op"), (moelab::Shape{s.total_ops()}));
  EXPECT_EQ(g.attr_double("makespan_s"), got.measured.makespan_s);
  const Durations d = mean_durations(got.measured);
  const SimResult predicted = simulate(s, d);
  EXPECT_GT(predicted.makespan_s, 0.0);
  std::printf("  chain DualPipeV on %d ranks: measured makespan %.1f us, simulated with measured mean durations "
              "(F %.2f B %.2f W %.2f F&B %.2f us, p2p 0) %.1f us\n",
              world_size(), 1e6 * got.measured.makespan_s, 1e6 * d.f_s, 1e6 * d.b_s, 1e6 * d.w_s, 1e6 * d.fb_s,
              1e6 * predicted.makespan_s);
  std::filesystem::remove(path);
}

TEST(ScheduleDurations, MeanDurationsRecoverTheSimulatedOnes) {
  const Durations d{1.25, 2.5, 0.75, 3.0, 0.1};
  const Durations got = mean_durations(simulate(make_dualpipe(4, 12), d));
  EXPECT_DOUBLE_EQ(got.f_s, d.f_s);
  EXPECT_DOUBLE_EQ(got.b_s, d.b_s);
  EXPECT_DOUBLE_EQ(got.w_s, d.w_s);
  EXPECT_DOUBLE_EQ(got.fb_s, d.fb_s);
  const Durations zb = mean_durations(simulate(make_zb1p(4, 8), d));  // no full B: B = B_input + W
  EXPECT_NEAR(zb.b_s, d.b_s, 1e-12);
  const Durations plain = mean_durations(simulate(make_1f1b(4, 8), d));  // nothing split, nothing overlapped
  EXPECT_DOUBLE_EQ(plain.b_s, d.b_s);
  EXPECT_EQ(plain.w_s, 0.0);
  EXPECT_DOUBLE_EQ(plain.fb_s, d.f_s + d.b_s);
}

TEST(PipelineExecutor, RejectsWrongRankCount) {
  EXPECT_THROW(execute(make_1f1b(world_size() + 1, 4), *std::make_unique<ChainStages>(ChainModel{}, std::vector<int>{}),
                       MPI_COMM_WORLD),
               moelab::Error);
}
