// Options of one subcommand (STYLE.md habit 11): Boost.Program_options with a
// default and help text for every key, plus the standard --help, --config
// FILE.ini and --set section.key=value (repeatable; later wins; command line
// beats the config file). Unknown keys and malformed values are errors with
// one line naming the file or option and what was expected.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/context.hpp"
#include "io/results.hpp"

namespace moelab {

namespace po = boost::program_options;

class CommandOptions {
 public:
  CommandOptions(std::string command, std::string synopsis, std::string description);

  // Declare options: opts.add()("model", po::value<std::string>()->default_value("v3-small"), "...").
  po::options_description_easy_init add() { return options_.add_options(); }
  // Names a positional argument (e.g. the file of `moelab show FILE`).
  void positional(const std::string& name, int max_count = 1) { positional_.add(name.c_str(), max_count); }

  // Parses args (without the subcommand name). Returns false after printing
  // help for --help. Throws moelab::Error on bad input.
  bool parse(const std::vector<std::string>& args, const CommandContext& ctx);

  // Sweeps (DESIGN.md "Configuration"): every `sweep = key: v1,v2,...` line
  // (INI) or `--sweep key:v1,v2` names a key and its values; the cartesian
  // product of all lines is the list of points, each a set of overrides
  // (one empty point when nothing is swept). Keys are validated.
  std::vector<ConfigPairs> sweep_points() const;
  // Re-parses the last args with one point's overrides applied on top (as
  // --set, so they win over the command line and the file).
  void apply_point(const ConfigPairs& point, const CommandContext& ctx);

  bool has(const std::string& key) const { return vm_.count(key) > 0; }
  // True when the user gave the key (command line, --set or config file).
  bool given(const std::string& key) const { return has(key) && !vm_[key].defaulted(); }
  template <typename T>
  T get(const std::string& key) const {
    MOE_CHECK(has(key)) << command_ << ": option '--" << key << "' is required";
    return vm_[key].as<T>();
  }

  // Every declared key with its resolved value as text, in declaration order
  // (help, config and set excluded): printed by rank 0 and stored as run
  // attributes, so a run can be repeated from its results alone.
  ConfigPairs resolved() const;
  std::string help_text() const;
  const std::string& command() const { return command_; }

 private:
  std::string command_;
  std::string synopsis_;
  std::string description_;
  po::options_description options_;
  po::positional_options_description positional_;
  po::variables_map vm_;
  std::vector<std::string> last_args_;
};

// "parallel.ep=2,dispatch=two_hop": a sweep point as one label.
std::string point_label(const ConfigPairs& point);

// Renders any value Program_options holds for our option types.
std::string option_value_text(const po::variable_value& value);

// The whole of `text` as a non-negative integer (a layer index), or -1 when
// it is not one; callers word the error for their option.
int64_t parse_index(const std::string& text);

}  // namespace moelab
