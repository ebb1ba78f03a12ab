// The table of moelab subcommands: one file per subcommand (cmd_<name>.cpp),
// each exposing one function; commands.cpp lists them for main and --help.
#pragma once

#include <string>
#include <vector>

#include "cli/context.hpp"

namespace moelab {

using CommandFn = int (*)(const std::vector<std::string>& args, const CommandContext& ctx);

struct Command {
  const char* name;
  const char* summary;
  CommandFn run;
};

const std::vector<Command>& commands();

// One entry per cmd_<name>.cpp.
int cmd_info(const std::vector<std::string>& args, const CommandContext& ctx);
int cmd_show(const std::vector<std::string>& args, const CommandContext& ctx);
int cmd_fp8(const std::vector<std::string>& args, const CommandContext& ctx);
int cmd_train(const std::vector<std::string>& args, const CommandContext& ctx);
int cmd_forward(const std::vector<std::string>& args, const CommandContext& ctx);
int cmd_init_weights(const std::vector<std::string>& args, const CommandContext& ctx);
int cmd_schedule(const std::vector<std::string>& args, const CommandContext& ctx);
int cmd_ep(const std::vector<std::string>& args, const CommandContext& ctx);
int cmd_bench(const std::vector<std::string>& args, const CommandContext& ctx);
int cmd_compare(const std::vector<std::string>& args, const CommandContext& ctx);
int cmd_plan(const std::vector<std::string>& args, const CommandContext& ctx);

}  // namespace moelab
