// moelab schedule as a user meets it: the report, the schedule/ group it
// writes (events table and per-rank figures), the Gantt PNG, and one-line
// errors with exit status 2 for broken constraints.
#include <gtest/gtest.h>
#include <unistd.h>

#include "cli/run_command.hpp"
#include "io/hdf5.hpp"

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("moelab_schedule_" + std::to_string(getpid()) + "_" + name))
      .string();
}

void expect_one_line_error(const CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

}  // namespace

TEST(ScheduleCli, DualPipeReportAndEventsTable) {
  const std::string out = temp_path("dp.h5");
  const CommandResult r = run_command("schedule --kind dualpipe --pp 8 --microbatches 20 --f 1 --b 2 --w 1 --fb 3 "
                                      "--p2p 0 --force --out " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("makespan 66.0000; idle per rank 6.0000 .. 6.0000; Table 2 bubble (PP/2-1)(F&B+B-3W) = 6.0000"),
            std::string::npos)
      << r.out;
  moelab::h5::File f = moelab::h5::File::open_read(out);
  moelab::h5::Group g = f.open_group("runs/schedule/schedule");
  EXPECT_EQ(g.attr_string("kind"), "dualpipe");
  EXPECT_EQ(g.attr_string("source"), "simulated");
  EXPECT_EQ(g.attr_double("makespan_s"), 66.0);
  EXPECT_EQ(g.attr_double("table2_bubble_s"), 6.0);
  // Rank 0 runs 38 ops, rank 1 36, 2 34, 3 33, symmetric: 282 events.
  const auto rank = g.read<int32_t>("events/rank");
  const auto op = g.read<int32_t>("events/op");
  const auto start = g.read<double>("events/start_s"), end = g.read<double>("events/end_s");
  ASSERT_EQ(rank.numel(), 282);
  ASSERT_EQ(g.dataset_shape("events/b_microbatch"), (moelab::Shape{282}));
  EXPECT_EQ(rank.ptr()[0], 0);
  EXPECT_EQ(op.ptr()[0], 0);  // F
  EXPECT_EQ(start.ptr()[0], 0.0);
  EXPECT_EQ(end.ptr()[0], 1.0);
  const auto idle = g.read<double>("ranks/idle_s");
  const auto peak = g.read<int64_t>("ranks/peak_activations");
  const auto params = g.read<int64_t>("ranks/param_copies");
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(idle.ptr()[i], 6.0);
    EXPECT_EQ(peak.ptr()[i], 9);  // PP + 1
    EXPECT_EQ(params.ptr()[i], 2);
  }
  EXPECT_EQ(f.open_group("runs/schedule").attr_string("status"), "complete");
}

TEST(ScheduleCli, SweepWritesOneRunPerKind) {
  const std::string out = temp_path("sweep.h5");
  const CommandResult r =
      run_command("schedule --sweep kind:1f1b,zb1p,dualpipe --pp 4 --microbatches 8 --force --out " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  moelab::h5::File f = moelab::h5::File::open_read(out);
  EXPECT_EQ(f.open_group("runs").children(), (std::vector<std::string>{"kind=1f1b", "kind=zb1p", "kind=dualpipe"}));
  EXPECT_EQ(f.open_group("runs/kind=1f1b/schedule").attr_double("makespan_s"), 33.0);  // (8+3)·3
  EXPECT_EQ(f.open_group("runs/kind=zb1p/schedule").attr_double("makespan_s"), 27.0);  // 8·3 + (4-1)(1+2-2)
}

TEST(ScheduleCli, PngGanttChart) {
  const std::string png = temp_path("gantt.png");
  std::filesystem::remove(png);
  const CommandResult r = run_command("schedule --kind dualpipev --pp 4 --microbatches 10 --png " + png);
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_TRUE(std::filesystem::exists(png));
  EXPECT_GT(std::filesystem::file_size(png), 10000u);
  std::ifstream in(png, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
}

TEST(ScheduleCli, ConstraintErrorsAreOneLine) {
  expect_one_line_error(run_command("schedule --kind dualpipe --pp 7 --microbatches 20"), "PP (7) must be even");
  expect_one_line_error(run_command("schedule --kind dualpipe --pp 8 --microbatches 10"),
                        "micro-batches (10) must be >= 2·PP (16)");
  expect_one_line_error(run_command("schedule --kind dualpipe --pp 4 --microbatches 9"),
                        "micro-batches (9) must be even");
  expect_one_line_error(run_command("schedule --kind pipedream --pp 4"), "unknown schedule kind 'pipedream'");
  expect_one_line_error(run_command("schedule --kind 1f1b --w 3 --b 2"), "W (3) is part of the full backward B (2)");
  const CommandResult help = run_command("schedule --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--microbatches"), std::string::npos);
}

// --execute on the single rank of a plain run: the executor, the gradient
// check against the non-pipelined step and the measured/predicted runs (the
// MPI case runs under mpirun in ctest's mpi_schedule_execute).
TEST(ScheduleCli, ExecuteOnOneRank) {
  const std::string out = temp_path("exec.h5");
  const CommandResult r = run_command("schedule --kind 1f1b --pp 1 --microbatches 4 --execute --hidden 16 --tokens 4 "
                                      "--force --out " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("gradient check against a non-pipelined step"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("makespan measured"), std::string::npos) << r.out;
  moelab::h5::File f = moelab::h5::File::open_read(out);
  EXPECT_EQ(f.open_group("runs").children(),
            (std::vector<std::string>{"schedule", "schedule_measured", "schedule_predicted"}));
  EXPECT_EQ(f.open_group("runs/schedule_measured/schedule").attr_string("source"), "measured");
  EXPECT_EQ(f.open_group("runs/schedule_measured/schedule").dataset_shape("events/op"), (moelab::Shape{8}));
  expect_one_line_error(run_command("schedule --kind 1f1b --pp 2 --microbatches 4 --execute"),
                        "needs 2 MPI ranks (--pp), the job has 1");
}
