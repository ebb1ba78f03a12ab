// Runs the built moelab binary and captures its exit status, stdout and
// stderr, for tests of the command as a user meets it.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

struct CommandResult {
  int status = -1;
  std::string out, err;
};

inline std::string read_file_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline CommandResult run_command(const std::string& args) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string out_path = (dir / ("moelab_cli_out_" + std::to_string(::getpid()))).string();
  const std::string err_path = out_path + ".err";
  const std::string cmd = std::string(MOELAB_BINARY) + " " + args + " >" + out_path + " 2>" + err_path;
  const int raw = std::system(cmd.c_str());
  CommandResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_file_text(out_path);
  r.err = read_file_text(err_path);
  return r;
}

inline int count_lines(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}
