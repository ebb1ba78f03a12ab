#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "io/hdf5.hpp"
#include "io/results.hpp"

using namespace moelab;

namespace {

std::string temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("moelab_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

}  // namespace

TEST(Results, RoundTripAttributesSeriesAndDatasets) {
  const std::string path = temp_path("roundtrip.h5");
  std::filesystem::remove(path);
  {
    auto results = ResultsFile::create(path, false, "moelab test --x 1", 4);
    ResultsRun run = results->new_run("run_000", {{"parallel.ep", "4"}, {"train.lr", "0.00022"}, {"model", "v3-tiny"}});
    for (int step = 0; step < 100; ++step) {
      run.append("train/step", step);
      run.append("train/loss", 5.0 - 0.01 * step);
      const float load[3] = {float(step), float(2 * step), float(3 * step)};
      run.append_row<float>("load/expert_tokens", {3}, load);
    }
    Tensor<int32_t> idx({2, 2}, std::vector<int32_t>{1, 2, 3, 4});
    run.group().write("layers/3/topk_idx", idx);
    run.complete();
  }
  h5::File f = h5::File::open_read(path);
  EXPECT_EQ(f.attr_int("mpi_world_size"), 4);
  EXPECT_EQ(f.attr_string("command_line"), "moelab test --x 1");
  EXPECT_FALSE(f.attr_string("git_commit").empty());
  EXPECT_FALSE(f.attr_string("created_utc").empty());
  h5::Group run = f.open_group("runs/run_000");
  EXPECT_EQ(run.attr_string("status"), "complete");
  EXPECT_EQ(run.attr_int("parallel.ep"), 4);  // numbers stored as numbers
  EXPECT_DOUBLE_EQ(run.attr_double("train.lr"), 0.00022);
  EXPECT_EQ(run.attr_string("model"), "v3-tiny");
  Tensor<double> loss = run.read<double>("train/loss");
  ASSERT_EQ(loss.shape, (Shape{100}));
  EXPECT_DOUBLE_EQ(loss[99], 5.0 - 0.99);
  Tensor<float> load = run.read<float>("load/expert_tokens");
  ASSERT_EQ(load.shape, (Shape{100, 3}));
  EXPECT_EQ(load[99 * 3 + 2], 297.0f);
  Tensor<int32_t> idx = run.read<int32_t>("layers/3/topk_idx");
  EXPECT_EQ(idx.data, (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(run.dataset_type_name("layers/3/topk_idx"), "int32");
}

TEST(Results, RefusesToOverwriteWithoutForce) {
  const std::string path = temp_path("exists.h5");
  std::filesystem::remove(path);
  ResultsFile::create(path, false, "x", 1);
  try {
    ResultsFile::create(path, false, "x", 1);
    FAIL() << "overwrote an existing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exists (pass --force"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(ResultsFile::create(path, true, "x", 1));
}

TEST(Results, UnwritablePathIsOneClearError) {
  try {
    ResultsFile::create("/nonexistent_dir/x.h5", false, "x", 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}

TEST(Results, RunUnwoundByAnErrorIsMarkedFailed) {
  const std::string path = temp_path("failed.h5");
  std::filesystem::remove(path);
  auto results = ResultsFile::create(path, false, "x", 1);
  try {
    ResultsRun run = results->new_run("r", {});
    run.append("train/loss", 1.0);
    MOE_FAIL() << "boom";
  } catch (const Error&) {
  }
  EXPECT_EQ(results->file().open_group("runs/r").attr_string("status"), "failed: ended by an error before completing");
}

// A process killed with SIGKILL after a flush leaves a readable file with
// the data up to the flush and status "running" (not complete).
TEST(Results, KilledProcessLeavesReadableFileUpToLastFlush) {
  const std::string path = temp_path("killed.h5");
  std::filesystem::remove(path);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto results = ResultsFile::create(path, false, "killed", 1);
    ResultsRun run = results->new_run("run_000", {{"steps", "1000"}});
    for (int step = 0; step < 40; ++step) {
      run.append("train/loss", 10.0 - step);
      const int32_t row[2] = {step, -step};
      run.append_row<int32_t>("load/expert_tokens", {2}, row);
      if (step == 29) run.flush();
    }
    kill(getpid(), SIGKILL);  // no close, no destructor
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  h5::File f = h5::File::open_read(path);
  h5::Group run = f.open_group("runs/run_000");
  EXPECT_EQ(run.attr_string("status"), "running");
  Tensor<double> loss = run.read<double>("train/loss");
  ASSERT_GE(loss.numel(), 30);  // everything up to the flush survives
  for (int64_t i = 0; i < loss.numel(); ++i) EXPECT_EQ(loss[i], 10.0 - i);
  Tensor<int32_t> load = run.read<int32_t>("load/expert_tokens");
  EXPECT_EQ(load.dim(0), loss.dim(0));
}

TEST(Hdf5, ReadingMissingThingsNamesThem) {
  const std::string path = temp_path("missing.h5");
  std::filesystem::remove(path);
  { ResultsFile::create(path, false, "x", 1); }
  h5::File f = h5::File::open_read(path);
  try {
    f.read<float>("hidden");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.h5:/hidden: no such dataset"), std::string::npos) << e.what();
  }
  EXPECT_THROW(h5::File::open_read(temp_path("nope.h5")), Error);
  const std::string not_h5 = temp_path("text.h5");
  { std::ofstream(not_h5) << "hello"; }
  try {
    h5::File::open_read(not_h5);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an HDF5 file"), std::string::npos) << e.what();
  }
}
