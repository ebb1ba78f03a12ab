// `moelab show` on a results file of a process killed with SIGKILL mid-run:
// the data up to the last flush is shown and the status says not complete.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "cli/run_command.hpp"
#include "io/results.hpp"

using namespace moelab;

TEST(Show, KilledRunShowsLastFlushedValuesAndNotComplete) {
  const auto path = std::filesystem::temp_directory_path() / ("moelab_show_killed_" + std::to_string(getpid()) + ".h5");
  std::filesystem::remove(path);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto results = ResultsFile::create(path.string(), false, "moelab train (simulated)", 1);
    ResultsRun run = results->new_run("run_000", {{"model", "v3-tiny"}, {"train.steps", "1000"}});
    for (int step = 0; step < 25; ++step) {
      run.append("train/step", step);
      run.append("train/loss", 6.0 - 0.125 * step);
    }
    run.flush();
    kill(getpid(), SIGKILL);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  CommandResult r = run_command("show " + path.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("NOT complete"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("train/loss [25] float64  last 3"), std::string::npos) << r.out;  // 6 - 0.125*24
  EXPECT_NE(r.out.find("train.steps = 1000"), std::string::npos) << r.out;
}
