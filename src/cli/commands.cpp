#include "cli/commands.hpp"

namespace moelab {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"info", "parameter counts, weight memory and KV cache of a model preset or config.json", cmd_info},
      {"show", "summarise a results file: runs, status, key config, last values", cmd_show},
  };
  return table;
}

}  // namespace moelab
