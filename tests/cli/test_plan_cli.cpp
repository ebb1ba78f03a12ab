// moelab plan as a user meets it: the printed breakdown, the HDF5 plan/ and
// schedule/events groups, sweep tables, one-line errors with exit status 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

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

TEST(PlanCli, RoutingTracePricesMeasuredImbalance) {
  // A trace of 16 experts, 4 of them twice as loaded: at the plan's 4 experts
  // per GPU the busiest GPU does 1.6x the mean routed-expert work.
  const std::string trace = temp_path("trace.h5");
  {
    moelab::h5::File f = moelab::h5::File::create(trace, true);
    std::vector<float> loads(3 * 2 * 16, 5.0f);
    for (int r = 0; r < 6; ++r)
      for (int e = 0; e < 4; ++e) loads[r * 16 + e] = 10.0f;
    f.group("runs/t/load").write<float>("expert_tokens", {3, 2, 16}, loads.data());
  }
  const CommandResult r = run_command("plan --routing-trace " + trace);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("busiest EP GPU: x1.600"), std::string::npos) << r.out;
  expect_one_line_error(run_command("plan --routing-trace " + trace + " --expert-imbalance 1.2"), "not both");
  expect_one_line_error(run_command("plan --routing-trace " + trace + ":nope"), "no dataset 'nope'");
  std::filesystem::remove(trace);
}

TEST(PlanCli, CpuLocalPredictionAgainstMeasuredTraining) {
  // The plan-vs-measured check on this machine: `moelab plan` for v3-small
  // on one cpu-local "GPU" (batch 8 x 128 tokens) against the step time of
  // the same run measured by `moelab train` (mean of steps 2..3; step 1
  // allocates). README reports the figures (-42% to +26% seen).
  // LOOSE BAND (1/5x .. 5x): the machine's 2 cores are shared by up to 8 jobs
  // (load averages of 14-23 were seen; once under a parallel build the
  // measured step was more than 3x the usual), and cpu-local's sgemm rate was
  // measured under another moment's load; the check catches a broken work
  // model or unit (a factor of 10 or more), not a percent.
  const std::string train_out = temp_path("train.h5");
  const CommandResult t = run_command(
      "train --data.corpus " MOELAB_SOURCE_DIR "/tests/fixtures/corpus_sample.h5 --train.steps 3 "
      "--train.eval_every 100 --output.out " + train_out + " --output.force true");
  ASSERT_EQ(t.status, 0) << t.err;
  moelab::h5::File f = moelab::h5::File::open_read(train_out);
  const auto step_s = f.read<double>("runs/train/train/step_time_s");
  ASSERT_EQ(step_s.numel(), 3);
  const double measured_s = 0.5 * (step_s.data[1] + step_s.data[2]);
  const CommandResult p = run_command(
      "plan --model v3-small --hardware cpu-local --gpus 1 --pp 1 --ep 1 --schedule 1f1b --seq-len 128 "
      "--global-batch 8 --micro-batch 8 --tokens 1M");
  ASSERT_EQ(p.status, 0) << p.err;
  const auto at = p.out.find("step time");
  ASSERT_NE(at, std::string::npos) << p.out;
  const double predicted_s = std::stod(p.out.substr(at + 9));
  const double ratio = predicted_s / measured_s;
  std::printf("cpu-local v3-small step: predicted %.3f s, measured %.3f s (%+.0f%%)\n", predicted_s, measured_s,
              100.0 * (ratio - 1.0));
  EXPECT_GT(ratio, 1.0 / 5.0);
  EXPECT_LT(ratio, 5.0);
  std::filesystem::remove(train_out);
}
