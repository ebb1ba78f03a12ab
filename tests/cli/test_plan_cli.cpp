// moelab plan as a user meets it: the printed breakdown, the HDF5 plan/ and
// schedule/events groups, sweep tables, one-line errors with exit status 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include "cli/run_command.hpp"
#include "io/hdf5.hpp"

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("moelab_plan_" + std::to_string(getpid()) + "_" + name)).string();
}

void expect_one_line_error(const CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

}  // namespace

TEST(PlanCli, PaperLayoutPrintsBreakdownAndWritesResults) {
  const std::string out = temp_path("plan.h5");
  const CommandResult r = run_command("plan --price-per-gpu-hour 2 --out " + out + " --force");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* needle : {"step time", "exposed EP comm", "PP bubble", "DP sync", "tokens/s per GPU", "MFU",
                             "GPU-hours", "$", "memory per GPU", "fits"})
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << " in:\n" << r.out;
  moelab::h5::File f = moelab::h5::File::open_read(out);
  moelab::h5::Group plan = f.open_group("runs/plan/plan");
  EXPECT_GT(plan.attr_double("tokens_per_s_per_gpu"), 0);
  EXPECT_DOUBLE_EQ(plan.attr_double("paper_gpu_hours_per_trillion_tokens"), 180e3);
  EXPECT_FALSE(plan.open_group("hardware").attr_string("peak_fp8_tflops_source").empty());
  EXPECT_FALSE(plan.open_group("calibration").attr_string("attention_source").empty());
  EXPECT_EQ(plan.open_group("memory").attr_int("fits"), 1);
  EXPECT_TRUE(f.open_group("runs/plan").has("schedule/events/start_s"));
  EXPECT_EQ(f.open_group("runs/plan").attr_string("status"), "complete");
  std::filesystem::remove(out);
}

TEST(PlanCli, SweepRanksFeasibleLayouts) {
  const std::string out = temp_path("sweep.h5");
  const CommandResult r =
      run_command("plan --sweep pp=8,16 ep=48,64 schedule=1f1b,dualpipe --out " + out + " --force");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("8 layouts priced"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("infeasible: --ep (48)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("   1  "), std::string::npos) << r.out;  // a rank-1 row
  moelab::h5::File f = moelab::h5::File::open_read(out);
  EXPECT_EQ(f.open_group("runs/sweep/plan").dataset_shape("gpu_hours"), (moelab::Shape{8}));
  std::filesystem::remove(out);
}

TEST(PlanCli, BadInputIsOneLineAndStatus2) {
  expect_one_line_error(run_command("plan --ep 48"), "--ep (48)");
  expect_one_line_error(run_command("plan --hardware tpu-v9"), "unknown hardware 'tpu-v9'");
  expect_one_line_error(run_command("plan --tokens lots"), "--tokens 'lots'");
  expect_one_line_error(run_command("plan --schedule dualpipe --gpus 512 --pp 8 --global-batch 512"), "dualpipe");
  const CommandResult help = run_command("plan --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--sweep"), std::string::npos);
  const CommandResult list = run_command("plan --list-hardware");
  EXPECT_EQ(list.status, 0);
  EXPECT_NE(list.out.find("b200"), std::string::npos);
  EXPECT_NE(list.out.find("cpu-local"), std::string::npos);
}
