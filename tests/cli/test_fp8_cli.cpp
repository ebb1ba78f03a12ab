// moelab fp8 as a user meets it: the HDF5 it writes (codes, scales, c,
// c_exact, the error-curve table) and one-line errors with exit status 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>

#include "cli/run_command.hpp"
#include "core/rng.hpp"
#include "io/hdf5.hpp"

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("moelab_fp8_" + std::to_string(getpid()) + "_" + name)).string();
}

// IN.h5 with a [M,K], w [N,K] and x [R,C] float32.
std::string make_input(int64_t m, int64_t n, int64_t k) {
  const std::string path = temp_path("in.h5");
  std::filesystem::remove(path);
  moelab::h5::File f = moelab::h5::File::create(path, true);
  moelab::Rng rng(3);
  std::vector<float> a(m * k), w(n * k);
  for (float& v : a) v = static_cast<float>(rng.normal());
  for (float& v : w) v = static_cast<float>(0.02 * rng.normal());
  f.write<float>("a", {m, k}, a.data());
  f.write<float>("w", {n, k}, w.data());
  f.write<float>("x", {m, k}, a.data());
  return path;
}

void expect_one_line_error(const CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

TEST(Fp8Cli, QuantizeWritesCodesScalesAndStatistics) {
  const std::string in = make_input(3, 2, 300), out = temp_path("q.h5");
  const CommandResult r = run_command("fp8 quantize --force --input " + in + " --dataset x --granularity 1x128 --out " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  moelab::h5::File f = moelab::h5::File::open_read(out);
  moelab::h5::Group g = f.open_group("runs/quantize/fp8");
  EXPECT_EQ(g.dataset_shape("codes"), (moelab::Shape{3, 300}));
  EXPECT_EQ(g.dataset_type_name("codes"), "uint8");
  EXPECT_EQ(g.dataset_shape("scales"), (moelab::Shape{3, 3}));
  EXPECT_EQ(g.attr_int("numel"), 900);
  EXPECT_GT(g.attr_double("mse"), 0.0);
  EXPECT_EQ(g.attr_string("granularity"), "1x128");
}

TEST(Fp8Cli, GemmWritesEmulatedAndExactProducts) {
  const std::string in = make_input(8, 20, 256), out = temp_path("g.h5");
  const CommandResult r = run_command("fp8 gemm --force --input " + in + " --out " + out + " --acc-bits 13 --promote 128");
  ASSERT_EQ(r.status, 0) << r.err;
  moelab::h5::File f = moelab::h5::File::open_read(out);
  moelab::h5::Group g = f.open_group("runs/gemm/fp8");
  const auto c = g.read<double>("c"), c_exact = g.read<double>("c_exact");
  ASSERT_EQ(c.shape, (moelab::Shape{8, 20}));
  EXPECT_EQ(g.dataset_type_name("c_exact"), "float64");
  double err = 0, ref = 0;
  for (int64_t i = 0; i < c.numel(); ++i) err += std::pow(c[i] - c_exact[i], 2), ref += std::pow(c_exact[i], 2);
  EXPECT_NEAR(g.attr_double("normwise"), std::sqrt(err / ref), 1e-9);
  EXPECT_GT(g.attr_double("normwise"), 0.0);
  EXPECT_LT(g.attr_double("normwise"), 1e-3);
}

TEST(Fp8Cli, ErrcurveWritesOneRowPerSetting) {
  const std::string out = temp_path("e.h5");
  const CommandResult r = run_command("fp8 errcurve --force --k 64,256 --acc-bits 13,fp32 --promote 0,128 "
                                      "--trials 1 --m 16 --n 16 --out " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("normwise"), std::string::npos) << r.out;
  moelab::h5::File f = moelab::h5::File::open_read(out);
  moelab::h5::Group g = f.open_group("runs/errcurve/fp8/errcurve");
  const auto k = g.read<int64_t>("k"), bits = g.read<int64_t>("acc_bits");
  ASSERT_EQ(k.numel(), 8);
  EXPECT_EQ(k[0], 64);
  EXPECT_EQ(k[7], 256);
  EXPECT_EQ(bits[2], -1);  // fp32
}

// --device cuda: where a GPU is present the result equals the CPU emulation
// bit for bit; where none is, one line and exit 2 (never a CPU fallback).
TEST(Fp8Cli, GemmOnCudaEqualsCpuOrSaysNoGpu) {
  const std::string in = make_input(8, 20, 256), cpu_out = temp_path("gc.h5"), gpu_out = temp_path("gg.h5");
  ASSERT_EQ(run_command("fp8 gemm --force --input " + in + " --out " + cpu_out).status, 0);
  const CommandResult r = run_command("fp8 gemm --force --device cuda --input " + in + " --out " + gpu_out);
  if (r.status != 0) {
    expect_one_line_error(r, "--device cuda");
    return;
  }
  const auto c_cpu = moelab::h5::File::open_read(cpu_out).open_group("runs/gemm/fp8").read<float>("c");
  const auto c_gpu = moelab::h5::File::open_read(gpu_out).open_group("runs/gemm/fp8").read<float>("c");
  for (int64_t i = 0; i < c_cpu.numel(); ++i) ASSERT_EQ(c_cpu[i], c_gpu[i]) << "element " << i;
}

TEST(Fp8Cli, BadInputIsOneLineAndExitTwo) {
  const std::string in = make_input(4, 4, 64);
  expect_one_line_error(run_command("fp8 quantize --input " + in + " --dataset nope --out " + temp_path("x.h5")),
                        "no dataset 'nope'");
  expect_one_line_error(run_command("fp8 quantize --input " + in + " --dataset x --granularity 64x64 --out " +
                                    temp_path("x.h5")),
                        "granularity");
  expect_one_line_error(run_command("fp8 gemm --input " + in + " --out " + temp_path("x.h5") + " --promote 0"),
                        "promote");
  expect_one_line_error(run_command("fp8 gemm --input " + in + " --out " + temp_path("x.h5") + " --acc-bits 30"),
                        "acc-bits");
  expect_one_line_error(run_command("fp8 errcurve --k 256,abc"), "--k");
  expect_one_line_error(run_command("fp8 gemm --input " + in + " --out " + temp_path("x.h5") + " --device tpu"),
                        "--device");
  expect_one_line_error(run_command("fp8 frobnicate"), "unknown subcommand");
}

}  // namespace
