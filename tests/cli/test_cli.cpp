// The moelab command as a user meets it: exit statuses, one-line errors,
// --help on every subcommand, --config and --set precedence.
#include <gtest/gtest.h>
#include <unistd.h>

#include "cli/run_command.hpp"

namespace {

std::string temp_file(const std::string& name, const std::string& text) {
  auto path = std::filesystem::temp_directory_path() / ("moelab_cli_" + std::to_string(getpid()) + "_" + name);
  std::ofstream(path) << text;
  return path.string();
}

void expect_one_line_error(const CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

}  // namespace

TEST(Cli, HelpListsSubcommandsAndVersionPrintsCommit) {
  CommandResult r = run_command("--help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("info"), std::string::npos);
  EXPECT_NE(r.out.find("show"), std::string::npos);
  r = run_command("--version");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("moelab 0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("git "), std::string::npos) << r.out;
}

TEST(Cli, EverySubcommandHasHelp) {
  const CommandResult list = run_command("--help");
  std::istringstream lines(list.out);
  std::string line;
  int checked = 0;
  bool in_list = false;
  while (std::getline(lines, line)) {
    if (line == "subcommands:") {
      in_list = true;
      continue;
    }
    if (in_list && line.empty()) break;
    if (!in_list) continue;
    const std::string name = line.substr(2, line.find(' ', 2) - 2);
    CommandResult r = run_command(name + " --help");
    EXPECT_EQ(r.status, 0) << name;
    EXPECT_NE(r.out.find("usage: moelab " + name), std::string::npos) << name << ": " << r.out;
    EXPECT_NE(r.out.find("--config"), std::string::npos) << name;
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TEST(Cli, BadInputIsOneLineAndExitTwo) {
  expect_one_line_error(run_command(""), "");  // no subcommand: usage on stdout, status 2
  expect_one_line_error(run_command("frobnicate"), "unknown subcommand 'frobnicate'");
  expect_one_line_error(run_command("info --bogus"), "unknown option '--bogus'");
  expect_one_line_error(run_command("info --model v3-huge"), "unknown model preset 'v3-huge'");
  expect_one_line_error(run_command("info --model /nonexistent/config.json"), "/nonexistent/config.json: cannot open");
  expect_one_line_error(run_command("info --config /nonexistent.ini"), "/nonexistent.ini: cannot open config file");
  expect_one_line_error(run_command("info --set model"), "expected KEY=VALUE");
  const std::string ini = temp_file("bad.ini", "model = v3-tiny\n[train]\nsteps = 3\n");
  expect_one_line_error(run_command("info --config " + ini), "unknown key 'train.steps'");
  expect_one_line_error(run_command("show /nonexistent.h5"), "/nonexistent.h5: no such file");
  const std::string bad_json = temp_file("bad.json", "{\"hidden_size\": \"big\"}");
  expect_one_line_error(run_command("info --model " + bad_json), "missing key");
}

TEST(Cli, NoSubcommandPrintsUsageAndFails) {
  CommandResult r = run_command("");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("usage: moelab"), std::string::npos);
}

TEST(Cli, ConfigFileAndSetPrecedence) {
  const std::string ini = temp_file("model.ini", "model = v3-tiny\n");
  CommandResult r = run_command("info --config " + ini);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("model: v3-tiny"), std::string::npos) << r.out;
  r = run_command("info --config " + ini + " --set model=v3-small");  // command line beats the file
  EXPECT_NE(r.out.find("model: v3-small"), std::string::npos) << r.out;
  r = run_command("info --set model=v3-small --set model=deepseek-v2-lite");  // later wins
  EXPECT_NE(r.out.find("model: deepseek-v2-lite"), std::string::npos) << r.out;
  r = run_command("info --model v3-small --set model=v3-tiny");
  EXPECT_NE(r.out.find("model: v3-tiny"), std::string::npos) << r.out;
}

TEST(Cli, InfoDeepSeekV3Totals) {
  CommandResult r = run_command("info --model deepseek-v3");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("671.026 B"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("37.552 B"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("36.626 B"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("11.610 B"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("70272 bytes"), std::string::npos) << r.out;
}

TEST(Cli, InfoWritesResultsAndShowReadsThem) {
  const auto path = std::filesystem::temp_directory_path() / ("moelab_cli_info_" + std::to_string(getpid()) + ".h5");
  std::filesystem::remove(path);
  CommandResult r = run_command("info --model v3-tiny --out " + path.string());
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_command("info --model v3-tiny --out " + path.string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("exists (pass --force"), std::string::npos) << r.err;
  r = run_command("show " + path.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("run info: complete"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model = v3-tiny"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("@total = "), std::string::npos) << r.out;
}
