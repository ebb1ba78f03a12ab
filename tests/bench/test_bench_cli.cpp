// moelab bench and moelab compare as a user runs them, on the probe suite (a
// benchmark that sleeps 2 ms, MOELAB_PROBE_SLOWDOWN times longer): a rerun of
// the same build passes, a synthetic 20% slowdown fails with exit status 1,
// the bench file opens in h5py and `moelab show`, Google Benchmark JSON is
// accepted, a one-ULP loss change is reported with its step.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "bench/figures.hpp"
#include "cli/run_command.hpp"
#include "io/hdf5.hpp"

namespace fs = std::filesystem;
using namespace moelab;

namespace {

std::string tmp(const std::string& name) {
  return (fs::temp_directory_path() / ("moelab_bench_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string probe_bench(const std::string& out, const std::string& env = "") {
  return env + " " + std::string(MOELAB_BINARY) + " bench --suite probe --bench-dir " + MOELAB_PROBE_DIR +
         " --repetitions 10 --min-time 0.01 --force --out " + out;
}

class BenchCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    base_ = tmp("base.h5");
    const std::string cmd = probe_bench(base_) + " --keep-logs >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() {
    fs::remove(base_);
    fs::remove_all(base_ + ".work");
  }
  static std::string base_;
};
std::string BenchCli::base_;

}  // namespace

TEST_F(BenchCli, WritesFiguresWithProvenance) {
  const bench::FigureSet set = bench::load_figures(base_);
  const bench::Figure* t = set.find("BM_probe_spin/steps:1000000", "cpu_time");
  ASSERT_TRUE(t) << "figures: " << set.figures.size();
  EXPECT_EQ(t->samples.size(), 10u);
  EXPECT_EQ(t->unit, "ms");
  for (double v : t->samples) EXPECT_GT(v, 0.0);
  for (const char* key : {"commit", "host", "cpu_model", "core_count", "build_type", "compiler", "openblas", "hdf5",
                          "boost", "mpi", "benchmark_library"})
    EXPECT_TRUE(set.provenance.count(key)) << key;
}

TEST_F(BenchCli, OpensInShowAndH5py) {
  const auto show = run_command("show " + base_);
  EXPECT_EQ(show.status, 0) << show.err;
  EXPECT_NE(show.out.find("run probe: complete"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("BM_probe_spin"), std::string::npos) << show.out;
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  const std::string py = "/usr/bin/python3 -c \"import h5py; f = h5py.File('" + base_ +
                         "', 'r'); b = f['runs/probe/bench']; "
                         "names = [g.attrs['name'] for g in b.values()]; "
                         "assert any('BM_probe_spin' in str(n) for n in names), names; "
                         "assert all(len(g['samples']) == 10 for g in b.values()); "
                         "print(b.attrs['commit'])\" >/dev/null 2>&1";
  const int rc = std::system(("/usr/bin/python3 -c 'import h5py' 2>/dev/null") );
  if (rc != 0) GTEST_SKIP() << "h5py not installed";
  EXPECT_EQ(std::system(py.c_str()), 0) << py;
}

TEST_F(BenchCli, RerunPassesAndTwentyPercentSlowdownFails) {
  const std::string rerun = tmp("rerun.h5"), slow = tmp("slow.h5"), json = tmp("cmp.json"), cmp = tmp("cmp.h5");
  ASSERT_EQ(std::system((probe_bench(rerun) + " >/dev/null 2>&1").c_str()), 0);
  ASSERT_EQ(std::system((probe_bench(slow, "MOELAB_PROBE_SLOWDOWN=1.2") + " >/dev/null 2>&1").c_str()), 0);

  const auto same = run_command("compare " + base_ + " " + rerun + " --metric cpu_time");
  EXPECT_EQ(same.status, 0) << same.out << same.err;
  EXPECT_NE(same.out.find("PASS"), std::string::npos) << same.out;

  const auto worse = run_command("compare " + base_ + " " + slow + " --metric cpu_time,steps/s --json " + json + " --out " + cmp + " --force");
  EXPECT_EQ(worse.status, 1) << worse.out << worse.err;
  EXPECT_NE(worse.out.find("REGRESSION"), std::string::npos) << worse.out;
  EXPECT_NE(worse.out.find("FAIL"), std::string::npos);
  EXPECT_NE(read_file_text(json).find("\"verdict\": \"REGRESSION\""), std::string::npos);
  {
    h5::File f = h5::File::open_read(cmp);
    EXPECT_EQ(f.open_group("runs/compare/compare").attr_int("failed"), 1);
  }
  // The rate counter falls by the same amount.
  EXPECT_NE(worse.out.find("steps/s"), std::string::npos);

  // Google Benchmark JSON on either side (the base run kept its JSON).
  const std::string gbench = base_ + ".work/probe.json";
  ASSERT_TRUE(fs::exists(gbench));
  const auto from_json = run_command("compare " + gbench + " " + slow + " --metric cpu_time");
  EXPECT_EQ(from_json.status, 1) << from_json.out << from_json.err;
  const auto json_vs_h5 = run_command("compare " + gbench + " " + base_ + " --metric cpu_time");
  EXPECT_EQ(json_vs_h5.status, 0) << json_vs_h5.out << json_vs_h5.err;
  for (const auto& p : {rerun, slow, json, cmp}) fs::remove(p);
}

TEST(CompareCli, OneUlpLossChangeNamesItsStep) {
  const std::string a = tmp("loss_a.h5"), b = tmp("loss_b.h5");
  std::vector<double> loss(12), steps(12);
  for (int i = 0; i < 12; ++i) loss[i] = 11.0 - 0.25 * i + 1e-3 * i * i, steps[i] = i + 1;
  for (const auto& [path, bump] : {std::pair{a, false}, std::pair{b, true}}) {
    bench::FigureSet set;
    set.figures = {bench::Figure{"e2e/train_v3_tiny", "train/loss", "", bench::Direction::exact, loss, steps}};
    if (bump) set.figures[0].samples[4] = std::nextafter(loss[4], 0.0);
    h5::File f = h5::File::create(path, true);
    h5::Group g = f.group("runs/quick/bench");
    bench::write_figures(g, set);
  }
  const auto same = run_command("compare " + a + " " + a);
  EXPECT_EQ(same.status, 0) << same.out << same.err;
  const auto moved = run_command("compare " + a + " " + b);
  EXPECT_EQ(moved.status, 1) << moved.out << moved.err;
  EXPECT_NE(moved.out.find("DIFFERS"), std::string::npos) << moved.out;
  EXPECT_NE(moved.out.find("first difference at step 5"), std::string::npos) << moved.out;
  EXPECT_NE(moved.out.find("1 ulp double"), std::string::npos) << moved.out;
  fs::remove(a);
  fs::remove(b);
}

TEST(CompareCli, BadInputIsOneLineAndStatus2) {
  const auto one = run_command("compare only_one.h5");
  EXPECT_EQ(one.status, 2);
  EXPECT_EQ(count_lines(one.err), 1) << one.err;
  const auto absent = run_command("compare /nonexistent/a.h5 /nonexistent/b.h5");
  EXPECT_EQ(absent.status, 2);
  EXPECT_NE(absent.err.find("/nonexistent/a.h5"), std::string::npos) << absent.err;
  const auto thr = run_command("compare a b --threshold fast");
  EXPECT_EQ(thr.status, 2);
  EXPECT_NE(thr.err.find("--threshold"), std::string::npos) << thr.err;
  const auto suite = run_command("bench --suite nightly --out x.h5");
  EXPECT_EQ(suite.status, 2);
  EXPECT_NE(suite.err.find("--suite"), std::string::npos) << suite.err;
}
