// `moelab bench --device cuda` (issue 10): the GPU suites hold the GPU
// micro-benchmarks and a training run on the GPU (checked here, on the table);
// without a GPU the command is one line and exit 2; with one, --list names them.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "bench/suite.hpp"
#include "cli/run_command.hpp"
#include "kernels/device.hpp"

using namespace moelab;

TEST(BenchDeviceSuite, CudaSuitesHoldTheGpuEntries) {
  for (const char* suite : {"cuda-quick", "cuda-full"}) {
    std::set<std::string> names;
    for (const auto& e : bench::suite_table()) {
      if (!bench::entry_in_suite(e, suite)) continue;
      names.insert(e.name);
      if (e.kind == bench::EntryKind::e2e) {
        EXPECT_NE(std::string(e.args).find("--device cuda"), std::string::npos) << e.name;
      }
      if (e.kind == bench::EntryKind::micro) {
        EXPECT_NE(std::string(e.program).find("_gpu"), std::string::npos) << e.name;
      }
    }
    EXPECT_EQ(names, (std::set<std::string>{"kernels_gpu", "experts_gpu", "train_v3_tiny_cuda"})) << suite;
  }
}

TEST(BenchDeviceCli, CudaWithoutGpuIsOneLineExit2) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "a GPU is present (the GPU case below runs instead)";
  const CommandResult r = run_command("bench --device cuda --list");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--device cuda"), std::string::npos) << r.err;
}

TEST(BenchDeviceCli, CudaListsTheGpuSuite) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "skipped: no GPU";
  const CommandResult r = run_command("bench --device cuda --list");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* name : {"kernels_gpu", "experts_gpu", "train_v3_tiny_cuda"})
    EXPECT_NE(r.out.find(name), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("gemm_fp32"), std::string::npos) << r.out;  // no CPU entries
  const CommandResult bad = run_command("bench --device cuda --suite probe --list");
  EXPECT_EQ(bad.status, 2) << bad.err;
}
