// moelab compare's rules on synthetic figures: a 20% slowdown is a
// regression, a rerun of the same distribution is not, a loss curve that
// moves by one ULP at one step is reported with that step, missing and
// renamed figures are reported, and the U test matches scipy.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "bench/compare.hpp"
#include "bench/figures.hpp"
#include "bench/stats.hpp"
#include "core/rng.hpp"
#include "io/hdf5.hpp"

using namespace moelab;
using namespace moelab::bench;

namespace {

// n samples around `center` with 2% relative noise (a quiet machine).
std::vector<double> samples(double center, int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = center * (1 + 0.02 * rng.normal());
  return v;
}

FigureSet one_figure(const std::string& name, const std::string& metric, Direction dir, std::vector<double> s) {
  FigureSet set;
  set.source = "synthetic";
  set.figures.push_back(Figure{name, metric, "ms", dir, std::move(s), {}});
  return set;
}

const Comparison& row(const CompareReport& r, const std::string& name, const std::string& metric) {
  for (const auto& c : r.rows)
    if (c.name == name && c.metric == metric) return c;
  throw std::runtime_error("no row " + name);
}

}  // namespace

TEST(MannWhitney, MatchesScipy) {
  // scipy.stats.mannwhitneyu(a, b).pvalue (method auto, two-sided).
  EXPECT_NEAR(mann_whitney_p({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}), 0.007936507936507936, 1e-15);
  EXPECT_NEAR(mann_whitney_p({1, 2, 3}, {4, 5, 6}), 0.1, 1e-15);
  EXPECT_NEAR(mann_whitney_p({1.1, 2.3, 0.5, 4.2, 3.3, 2.2}, {2.0, 5.1, 6.2, 3.9, 4.4, 7.7, 8.1}), 0.022144522144522144,
              1e-12);
  // Ties: normal approximation with tie and continuity correction.
  EXPECT_NEAR(mann_whitney_p({1, 2, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 4, 5, 6, 7, 8, 9, 10, 11, 12}), 0.05802198142821548,
              1e-12);
  EXPECT_DOUBLE_EQ(mann_whitney_min_p(3, 3), 0.1);
  EXPECT_NEAR(mann_whitney_min_p(5, 5), 2.0 / 252, 1e-15);
}

TEST(Compare, TwentyPercentSlowdownIsARegression) {
  const auto base = one_figure("BM_x", "real_time", Direction::lower, samples(10.0, 9, 1));
  const auto slow = one_figure("BM_x", "real_time", Direction::lower, samples(12.0, 9, 2));
  const auto report = compare_figures(base, slow, CompareOptions{});
  const auto& c = row(report, "BM_x", "real_time");
  EXPECT_EQ(c.verdict, "REGRESSION");
  EXPECT_NEAR(c.change, 0.2, 0.05);
  EXPECT_LT(c.p_value, 0.001);
  EXPECT_TRUE(report.failed());
  EXPECT_EQ(report.regressions, 1);
}

TEST(Compare, RerunOfTheSameBuildIsNotARegression) {
  const auto base = one_figure("BM_x", "real_time", Direction::lower, samples(10.0, 9, 1));
  const auto rerun = one_figure("BM_x", "real_time", Direction::lower, samples(10.0, 9, 3));
  const auto report = compare_figures(base, rerun, CompareOptions{});
  EXPECT_EQ(row(report, "BM_x", "real_time").verdict, "same");
  EXPECT_FALSE(report.failed());
}

TEST(Compare, RatesRegressWhenTheyFall) {
  const auto base = one_figure("BM_x", "FLOP/s", Direction::higher, samples(100.0, 9, 1));
  const auto slow = one_figure("BM_x", "FLOP/s", Direction::higher, samples(80.0, 9, 2));
  EXPECT_EQ(row(compare_figures(base, slow, {}), "BM_x", "FLOP/s").verdict, "REGRESSION");
  EXPECT_EQ(row(compare_figures(slow, base, {}), "BM_x", "FLOP/s").verdict, "improved");
}

TEST(Compare, NoiseGateWidensTheThreshold) {
  // 20% slower but with 15% noise: noise_factor 3 puts the threshold at ~45%.
  Rng rng(7);
  std::vector<double> a(9), b(9);
  for (auto& x : a) x = 10 * (1 + 0.15 * rng.normal());
  for (auto& x : b) x = 12 * (1 + 0.15 * rng.normal());
  const auto report = compare_figures(one_figure("BM_x", "real_time", Direction::lower, a),
                                      one_figure("BM_x", "real_time", Direction::lower, b), CompareOptions{});
  const auto& c = row(report, "BM_x", "real_time");
  EXPECT_GT(c.threshold, 0.3);
  EXPECT_FALSE(c.failed);
  CompareOptions no_gate;
  no_gate.noise_factor = 0;
  EXPECT_DOUBLE_EQ(row(compare_figures(one_figure("BM_x", "real_time", Direction::lower, a),
                                       one_figure("BM_x", "real_time", Direction::lower, b), no_gate),
                       "BM_x", "real_time")
                       .threshold,
                   0.05);
}

TEST(Compare, OneDelayedRepetitionDoesNotHideASlowdown) {
  // A loaded machine delays a repetition now and then (here 5x): the robust
  // spread ignores it, so the 20% slowdown still stands out.
  auto a = samples(10.0, 10, 1), b = samples(12.0, 10, 2);
  a[0] *= 5;
  b[3] *= 5;
  const auto report = compare_figures(one_figure("BM_x", "real_time", Direction::lower, a),
                                      one_figure("BM_x", "real_time", Direction::lower, b), CompareOptions{});
  const auto& c = row(report, "BM_x", "real_time");
  EXPECT_LT(c.threshold, 0.15);
  EXPECT_EQ(c.verdict, "REGRESSION");
}

TEST(Compare, SingleInstructionCountUsesTheThresholdAlone) {
  auto base = one_figure("callgrind/gemm", "instructions", Direction::lower, {1.0e7});
  auto more = one_figure("callgrind/gemm", "instructions", Direction::lower, {1.02e7});
  CompareOptions strict;
  strict.metric_threshold["instructions"] = 0.01;
  EXPECT_EQ(row(compare_figures(base, more, strict), "callgrind/gemm", "instructions").verdict, "REGRESSION");
  EXPECT_EQ(row(compare_figures(base, base, strict), "callgrind/gemm", "instructions").verdict, "same");
}

TEST(Compare, OneUlpLossChangeIsReportedWithItsStep) {
  std::vector<double> loss(20), steps(20);
  for (int i = 0; i < 20; ++i) loss[i] = static_cast<float>(10.0 * std::exp(-0.1 * i)), steps[i] = 100 + i;
  Figure base{"e2e/train", "train/loss", "", Direction::exact, loss, steps};
  Figure now = base;
  now.samples[7] = std::nextafter(now.samples[7], 1e9);  // one double ULP up at index 7 (step 107)
  FigureSet b, n;
  b.figures = {base};
  n.figures = {now};
  const auto report = compare_figures(b, n, {});
  const auto& c = row(report, "e2e/train", "train/loss");
  EXPECT_EQ(c.verdict, "DIFFERS");
  EXPECT_TRUE(report.failed());
  EXPECT_EQ(c.first_diff_index, 7);
  EXPECT_EQ(c.first_diff_step, 107);
  EXPECT_NE(c.detail.find("first difference at step 107"), std::string::npos) << c.detail;
  EXPECT_NE(c.detail.find("1 ulp double"), std::string::npos) << c.detail;
  EXPECT_NE(render_table(report).find("step 107"), std::string::npos);
  // A one-ULP change of a float32 loss says so too.
  n.figures[0].samples[7] = std::nextafter(static_cast<float>(loss[7]), 1e9f);
  EXPECT_NE(row(compare_figures(b, n, {}), "e2e/train", "train/loss").detail.find("1 ulp float"), std::string::npos);
  // Identical curves pass.
  const auto same = compare_figures(b, b, {});
  EXPECT_EQ(row(same, "e2e/train", "train/loss").verdict, "identical");
  EXPECT_FALSE(same.failed());
}

TEST(Compare, MissingAndRenamedFiguresAreReported) {
  FigureSet base, now;
  base.figures = {Figure{"BM_gemm/fp32/m:256", "real_time", "ms", Direction::lower, {1, 1.1}, {}},
                  Figure{"BM_router/tokens:64", "real_time", "ms", Direction::lower, {1, 1.1}, {}}};
  now.figures = {Figure{"BM_gemm/fp32/tokens:256", "real_time", "ms", Direction::lower, {1, 1.1}, {}}};
  auto report = compare_figures(base, now, {});
  EXPECT_EQ(report.missing, 2);
  EXPECT_EQ(report.added, 1);
  EXPECT_TRUE(report.failed());
  EXPECT_NE(row(report, "BM_gemm/fp32/m:256", "real_time").detail.find("renamed to BM_gemm/fp32/tokens:256?"),
            std::string::npos);
  EXPECT_EQ(row(report, "BM_gemm/fp32/tokens:256", "real_time").verdict, "new");
  CompareOptions allow;
  allow.allow_missing = true;
  EXPECT_FALSE(compare_figures(base, now, allow).failed());
  // New figures alone never fail.
  FigureSet grown = base;
  grown.figures.push_back(Figure{"BM_mla/tokens:64", "real_time", "ms", Direction::lower, {1, 1.1}, {}});
  const auto more = compare_figures(base, grown, {});
  EXPECT_EQ(more.added, 1);
  EXPECT_FALSE(more.failed());
}

TEST(Figures, GoogleBenchmarkJsonRepetitionsBecomeSamples) {
  const std::string json = R"({
    "context": {"host_name": "h", "num_cpus": 2, "library_build_type": "release"},
    "benchmarks": [
      {"name": "BM_a/8", "run_name": "BM_a/8", "run_type": "iteration", "repetitions": 2, "repetition_index": 0,
       "iterations": 10, "real_time": 1.5, "cpu_time": 1.4, "time_unit": "ms", "FLOP/s": 2e9, "ratio": 3.0},
      {"name": "BM_a/8", "run_name": "BM_a/8", "run_type": "iteration", "repetitions": 2, "repetition_index": 1,
       "iterations": 10, "real_time": 1.7, "cpu_time": 1.6, "time_unit": "ms", "FLOP/s": 1.8e9, "ratio": 3.1},
      {"name": "BM_a/8_mean", "run_name": "BM_a/8", "run_type": "aggregate", "aggregate_name": "mean",
       "real_time": 1.6, "cpu_time": 1.5, "time_unit": "ms"},
      {"name": "BM_b", "run_name": "BM_b", "run_type": "aggregate", "aggregate_name": "mean",
       "real_time": 9.0, "cpu_time": 9.0, "time_unit": "us"},
      {"name": "BM_c", "run_name": "BM_c", "run_type": "iteration", "error_occurred": true, "error_message": "no GPU"}
    ]})";
  const FigureSet set = parse_gbench_json(json, "x.json");
  const Figure* t = set.find("BM_a/8", "real_time");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->samples, (std::vector<double>{1.5, 1.7}));
  EXPECT_EQ(t->unit, "ms");
  const Figure* r = set.find("BM_a/8", "FLOP/s");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->direction, Direction::higher);
  EXPECT_EQ(set.find("BM_a/8", "ratio")->direction, Direction::lower);
  ASSERT_TRUE(set.find("BM_b", "real_time"));
  EXPECT_EQ(set.find("BM_b", "real_time")->samples, std::vector<double>{9.0});
  EXPECT_FALSE(set.find("BM_c", "real_time"));
  ASSERT_EQ(set.notes.size(), 1u);
  EXPECT_NE(set.notes[0].find("no GPU"), std::string::npos);
  EXPECT_EQ(set.provenance.at("gbench_library_build_type"), "release");
}

TEST(Figures, Hdf5RoundTripAndUnitConversion) {
  const auto path = (std::filesystem::temp_directory_path() / "moelab_test_figures.h5").string();
  FigureSet set;
  set.provenance["commit"] = "abc";
  set.notes = {"mla: skipped: bench_mla not built"};
  set.figures = {Figure{"BM_a", "real_time", "ms", Direction::lower, {1.0, 2.0}, {}},
                 Figure{"e2e/train", "train/loss", "", Direction::exact, {3.0, 2.5}, {1, 2}}};
  {
    h5::File f = h5::File::create(path, true);
    h5::Group g = f.group("runs/quick/bench");
    write_figures(g, set);
  }
  const FigureSet back = load_figures(path);
  ASSERT_EQ(back.figures.size(), 2u);
  EXPECT_EQ(back.figures[1].steps, (std::vector<double>{1, 2}));
  EXPECT_EQ(back.figures[1].direction, Direction::exact);
  EXPECT_EQ(back.provenance.at("commit"), "abc");
  EXPECT_EQ(back.notes, set.notes);
  // The same timing in microseconds compares equal.
  FigureSet us;
  us.figures = {Figure{"BM_a", "real_time", "us", Direction::lower, {1000.0, 2000.0}, {}}};
  CompareOptions o;
  o.metrics = {"real_time"};
  const auto report = compare_figures(back, us, o);
  EXPECT_EQ(row(report, "BM_a", "real_time").verdict, "same");
  EXPECT_NEAR(row(report, "BM_a", "real_time").change, 0.0, 1e-12);
  std::filesystem::remove(path);
}
