// CommandOptions as a library: precedence, typed values, sweeps.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>

#include "cli/options.hpp"
#include "core/error.hpp"

using namespace moelab;

namespace {

CommandOptions make_options() {
  CommandOptions opts("train", "[options]", "test command");
  opts.add()("model", po::value<std::string>()->default_value("v3-tiny"), "model")  //
      ("train.steps", po::value<int>()->default_value(10), "steps")                 //
      ("train.lr", po::value<double>()->default_value(1e-3), "lr")                  //
      ("parallel.ep", po::value<int>()->default_value(1), "EP degree");
  return opts;
}

CommandContext quiet_context() {
  static std::ostringstream sink;
  CommandContext ctx;
  ctx.out = &sink;
  return ctx;
}

std::string ini(const std::string& text) {
  auto path = std::filesystem::temp_directory_path() / ("moelab_opts_" + std::to_string(getpid()) + ".ini");
  std::ofstream(path) << text;
  return path.string();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Options, DefaultsConfigFileCommandLineAndSetPrecedence) {
  auto opts = make_options();
  const std::string file = ini("model = v3-small\n[train]\nsteps = 50\nlr = 0.01\n");
  ASSERT_TRUE(opts.parse({"--config", file, "--train.steps", "70", "--set", "train.steps=80"}, quiet_context()));
  EXPECT_EQ(opts.get<std::string>("model"), "v3-small");  // from the file
  EXPECT_EQ(opts.get<int>("train.steps"), 80);             // --set after --train.steps: later wins
  EXPECT_DOUBLE_EQ(opts.get<double>("train.lr"), 0.01);
  EXPECT_EQ(opts.get<int>("parallel.ep"), 1);  // default
  EXPECT_FALSE(opts.given("parallel.ep"));
  EXPECT_TRUE(opts.given("train.lr"));
  const ConfigPairs resolved = opts.resolved();
  ASSERT_EQ(resolved.size(), 4u);
  EXPECT_EQ(resolved[1], (std::pair<std::string, std::string>{"train.steps", "80"}));
}

TEST(Options, MalformedValuesAndUnknownKeysNameTheKey) {
  auto ctx = quiet_context();
  EXPECT_NE(error_of([&] { make_options().parse({"--set", "train.steps=abc"}, ctx); }).find("train.steps"),
            std::string::npos);
  const std::string bad_value = ini("[train]\nsteps = many\n");
  std::string e = error_of([&] { make_options().parse({"--config", bad_value}, ctx); });
  EXPECT_NE(e.find(bad_value), std::string::npos) << e;
  EXPECT_NE(e.find("train.steps"), std::string::npos) << e;
  const std::string unknown = ini("[parallel]\npp = 2\n");
  e = error_of([&] { make_options().parse({"--config", unknown}, ctx); });
  EXPECT_NE(e.find("unknown key 'parallel.pp'"), std::string::npos) << e;
  e = error_of([&] { make_options().parse({"--set", "parallel.pp=2"}, ctx); });
  EXPECT_NE(e.find("unknown option '--parallel.pp'"), std::string::npos) << e;
}

TEST(Options, SweepIsTheCartesianProductAndEachPointReparses) {
  auto opts = make_options();
  auto ctx = quiet_context();
  const std::string file = ini("sweep = parallel.ep: 1,2,4\nsweep = train.lr: 0.1, 0.2\n");
  ASSERT_TRUE(opts.parse({"--config", file, "--train.steps", "5"}, ctx));
  const auto points = opts.sweep_points();
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(point_label(points[0]), "parallel.ep=1,train.lr=0.1");
  EXPECT_EQ(point_label(points[5]), "parallel.ep=4,train.lr=0.2");
  opts.apply_point(points[3], ctx);
  EXPECT_EQ(opts.get<int>("parallel.ep"), 2);
  EXPECT_DOUBLE_EQ(opts.get<double>("train.lr"), 0.2);
  EXPECT_EQ(opts.get<int>("train.steps"), 5);
  opts.apply_point(points[0], ctx);  // points do not leak into each other
  EXPECT_EQ(opts.get<int>("parallel.ep"), 1);
  EXPECT_DOUBLE_EQ(opts.get<double>("train.lr"), 0.1);
  EXPECT_NE(error_of([&] {
              auto o = make_options();
              o.parse({"--sweep", "parallel.pp:1,2"}, ctx);
              o.sweep_points();
            }).find("sweep over unknown key 'parallel.pp'"),
            std::string::npos);
  auto plain = make_options();
  plain.parse({}, ctx);
  EXPECT_EQ(plain.sweep_points().size(), 1u);
}
