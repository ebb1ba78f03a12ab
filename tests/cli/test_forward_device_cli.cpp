// `moelab forward --device cuda`: without a GPU one line and exit 2 (never a
// silent CPU fallback); with one, the same layers as --device cpu (routing
// exactly, outputs to FP32 GEMM tolerance), the routed experts having run on
// the GPU.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "cli/run_command.hpp"
#include "io/hdf5.hpp"
#include "kernels/device.hpp"

namespace fs = std::filesystem;
using namespace moelab;

namespace {

const std::string kCases = std::string(MOELAB_TEST_FIXTURES) + "/layer_cases/f32/";

std::string forward_args(const std::string& out, const std::string& device) {
  return "forward --model " + kCases + "config.json --weights " + kCases + "model.safetensors --input " + kCases +
         "input.h5 --out " + out + " --layers 4 --force --device " + device;
}

}  // namespace

TEST(ForwardDeviceCli, CudaWithoutGpuIsOneLineExit2) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "a GPU is present (the GPU case below runs instead)";
  const fs::path dir = fs::temp_directory_path() / ("moelab_fwd_dev_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const CommandResult r = run_command(forward_args((dir / "o.h5").string(), "cuda"));
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--device cuda"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "o.h5"));
  fs::remove_all(dir);
}

TEST(ForwardDeviceCli, CudaMatchesCpu) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "skipped: no GPU";
  const fs::path dir = fs::temp_directory_path() / ("moelab_fwd_dev_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string out_cpu = (dir / "cpu.h5").string(), out_gpu = (dir / "gpu.h5").string();
  const CommandResult a = run_command(forward_args(out_cpu, "cpu"));
  ASSERT_EQ(a.status, 0) << a.err;
  const CommandResult b = run_command(forward_args(out_gpu, "cuda"));
  ASSERT_EQ(b.status, 0) << b.err;
  h5::File fc = h5::File::open_read(out_cpu), fg = h5::File::open_read(out_gpu);
  EXPECT_EQ(fc.read<int32_t>("layers/4/topk_idx").data, fg.read<int32_t>("layers/4/topk_idx").data);
  const auto yc = fc.read<float>("layers/4/output"), yg = fg.read<float>("layers/4/output");
  ASSERT_EQ(yc.data.size(), yg.data.size());
  double worst = 0;
  for (size_t i = 0; i < yc.data.size(); ++i)
    worst = std::max(worst, std::abs(double(yg.data[i]) - yc.data[i]) / (std::abs(double(yc.data[i])) + 1e-2));
  EXPECT_LT(worst, 1e-4);
  fs::remove_all(dir);
}
