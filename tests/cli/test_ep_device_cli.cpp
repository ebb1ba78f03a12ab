// `moelab ep --device cuda` (dispatch/combine over NCCL): without a GPU one
// line and exit 2, no results file; with one (one process, EP = 1, or under
// mpirun with a GPU per rank), the run verifies every output against the
// local reference (exit 0) and writes the same comm/ byte counts as
// --device cpu, for two_hop with FP8 dispatch and BF16 combine.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "cli/run_command.hpp"
#include "io/hdf5.hpp"
#include "kernels/device.hpp"

namespace fs = std::filesystem;
using namespace moelab;

namespace {

std::string ep_args(const std::string& out, const std::string& device) {
  return "ep --set run.steps=2 --set moe.tokens=32 --set moe.hidden=160 --set moe.experts=8 --set moe.topk=2 "
         "--set parallel.dispatch=two_hop --set parallel.dispatch_format=fp8 --set parallel.combine_format=bf16 "
         "--set bench.a2a_sizes=1024 --set bench.iters=1 --force --out " +
         out + " --device " + device;
}

fs::path temp_dir() {
  const fs::path dir = fs::temp_directory_path() / ("moelab_ep_dev_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST(EpDeviceCli, CudaWithoutGpuIsOneLineExit2) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "a GPU is present (the GPU case below runs instead)";
  const fs::path dir = temp_dir();
  // No GPU, and no such device: both bad input, before anything is written.
  for (const auto& [device, says] : {std::pair{"cuda", "--device cuda"}, std::pair{"tpu", "'tpu'"}}) {
    const CommandResult r = run_command(ep_args((dir / "o.h5").string(), device));
    EXPECT_EQ(r.status, 2) << device << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir / "o.h5"));
  fs::remove_all(dir);
}

TEST(EpDeviceCli, CudaVerifiesAndCountsAsCpu) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "skipped: no GPU";
  const fs::path dir = temp_dir();
  for (const char* device : {"cpu", "cuda"}) {  // exit 0: every output verified against the reference
    const CommandResult r = run_command(ep_args((dir / (std::string(device) + ".h5")).string(), device));
    ASSERT_EQ(r.status, 0) << device << ": " << r.err;
  }
  h5::File fc = h5::File::open_read((dir / "cpu.h5").string()), fg = h5::File::open_read((dir / "cuda.h5").string());
  for (const char* name : {"comm/dispatch_bytes_sent_intra", "comm/dispatch_bytes_sent_inter",
                           "comm/combine_bytes_sent_intra", "comm/rows_received", "comm/expert_load"})
    EXPECT_EQ(fc.read<double>(std::string("runs/ep/") + name).data, fg.read<double>(std::string("runs/ep/") + name).data)
        << name;
  fs::remove_all(dir);
}
